"""Rows to protobuf messages, and enum values to the lowercase names stored in the tables."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence

from google.protobuf import duration_pb2

from gov.tickets.v1 import events_pb2
from gov.tickets.v1 import tickets_pb2 as pb
from govkit import protobuf
from govkit.protobuf import timestamp
from govkit.rowmap import RowMap, computed, fmt
from services.tickets import models
from services.tickets.attributes import Definition

# Enum values <-> the lower-case names the tables store; the flows call them convert.name_of/value_of.
name_of = protobuf.stored_name
value_of = protobuf.from_stored_name


def duration(seconds: float) -> duration_pb2.Duration:
    return protobuf.duration(dt.timedelta(seconds=seconds))


def _location(latitude: float | None, longitude: float | None, household: str, address: str) -> pb.Location:
    return pb.Location(
        latitude=latitude or 0.0,
        longitude=longitude or 0.0,
        has_point=latitude is not None and longitude is not None,
        household=f"households/{household}" if household else "",
        address=address,
    )


def _rating(score: int | None, comment: str, by: str, time: dt.datetime | None) -> pb.Rating | None:
    if score is None:
        return None
    return pb.Rating(score=score, comment=comment, recorded_by=by, time=timestamp(time))


def _attributes(text: str) -> list[pb.TicketAttribute]:
    return [pb.TicketAttribute(code=code, values=values) for code, values in json.loads(text).items()]


def _definitions(text: str) -> list[Definition]:
    return [Definition.from_json(d) for d in json.loads(text)]


def definitions(row: models.Category) -> list[Definition]:
    return _definitions(row.attributes)


attribute_definition = RowMap(
    pb.AttributeDefinition,
    Definition,
    options=computed(
        lambda options: [pb.AttributeOption(key=k, display_name=n) for k, n in options], "options"
    ),
)
unit = RowMap(pb.Unit, models.Unit, name=fmt("units/{code}"))
member = RowMap(
    pb.UnitMember,
    models.UnitMember,
    name=fmt("units/{unit_code}/members/{user_id}"),
    user=fmt("users/{user_id}"),
)
category = RowMap(
    pb.Category,
    models.Category,
    name=fmt("categories/{code}"),
    group="group_name",
    keywords=computed(json.loads, "keywords"),
    default_unit=fmt("units/{default_unit}", optional=True),
    attributes=computed(lambda text: [attribute_definition(d) for d in _definitions(text)], "attributes"),
    sla=computed(
        lambda acknowledge, resolve, clock, escalate: pb.SlaPolicy(
            acknowledge_within=duration(acknowledge),
            resolve_within=duration(resolve),
            clock=value_of(pb.SlaClock, clock),
            escalate_on_acknowledge_breach=escalate,
        ),
        "acknowledge_seconds",
        "resolve_seconds",
        "sla_clock",
        "escalate_on_acknowledge_breach",
    ),
)
_UNIT_ASSIGNMENT = RowMap(pb.UnitAssignment, models.TicketUnit, unit=fmt("units/{unit}"))
_TICKET = RowMap(
    pb.Ticket,
    models.Ticket,
    name=fmt("tickets/{id}"),
    category=fmt("categories/{category}"),
    media_uris=computed(json.loads, "media"),
    location=computed(_location, "latitude", "longitude", "household_id", "address"),
    contact=computed(
        lambda name, phone: pb.Contact(display_name=name, phone=phone), "contact_name", "contact_phone"
    ),
    attributes=computed(_attributes, "attributes"),
    suggested_unit=fmt("units/{suggested_unit}", optional=True),
    lead_unit=fmt("units/{lead_unit}", optional=True),
    expected_resolve_time="resolve_deadline",
    resolution_media_uris=computed(json.loads, "resolution_media"),
    rating=computed(_rating, "rating", "rating_comment", "rating_by", "rating_time"),
    merged_into=fmt("tickets/{merged_into}", optional=True),
    possible_duplicates=computed(
        lambda text: [f"tickets/{t}" for t in json.loads(text)], "possible_duplicates"
    ),
)
timeline_entry = RowMap(
    pb.TimelineEntry,
    models.TimelineEntry,
    name=fmt("tickets/{ticket_id}/timeline/{seq}"),
    unit=fmt("units/{unit}", optional=True),
    details=computed(json.loads, "details"),
)
_CALENDAR_DAY = RowMap(pb.CalendarDay, models.CalendarDay, date="day", display_name="name")


def ticket(row: models.Ticket, units: Sequence[models.TicketUnit]) -> pb.Ticket:
    lead_first = sorted(units, key=lambda u: (u.role != "lead", u.unit))
    return _TICKET(row, units=[_UNIT_ASSIGNMENT(u) for u in lead_first])


# ---------------------------------------------------------------- event payloads (no contact data)

# Timeline details that are facts; the rest (a return or rejection reason, a rating comment) is
# free text a person typed, and stays out of events.
EVENT_DETAILS = frozenset(
    {"source", "lead_unit", "assisting_units", "mediation_outcome", "score", "original"}
)


def ticket_summary(row: models.Ticket, units: Sequence[models.TicketUnit]) -> events_pb2.TicketSummary:
    """What events say about a ticket: its facts, none of the reporter's texts or contact."""
    full = ticket(row, units)
    return protobuf.project(
        full,
        events_pb2.TicketSummary,
        household=full.location.household,
        units=[protobuf.project(u, events_pb2.TicketUnitSummary) for u in full.units],
        rating=row.rating or 0,
    )


def entry_summary(row: models.TimelineEntry) -> events_pb2.EntrySummary:
    full = timeline_entry(row)
    facts = {k: v for k, v in full.details.items() if k in EVENT_DETAILS}
    return protobuf.project(full, events_pb2.EntrySummary, details=facts)


def calendar_year(
    year: int, days: Sequence[models.CalendarDay], update_time: dt.datetime | None
) -> pb.CalendarYear:
    return pb.CalendarYear(
        name=f"calendarYears/{year}",
        year=year,
        days=[_CALENDAR_DAY(d) for d in sorted(days, key=lambda d: d.day)],
        update_time=timestamp(update_time),
    )
