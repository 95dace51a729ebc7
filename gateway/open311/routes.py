"""The GeoReport v2 endpoints: discovery, services, service definitions, requests (create, list, one).

Every path ends in `.json` or `.xml`; errors are Open311's (see errors.py), never problem+json.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Annotated, Any, Literal

import grpc
from fastapi import APIRouter, Form, Path, Query, Request, Response
from fastapi.routing import APIRoute
from starlette.routing import Match

from gateway.open311 import lookups, mapping
from gateway.open311.auth import Account, Anonymous, account
from gateway.open311.errors import Open311Error, Open311Route, invalid
from gateway.open311.formats import render
from gateway.open311.inputs import (
    Report,
    jurisdiction,
    parse_attributes,
    parse_datetime,
    request_ids,
    service_codes,
    statuses,
)
from gateway.open311.listing import Item, own_streams, page_of, public_streams
from gateway.params import IdempotencyKey
from gateway.upstream import upstreams
from gov.tickets.v1 import tickets_pb2 as pb

router = APIRouter(prefix="/open311/v2", tags=["open311"], route_class=Open311Route)

# Without dates, GET requests covers the last 90 days (GeoReport v2's default span).
DEFAULT_SPAN = dt.timedelta(days=90)
_CODE_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")

Fmt = Annotated[Literal["json", "xml"], Path(description="`json` or `xml`")]
ApiKeyQuery = Annotated[
    str | None,
    Query(max_length=300, description="`<client_id>:<client_secret>` of a service account"),
]
JurisdictionId = Annotated[
    str | None,
    Query(max_length=300, description="A region node as a dotted ref, e.g. `yuhu.wanlou`"),
]
_Text = Annotated[str, Form(max_length=300)]

_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/json": {}, "text/xml": {}}},
    400: {"description": 'A missing or bad argument, named: `[{"code":400,"description":"lat: …"}]`'},
    404: {"description": "Unknown resource or format suffix"},
    # Also keeps FastAPI from documenting a 422: validation errors are Open311 400s here.
    "4XX": {"description": "Open311 errors: `[{code, description}]`, `<errors><error>…`"},
}
_KEYED_RESPONSES = {**_RESPONSES, 403: {"description": "api_key missing or refused"}}
_READ_RESPONSES = {**_RESPONSES, 403: {"description": "api_key refused (it is optional here)"}}


def _open311_id(value: str, what: str) -> str:
    if not 0 < len(value) <= 64 or not set(value) <= _CODE_CHARS:
        raise Open311Error(404, f"{what} {value!r}: not found")
    return value


async def _service_requests(
    request: Request, who: Account | Anonymous, tickets: list[Item]
) -> list[dict[str, Any]]:
    """GeoReport dicts: an account's own tickets in full, everything else as its public view."""
    codes = [mapping.code_of(t.category) for t in tickets]
    categories, agencies = await asyncio.gather(
        lookups.categories(request, who, codes),
        lookups.unit_names(request, who, [t.lead_unit for t in tickets if isinstance(t, pb.Ticket)]),
    )
    out = []
    for ticket, code in zip(tickets, codes, strict=True):
        category = categories.get(code)
        name = category.display_name if category else None
        notice = mapping.service_notice(category)
        if isinstance(ticket, pb.Ticket):
            agency = agencies.get(ticket.lead_unit)
            out.append(mapping.service_request(ticket, service_name=name, agency=agency, notice=notice))
        else:
            out.append(mapping.public_service_request(ticket, service_name=name, notice=notice))
    return out


# ----------------------------------------------------------------------------- discovery, services


@router.get(
    "/discovery.{fmt}",
    response_class=Response,
    responses=_RESPONSES,
    summary="Open311 service discovery",
    description="This endpoint, its specification, formats and how to get an api_key. Public.",
)
async def discovery(request: Request, fmt: Fmt) -> Response:
    url = str(request.base_url).rstrip("/") + router.prefix
    return render(fmt, "discovery", mapping.discovery(url))


@router.get(
    "/services.{fmt}",
    response_class=Response,
    responses=_RESPONSES,
    summary="Open311 service list",
    description=(
        "The active ticket categories as GeoReport v2 services: `service_code` is the category code, "
        "`metadata` is true when the service takes attributes (see the service definition). Public; "
        "`jurisdiction_id` is accepted, and every jurisdiction has the same services."
    ),
)
async def list_services(
    request: Request, fmt: Fmt, jurisdiction_id: JurisdictionId = None, api_key: ApiKeyQuery = None
) -> Response:
    jurisdiction(jurisdiction_id)
    invoker = await account(request, api_key) if api_key else Anonymous(request)
    services, token = [], ""
    while True:
        reply = await invoker.call(
            upstreams(request).tickets.ListCategories,
            pb.ListCategoriesRequest(page_size=200, page_token=token),
        )
        services.extend(mapping.service(c) for c in reply.categories if c.active)
        token = reply.next_page_token
        if not token:
            break
    return render(fmt, "services", services)


@router.get(
    "/services/{service_code}.{fmt}",
    response_class=Response,
    responses=_RESPONSES,
    summary="Open311 service definition",
    description=(
        "The attributes a service's requests take, in order: `datatype` is string, number, datetime, "
        "text, singlevaluelist or multivaluelist; list types give their `values`. Public."
    ),
)
async def service_definition(
    request: Request,
    service_code: Annotated[str, Path(description="The category code")],
    fmt: Fmt,
    jurisdiction_id: JurisdictionId = None,
    api_key: ApiKeyQuery = None,
) -> Response:
    code = _open311_id(service_code, "service_code")
    jurisdiction(jurisdiction_id)
    invoker = await account(request, api_key) if api_key else Anonymous(request)
    try:
        category = await invoker.call(
            upstreams(request).tickets.GetCategory, pb.GetCategoryRequest(name=f"categories/{code}")
        )
    except grpc.aio.AioRpcError as exc:
        if exc.code() == grpc.StatusCode.NOT_FOUND:
            raise Open311Error(404, f"service_code {code!r}: not found") from None
        raise
    if not category.active:
        raise Open311Error(404, f"service_code {code!r}: no longer offered")
    return render(fmt, "service_definition", mapping.service_definition(category))


# ----------------------------------------------------------------------------- service requests


@router.post(
    "/requests.{fmt}",
    response_class=Response,
    responses=_KEYED_RESPONSES,
    summary="Open311 create a service request",
    description=(
        "A form (`application/x-www-form-urlencoded`) with `api_key` (required), `service_code`, and a "
        "location: `lat` and `long` (WGS84), or `address_id` (a household id), or `address_string` "
        "alone with `jurisdiction_id` (the region node the address is in). Attributes of the service "
        "go as `attribute[code]=value`, and `attribute[code][]=v1&attribute[code][]=v2` for a "
        "multi-value list. `first_name`, `last_name` and `phone` tell staff whom to call back; "
        "`email`, `device_id` and `account_id` are accepted and not stored. Send an `Idempotency-Key` "
        "header to make retries safe: the same key returns the first request. Answers "
        "`[{service_request_id, service_notice, account_id}]`."
    ),
)
async def create_request(
    request: Request,
    fmt: Fmt,
    idempotency_key: IdempotencyKey = None,
    api_key: _Text = "",
    jurisdiction_id: _Text = "",
    service_code: Annotated[str, Form(max_length=64)] = "",
    lat: Annotated[float | None, Form(ge=-90, le=90)] = None,
    long: Annotated[float | None, Form(ge=-180, le=180)] = None,
    address_string: _Text = "",
    address_id: Annotated[str, Form(max_length=64)] = "",
    email: _Text = "",
    device_id: _Text = "",
    account_id: _Text = "",
    first_name: Annotated[str, Form(max_length=64)] = "",
    last_name: Annotated[str, Form(max_length=64)] = "",
    phone: Annotated[str, Form(max_length=32)] = "",
    description: Annotated[str, Form(max_length=4000)] = "",
    media_url: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    who = await account(request, api_key or request.query_params.get("api_key"))
    report = Report(
        service_code=service_code,
        lat=lat,
        long=long,
        address_string=address_string,
        address_id=address_id,
        jurisdiction_id=jurisdiction_id,
        first_name=first_name,
        last_name=last_name,
        phone=phone,
        description=description,
        media_url=media_url,
        attributes=parse_attributes((await request.form()).multi_items()),
    )
    report.check()
    category = await lookups.category(request, who, report.service_code.strip())
    if category is None:
        raise invalid("service_code", f"{report.service_code.strip()!r} is not a service")
    ticket = await who.call(
        upstreams(request).tickets.CreateTicket,
        pb.CreateTicketRequest(ticket=report.ticket(category.display_name), request_id=idempotency_key or ""),
    )
    return render(fmt, "service_requests", [mapping.created(ticket, mapping.service_notice(category))])


@router.get(
    "/requests.{fmt}",
    response_class=Response,
    responses=_READ_RESPONSES,
    summary="Open311 query service requests",
    description=(
        "Without `api_key`: the requests of services whose requests are public, GeoReport's public "
        "fields only (no contact data, no `address_id`, phone and id numbers masked). With an "
        "`api_key`, also every request that key filed, in full. "
        "`service_request_id` (comma-separated ids) overrides every other argument. Otherwise "
        "filters: `service_code` and `status` (`open`, `closed`; comma-separated), `start_date` and "
        "`end_date` (W3C datetimes, inclusive; without either, the last 90 days), `jurisdiction_id` "
        "(requests at or below that region node). Newest first, `page_size` (default 50, at most 200) "
        "per `page` (from 1)."
    ),
)
async def list_requests(
    request: Request,
    fmt: Fmt,
    api_key: ApiKeyQuery = None,
    jurisdiction_id: JurisdictionId = None,
    service_request_id: Annotated[str | None, Query(max_length=7000)] = None,
    service_code: Annotated[str | None, Query(max_length=1000)] = None,
    start_date: Annotated[str | None, Query(max_length=40, description="W3C datetime")] = None,
    end_date: Annotated[str | None, Query(max_length=40, description="W3C datetime")] = None,
    status: Annotated[str | None, Query(max_length=40, description="`open`, `closed`")] = None,
    page: Annotated[int, Query(ge=1, description="From 1")] = 1,
    page_size: Annotated[int, Query(ge=1, le=200, description="Default 50")] = 50,
) -> Response:
    who = await account(request, api_key) if api_key else Anonymous(request)
    ids = request_ids(service_request_id)
    if ids:
        tickets = await _tickets_by_id(request, who, ids)
    else:
        node = jurisdiction(jurisdiction_id)
        start = parse_datetime("start_date", start_date) if start_date else None
        end = parse_datetime("end_date", end_date, end=True) if end_date else None
        if start is None and end is None:
            start = dt.datetime.now(dt.UTC) - DEFAULT_SPAN
        if start is not None and end is not None and end <= start:
            raise invalid("end_date", "is before start_date")
        public = pb.ListPublicTicketsRequest(node=node)
        own = pb.ListTicketsRequest(node=node)
        for query in (public, own):
            if start is not None:
                query.start_time.FromDatetime(start)
            if end is not None:
                query.end_time.FromDatetime(end)
        states = statuses(status)
        categories = [f"categories/{c}" for c in service_codes(service_code)]
        streams = public_streams(request, public, states, categories)
        if isinstance(who, Account):
            streams += own_streams(request, who, own, states, categories)
        tickets = await page_of(streams, page=page, page_size=page_size)
    return render(fmt, "service_requests", await _service_requests(request, who, tickets))


async def _one_ticket(request: Request, who: Account | Anonymous, ticket_id: str) -> Item | None:
    """The account's own view of a request if it may see it, else the public view if the request
    is public, else None. Without a key only the public view is asked for."""
    tickets = upstreams(request).tickets
    name = f"tickets/{ticket_id}"
    if isinstance(who, Account):
        try:
            return await who.call(tickets.GetTicket, pb.GetTicketRequest(name=name))
        except grpc.aio.AioRpcError as exc:
            if exc.code() not in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.PERMISSION_DENIED):
                raise
    try:
        return await Anonymous(request).call(tickets.GetPublicTicket, pb.GetPublicTicketRequest(name=name))
    except grpc.aio.AioRpcError as exc:
        if exc.code() == grpc.StatusCode.NOT_FOUND:
            return None
        raise


async def _tickets_by_id(request: Request, who: Account | Anonymous, ids: list[str]) -> list[Item]:
    """The requests of those ids the caller may see, in the order asked; others are left out."""
    found = await asyncio.gather(*(_one_ticket(request, who, i) for i in ids))
    return [t for t in found if t is not None]


@router.get(
    "/requests/{service_request_id}.{fmt}",
    response_class=Response,
    responses=_READ_RESPONSES,
    summary="Open311 get a service request",
    description=(
        "One request, as a one-element list: without `api_key` only a request of a public service, "
        "as its public view; with one, also a request the key filed (see query service requests)."
    ),
)
async def get_request(
    request: Request,
    service_request_id: Annotated[str, Path(description="The id POST requests answered")],
    fmt: Fmt,
    api_key: ApiKeyQuery = None,
    jurisdiction_id: JurisdictionId = None,
) -> Response:
    ticket_id = _open311_id(service_request_id, "service_request_id")
    who = await account(request, api_key) if api_key else Anonymous(request)
    ticket = await _one_ticket(request, who, ticket_id)
    if ticket is None:
        # Private, someone else's or missing: the same answer, so that nothing tells them apart.
        raise Open311Error(404, f"service_request_id {ticket_id!r}: not found")
    return render(fmt, "service_requests", await _service_requests(request, who, [ticket]))


# Last: whatever else is asked under /open311/v2 gets an Open311 404 (or 405), not problem+json.
@router.api_route(
    "/{rest:path}",
    methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
    include_in_schema=False,
)
async def unknown(request: Request, rest: str) -> Response:
    for route in router.routes:
        if isinstance(route, APIRoute) and route.path != "/open311/v2/{rest:path}":
            match, _ = route.matches(request.scope)
            if match == Match.PARTIAL:
                allow = ", ".join(sorted(route.methods))
                raise Open311Error(405, f"{request.method} not allowed here", {"Allow": allow})
    raise Open311Error(404, f"{rest!r}: no such resource")
