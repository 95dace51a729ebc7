"""The public view of tickets: what anyone may read, with no caller (Open311's GET requests).

Built so that nothing private can come out of it even by mistake:
- the query selects only the columns of `PUBLIC_COLUMNS` (no reporter, contact, household id,
  attributes or rating is ever read), and only tickets whose category is marked public (an inner
  join on `categories.public`), so a category is private unless someone decided otherwise;
- the answer is a `PublicTicket`, a message with no field for anything private;
- every free text is masked (`masking.mask`), and the address of a report filed against a
  household (someone's home) is left out.
A ticket outside the view is NOT_FOUND, so the view does not even tell that it exists.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from sqlalchemy import Select, or_, select

from gov.tickets.v1 import tickets_pb2 as pb
from govkit import pagination, validation
from govkit.auth.scopes import validate_path
from govkit.db import Database
from govkit.errors import InvalidArgument, NotFound
from govkit.protobuf import period, timestamp
from govkit.sqlpaths import within
from services.tickets import convert
from services.tickets.catalogue import code_of
from services.tickets.masking import mask
from services.tickets.models import Category, Ticket, Unit

PUBLIC_COLUMNS = (
    Ticket.id,
    Ticket.category,
    Ticket.state,
    Ticket.title,
    Ticket.description,
    Ticket.address,
    Ticket.latitude,
    Ticket.longitude,
    Ticket.node,
    Ticket.media,
    Ticket.lead_unit,
    Ticket.escalated,
    Ticket.resolution,
    Ticket.reject_reason,
    Ticket.merged_into,
    Ticket.resolve_deadline,
    Ticket.create_time,
    Ticket.update_time,
    # Whether it was filed against a household: decides that the address stays out. The id does not.
    Ticket.household_id.is_not(None).label("at_home"),
    Unit.display_name.label("lead_unit_display_name"),
)


def _public_query() -> Select[Any]:
    return (
        select(*PUBLIC_COLUMNS)
        .join(Category, Category.code == Ticket.category)
        .outerjoin(Unit, Unit.code == Ticket.lead_unit)
        .where(Category.public.is_(True))
    )


def public_ticket(row: Any) -> pb.PublicTicket:
    """One row of `_public_query` as the public message, its texts masked."""
    has_point = row.latitude is not None and row.longitude is not None
    return pb.PublicTicket(
        name=f"tickets/{row.id}",
        category=f"categories/{row.category}",
        state=convert.value_of(pb.TicketState, row.state),
        description=mask(row.description or row.title),
        address="" if row.at_home else mask(row.address),
        latitude=row.latitude if has_point else 0.0,
        longitude=row.longitude if has_point else 0.0,
        has_point=has_point,
        node=row.node,
        media_uris=json.loads(row.media),
        lead_unit=f"units/{row.lead_unit}" if row.lead_unit else "",
        lead_unit_display_name=row.lead_unit_display_name or "",
        escalated=row.escalated,
        resolution=mask(row.resolution),
        reject_reason=mask(row.reject_reason),
        merged_into=f"tickets/{row.merged_into}" if row.merged_into else "",
        expected_resolve_time=timestamp(row.resolve_deadline),
        create_time=timestamp(row.create_time),
        update_time=timestamp(row.update_time),
    )


class PublicTickets:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, name: str) -> pb.PublicTicket:
        ticket_id = validation.resource_id(name, "tickets")
        async with self.db.sessions() as session:
            row = (await session.execute(_public_query().where(Ticket.id == ticket_id))).one_or_none()
        if row is None:
            raise NotFound(f"no public ticket tickets/{ticket_id}")
        return public_ticket(row)

    async def list(self, r: pb.ListPublicTicketsRequest) -> tuple[list[pb.PublicTicket], str]:
        size = pagination.page_size(r.page_size)
        start, end = period(r)
        state = convert.name_of(pb.TicketState, r.state, "state", required=False)
        category = code_of(r.category, "categories", "category") if r.category else ""
        node = validate_path(r.node, field="node", allow_global=False) if r.node else ""
        fp = pagination.fingerprint("public-tickets", state, category, node, start, end)
        cursor = pagination.decode_token(r.page_token, fp)
        query = _public_query()
        if state:
            query = query.where(Ticket.state == state)
        if category:
            query = query.where(Ticket.category == category)
        if node:
            query = query.where(within(Ticket.node, node))
        if start:
            query = query.where(Ticket.create_time >= start)
        if end:
            query = query.where(Ticket.create_time < end)
        if cursor:
            try:
                at, last = dt.datetime.fromisoformat(str(cursor["t"])), str(cursor["id"])
            except (KeyError, ValueError):
                raise InvalidArgument("is not a token this API issued", field="page_token") from None
            query = query.where(or_(Ticket.create_time < at, (Ticket.create_time == at) & (Ticket.id < last)))
        query = query.order_by(Ticket.create_time.desc(), Ticket.id.desc()).limit(size + 1)
        async with self.db.sessions() as session:
            rows = list(await session.execute(query))
        page, token = pagination.cut(rows, size, fp, lambda t: {"t": t.create_time.isoformat(), "id": t.id})
        return [public_ticket(row) for row in page], token
