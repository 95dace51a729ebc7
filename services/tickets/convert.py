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
from services.tickets import models
from services.tickets.attributes import Definition

# Enum values <-> the lower-case names the tables store; the flows call them convert.name_of/value_of.
name_of = protobuf.stored_name
value_of = protobuf.from_stored_name


def duration(seconds: float) -> duration_pb2.Duration:
    return protobuf.duration(dt.timedelta(seconds=seconds))


def unit(row: models.Unit) -> pb.Unit:
    return pb.Unit(
        name=f"units/{row.code}",
        code=row.code,
        display_name=row.display_name,
        kind=value_of(pb.UnitKind, row.kind),
        node=row.node,
        create_time=timestamp(row.create_time),
    )


def member(row: models.UnitMember) -> pb.UnitMember:
    return pb.UnitMember(
        name=f"units/{row.unit_code}/members/{row.user_id}",
        user=f"users/{row.user_id}",
        create_time=timestamp(row.create_time),
    )


def definitions(row: models.Category) -> list[Definition]:
    return [Definition.from_json(d) for d in json.loads(row.attributes)]


def attribute_definition(d: Definition) -> pb.AttributeDefinition:
    return pb.AttributeDefinition(
        code=d.code,
        display_name=d.display_name,
        description=d.description,
        type=value_of(pb.AttributeType, d.type),
        required=d.required,
        options=[pb.AttributeOption(key=k, display_name=n) for k, n in d.options],
    )


def category(row: models.Category) -> pb.Category:
    return pb.Category(
        name=f"categories/{row.code}",
        code=row.code,
        display_name=row.display_name,
        group=row.group_name,
        description=row.description,
        keywords=json.loads(row.keywords),
        default_unit=f"units/{row.default_unit}" if row.default_unit else "",
        default_center=value_of(pb.UnitKind, row.default_center),
        priority=value_of(pb.Priority, row.priority),
        matter_class=value_of(pb.MatterClass, row.matter_class),
        kind=value_of(pb.TicketKind, row.kind),
        attributes=[attribute_definition(d) for d in definitions(row)],
        sla=pb.SlaPolicy(
            acknowledge_within=duration(row.acknowledge_seconds),
            resolve_within=duration(row.resolve_seconds),
            clock=value_of(pb.SlaClock, row.sla_clock),
            escalate_on_acknowledge_breach=row.escalate_on_acknowledge_breach,
        ),
        active=row.active,
        create_time=timestamp(row.create_time),
        update_time=timestamp(row.update_time),
        public=bool(row.public),
    )


def ticket(row: models.Ticket, units: Sequence[models.TicketUnit]) -> pb.Ticket:
    has_point = row.latitude is not None and row.longitude is not None
    message = pb.Ticket(
        name=f"tickets/{row.id}",
        category=f"categories/{row.category}",
        kind=value_of(pb.TicketKind, row.kind),
        state=value_of(pb.TicketState, row.state),
        source=value_of(pb.TicketSource, row.source),
        title=row.title,
        description=row.description,
        media_uris=json.loads(row.media),
        location=pb.Location(
            latitude=row.latitude or 0.0,
            longitude=row.longitude or 0.0,
            has_point=has_point,
            household=f"households/{row.household_id}" if row.household_id else "",
            address=row.address,
        ),
        node=row.node,
        street=row.street,
        district=row.district,
        reporter=row.reporter,
        contact=pb.Contact(display_name=row.contact_name, phone=row.contact_phone),
        attributes=[
            pb.TicketAttribute(code=code, values=values)
            for code, values in json.loads(row.attributes).items()
        ],
        priority=value_of(pb.Priority, row.priority),
        matter_class=value_of(pb.MatterClass, row.matter_class),
        suggested_unit=f"units/{row.suggested_unit}" if row.suggested_unit else "",
        lead_unit=f"units/{row.lead_unit}" if row.lead_unit else "",
        units=[
            pb.UnitAssignment(
                unit=f"units/{u.unit}",
                role=value_of(pb.UnitRole, u.role),
                status=value_of(pb.UnitStatus, u.status),
                reason=u.reason,
                update_time=timestamp(u.update_time),
            )
            for u in sorted(units, key=lambda u: (u.role != "lead", u.unit))
        ],
        escalated=row.escalated,
        acknowledge_deadline=timestamp(row.acknowledge_deadline),
        resolve_deadline=timestamp(row.resolve_deadline),
        expected_resolve_time=timestamp(row.resolve_deadline),
        acknowledge_overdue=row.acknowledge_overdue,
        resolve_overdue=row.resolve_overdue,
        acknowledge_time=timestamp(row.acknowledge_time),
        resolve_time=timestamp(row.resolve_time),
        close_time=timestamp(row.close_time),
        resolution=row.resolution,
        resolution_media_uris=json.loads(row.resolution_media),
        mediation_outcome=value_of(pb.MediationOutcome, row.mediation_outcome),
        merged_into=f"tickets/{row.merged_into}" if row.merged_into else "",
        reject_reason=row.reject_reason,
        possible_duplicates=[f"tickets/{t}" for t in json.loads(row.possible_duplicates)],
        create_time=timestamp(row.create_time),
        update_time=timestamp(row.update_time),
    )
    if row.rating is not None:
        message.rating.CopyFrom(
            pb.Rating(
                score=row.rating,
                comment=row.rating_comment,
                recorded_by=row.rating_by,
                time=timestamp(row.rating_time),
            )
        )
    return message


def timeline_entry(row: models.TimelineEntry) -> pb.TimelineEntry:
    return pb.TimelineEntry(
        name=f"tickets/{row.ticket_id}/timeline/{row.seq}",
        action=value_of(pb.Action, row.action),
        actor=row.actor,
        time=timestamp(row.time),
        from_state=value_of(pb.TicketState, row.from_state),
        to_state=value_of(pb.TicketState, row.to_state),
        note=row.note,
        unit=f"units/{row.unit}" if row.unit else "",
        details=json.loads(row.details),
    )


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
        days=[
            pb.CalendarDay(date=d.day, kind=value_of(pb.DayKind, d.kind), display_name=d.name)
            for d in sorted(days, key=lambda d: d.day)
        ],
        update_time=timestamp(update_time),
    )
