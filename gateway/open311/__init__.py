"""Open311 GeoReport v2 under /open311/v2/: tickets' categories as services, tickets as requests.

Modules, one job each: `formats` (JSON and XML bodies), `mapping` (categories and tickets as
GeoReport v2 dicts), `inputs` (arguments and the POST form into tickets' terms), `auth` (api_key to
a service account's token), `errors` (Open311 errors and the route class that makes them),
`lookups` and `cache` (names a page refers to), `listing` (paging ListTickets), `routes`.
"""

from __future__ import annotations

from gateway.open311.routes import router

__all__ = ["router"]
