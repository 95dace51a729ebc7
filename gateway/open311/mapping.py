"""Tickets' categories and tickets as GeoReport v2 services and service requests (plain dicts).

Field lists and their order are GeoReport v2's exactly; absent values are None (JSON null, an
empty XML element). Datetimes are W3C (ISO 8601 with an offset), rendered in China Standard Time.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from google.protobuf import timestamp_pb2

from gateway.open311.formats import FORMAT_TYPES
from gov.tickets.v1 import tickets_pb2 as pb

SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
CST = dt.timezone(dt.timedelta(hours=8))
# When this endpoint's behaviour last changed (discovery's changeset).
CHANGESET = "2026-11-23T00:00:00+08:00"
CONTACT = (
    "Open311 GeoReport v2 of the community governance platform. The service list and service "
    "definitions are public, and so are GET requests and GET requests/{id} for services whose "
    "requests are public: GeoReport's public fields only, phone and id numbers masked, no contact "
    "data. POST requests needs an api_key; with it, GET requests also shows the requests the key "
    "filed, in every service. Contact the platform's administrators for help."
)
KEY_SERVICE = (
    "Ask the platform's administrators for a service account; its api_key is "
    "<client_id>:<client_secret>. Keep it secret: send it in the POST body where you can."
)

SERVICE_FIELDS = ("service_code", "service_name", "description", "metadata", "type", "keywords", "group")
ATTRIBUTE_FIELDS = (
    "variable",
    "code",
    "datatype",
    "required",
    "datatype_description",
    "order",
    "description",
    "values",
)
REQUEST_FIELDS = (
    "service_request_id",
    "status",
    "status_notes",
    "service_name",
    "service_code",
    "description",
    "agency_responsible",
    "service_notice",
    "requested_datetime",
    "updated_datetime",
    "expected_datetime",
    "address",
    "address_id",
    "zipcode",
    "lat",
    "long",
    "media_url",
)
CREATED_FIELDS = ("service_request_id", "service_notice", "account_id")

S = pb.TicketState
OPEN_STATES = (
    S.TICKET_STATE_SUBMITTED,
    S.TICKET_STATE_ACCEPTED,
    S.TICKET_STATE_ESCALATED,
    S.TICKET_STATE_DISPATCHED,
    S.TICKET_STATE_IN_PROGRESS,
)
CLOSED_STATES = (
    S.TICKET_STATE_RESOLVED,
    S.TICKET_STATE_CLOSED,
    S.TICKET_STATE_REJECTED,
    S.TICKET_STATE_MERGED,
)
STATES_BY_STATUS = {"open": OPEN_STATES, "closed": CLOSED_STATES}

A = pb.AttributeType
DATATYPES = {
    A.ATTRIBUTE_TYPE_STRING: "string",
    A.ATTRIBUTE_TYPE_NUMBER: "number",
    A.ATTRIBUTE_TYPE_DATETIME: "datetime",
    A.ATTRIBUTE_TYPE_TEXT: "text",
    A.ATTRIBUTE_TYPE_SINGLE_VALUE_LIST: "singlevaluelist",
    A.ATTRIBUTE_TYPE_MULTI_VALUE_LIST: "multivaluelist",
}
DATATYPE_DESCRIPTIONS = {
    A.ATTRIBUTE_TYPE_STRING: "One line of at most 200 characters.",
    A.ATTRIBUTE_TYPE_NUMBER: "A decimal number, such as 12 or 3.5.",
    A.ATTRIBUTE_TYPE_DATETIME: "A W3C date and time with its offset, such as 2026-11-23T10:15:00+08:00.",
    A.ATTRIBUTE_TYPE_TEXT: "Free text of at most 2,000 characters.",
}


def w3c(value: timestamp_pb2.Timestamp | dt.datetime | None) -> str | None:
    """2026-11-23T10:15:00+08:00; an unset timestamp is None."""
    if isinstance(value, timestamp_pb2.Timestamp):
        if not value.seconds and not value.nanos:
            return None
        value = value.ToDatetime(tzinfo=dt.UTC)
    if value is None:
        return None
    return value.astimezone(CST).isoformat(timespec="seconds")


def status_of(state: int) -> str:
    return "closed" if state in CLOSED_STATES else "open"


def ticket_id(name: str) -> str:
    return name.removeprefix("tickets/")


def code_of(category: str) -> str:
    return category.removeprefix("categories/")


def status_notes(ticket: pb.Ticket | pb.PublicTicket) -> str:
    state = ticket.state
    if state == S.TICKET_STATE_REJECTED:
        return f"rejected: {ticket.reject_reason}" if ticket.reject_reason else "rejected"
    if state == S.TICKET_STATE_MERGED:
        return f"merged into {ticket_id(ticket.merged_into)}" if ticket.merged_into else "merged"
    if state in (S.TICKET_STATE_RESOLVED, S.TICKET_STATE_CLOSED):
        word = "resolved" if state == S.TICKET_STATE_RESOLVED else "closed"
        return f"{word}: {ticket.resolution}" if ticket.resolution else word
    if state == S.TICKET_STATE_ESCALATED:
        return "escalated to the district"
    if state == S.TICKET_STATE_ACCEPTED:
        return "accepted, waiting to be dispatched"
    if state == S.TICKET_STATE_DISPATCHED:
        return "dispatched, waiting for the handling unit to take it on"
    if state == S.TICKET_STATE_IN_PROGRESS:
        return "being handled by the district" if ticket.escalated else "being handled"
    return "received, waiting to be screened"


def _span(seconds: float, working: bool) -> str:
    hours = seconds / 3600
    if not working and hours >= 24 and hours % 24 == 0:
        days = int(hours // 24)
        return f"{days} day{'s' if days != 1 else ''}"
    kind = "working " if working else ""
    if hours >= 1:
        return f"{hours:g} {kind}hour{'s' if hours != 1 else ''}"
    minutes = max(1, round(seconds / 60))
    return f"{minutes} {kind}minute{'s' if minutes != 1 else ''}"


def service_notice(category: pb.Category | None) -> str | None:
    """What the platform promises for a category: its resolution target."""
    if category is None or not category.HasField("sla"):
        return None
    seconds = category.sla.resolve_within.ToTimedelta().total_seconds()
    if seconds <= 0:
        return None
    working = category.sla.clock == pb.SlaClock.SLA_CLOCK_WORKING_HOURS
    return f"to be resolved within {_span(seconds, working)}"


def service(category: pb.Category) -> dict[str, Any]:
    return {
        "service_code": category.code,
        "service_name": category.display_name,
        "description": category.description or None,
        "metadata": len(category.attributes) > 0,
        "type": "realtime",
        "keywords": ", ".join(category.keywords) or None,
        "group": category.group or None,
    }


def attribute(definition: pb.AttributeDefinition, order: int) -> dict[str, Any]:
    label = definition.display_name or definition.code
    return {
        "variable": True,
        "code": definition.code,
        "datatype": DATATYPES.get(definition.type, "string"),
        "required": definition.required,
        "datatype_description": DATATYPE_DESCRIPTIONS.get(definition.type),
        "order": order,
        "description": f"{label}: {definition.description}" if definition.description else label,
        "values": [{"key": o.key, "name": o.display_name} for o in definition.options],
    }


def service_definition(category: pb.Category) -> dict[str, Any]:
    return {
        "service_code": category.code,
        "attributes": [attribute(d, i) for i, d in enumerate(category.attributes, start=1)],
    }


def _request(
    ticket: pb.Ticket | pb.PublicTicket,
    *,
    service_name: str | None,
    description: str,
    agency: str | None,
    notice: str | None,
    address: str,
    address_id: str | None,
    point: tuple[float, float] | None,
) -> dict[str, Any]:
    """A service request in GeoReport v2's field order; what differs between the views is given."""
    return {
        "service_request_id": ticket_id(ticket.name),
        "status": status_of(ticket.state),
        "status_notes": status_notes(ticket),
        "service_name": service_name,
        "service_code": code_of(ticket.category),
        "description": description or None,
        "agency_responsible": agency,
        "service_notice": notice,
        "requested_datetime": w3c(ticket.create_time),
        "updated_datetime": w3c(ticket.update_time),
        "expected_datetime": w3c(ticket.expected_resolve_time),
        "address": address or None,
        "address_id": address_id,
        "zipcode": None,
        "lat": point[0] if point else None,
        "long": point[1] if point else None,
        "media_url": ticket.media_uris[0] if ticket.media_uris else None,
    }


def service_request(
    ticket: pb.Ticket, *, service_name: str | None, agency: str | None, notice: str | None
) -> dict[str, Any]:
    location = ticket.location
    return _request(
        ticket,
        service_name=service_name,
        description=ticket.description or ticket.title,
        agency=agency,
        notice=notice,
        address=location.address,
        address_id=location.household.removeprefix("households/") or None,
        point=(location.latitude, location.longitude) if location.has_point else None,
    )


def public_service_request(
    ticket: pb.PublicTicket, *, service_name: str | None, notice: str | None
) -> dict[str, Any]:
    """The public view of a request, from the tickets service's PublicTicket (texts already masked).
    `address_id` is a household's id, which is never public."""
    return _request(
        ticket,
        service_name=service_name,
        description=ticket.description,
        agency=ticket.lead_unit_display_name or None,
        notice=notice,
        address=ticket.address,
        address_id=None,
        point=(ticket.latitude, ticket.longitude) if ticket.has_point else None,
    )


def created(ticket: pb.Ticket, notice: str | None) -> dict[str, Any]:
    # The platform makes no accounts for Open311 reporters, so there is no account_id to give.
    return {"service_request_id": ticket_id(ticket.name), "service_notice": notice, "account_id": None}


def discovery(url: str) -> dict[str, Any]:
    return {
        "changeset": CHANGESET,
        "contact": CONTACT,
        "key_service": KEY_SERVICE,
        "endpoints": [
            {
                "specification": SPECIFICATION,
                "url": url,
                "changeset": CHANGESET,
                "type": "production",
                "formats": list(FORMAT_TYPES),
            }
        ],
    }
