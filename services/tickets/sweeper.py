"""The deadline sweeper: marks breaches and announces each one once, however many replicas sweep.

Every replica sweeps. A breach is a row keyed by (ticket, deadline kind, deadline), inserted in
the same transaction as the ticket's overdue flag and the overdue event; a second replica's
insert of the same key fails, and its transaction — event included — rolls back.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from gov.tickets.v1 import events_pb2
from govkit.db import Database, utcnow
from govkit.errors import FailedPrecondition, PermissionDenied
from govkit.protobuf import timestamp
from govkit.telemetry import meter
from services.tickets import convert, facts, lifecycle, statistics
from services.tickets.catalogue import emit
from services.tickets.flows import (
    OPEN_STATES,
    announce,
    append_entry,
    domain_ticket,
    entry_values,
    load_units,
)
from services.tickets.models import Breach, Category, Ticket, TicketUnit

log = logging.getLogger(__name__)

SYSTEM = lifecycle.Actor("system", "system")
# Waiting for someone to act: the dispatcher to screen or dispatch, the lead unit to report in.
AWAITING_ACKNOWLEDGEMENT = ("submitted", "accepted", "escalated", "dispatched")
BATCH = 500

_breaches = meter.create_counter("gov.tickets.breaches", description="deadlines breached, by kind")


class _AlreadyHandled(Exception):
    """The ticket changed since it was selected: nothing to mark."""


class Sweeper:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def sweep_once(self, now: dt.datetime | None = None) -> int:
        """Mark every deadline passed by `now`; returns how many breaches this replica recorded."""
        now = now or utcnow()
        async with self.db.sessions() as session:
            ack = (
                await session.execute(
                    select(Ticket.id, Ticket.acknowledge_deadline)
                    .where(
                        Ticket.state.in_(AWAITING_ACKNOWLEDGEMENT),
                        Ticket.acknowledge_time.is_(None),
                        Ticket.acknowledge_overdue.is_(False),
                        Ticket.acknowledge_deadline <= now,
                    )
                    .limit(BATCH)
                )
            ).all()
            resolve = (
                await session.execute(
                    select(Ticket.id, Ticket.resolve_deadline)
                    .where(
                        Ticket.state.in_(OPEN_STATES),
                        Ticket.resolve_overdue.is_(False),
                        Ticket.resolve_deadline <= now,
                    )
                    .limit(BATCH)
                )
            ).all()
        recorded = 0
        for kind, due in (("acknowledge", ack), ("resolve", resolve)):
            for ticket_id, deadline in due:
                recorded += await self._breach(ticket_id, kind, deadline, now)
        return recorded

    async def _breach(self, ticket_id: str, kind: str, deadline: dt.datetime, now: dt.datetime) -> int:
        try:
            async with self.db.transaction() as session:
                session.add(Breach(ticket_id=ticket_id, kind=kind, deadline=deadline, create_time=now))
                await session.flush()  # a replica that got here first makes this fail
                row = await session.get(Ticket, ticket_id, with_for_update=True)
                if row is None or not _still_breached(row, kind, deadline):
                    raise _AlreadyHandled
                counted = statistics.contribution(row)
                if kind == "acknowledge":
                    row.acknowledge_overdue = True
                else:
                    row.resolve_overdue = True
                row.update_time = now
                escalated = await self._escalate_if_ruled(session, row, kind, now)
                units = await load_units(session, ticket_id)
                await emit(
                    session,
                    "system",
                    "tickets.v1.ticket.overdue",
                    events_pb2.TicketOverdue(
                        ticket=convert.ticket_summary(row, units),
                        kind=events_pb2.DEADLINE_KIND_ACKNOWLEDGE
                        if kind == "acknowledge"
                        else events_pb2.DEADLINE_KIND_RESOLVE,
                        deadline=timestamp(deadline),
                        escalated=escalated,
                    ),
                    f"tickets/{ticket_id}",
                )
                # Last, as in a transition: the month sums' row locks are the ones every writer
                # of the district's month waits for (TicketFlows.transition).
                await statistics.record(session, counted, statistics.contribution(row))
        except (IntegrityError, _AlreadyHandled):
            return 0
        _breaches.add(1, {"kind": kind})
        log.info("deadline breached", extra={"ticket": ticket_id, "kind": kind, "escalated": escalated})
        return 1

    async def _escalate_if_ruled(
        self, session: AsyncSession, row: Ticket, kind: str, now: dt.datetime
    ) -> bool:
        """The category's rule: a street that lets the acknowledge deadline pass hands it up."""
        if kind != "acknowledge" or row.escalated:
            return False
        category = await session.get(Category, row.category)
        if category is None or not category.escalate_on_acknowledge_breach:
            return False
        units = await load_units(session, row.id)
        command = lifecycle.Command(lifecycle.Action.ESCALATE, reason="acknowledge deadline passed")
        try:
            after, entry = lifecycle.apply(domain_ticket(row, units), command, SYSTEM, now)
        except (FailedPrecondition, PermissionDenied):
            return False
        row.state = after.state.value
        row.lead_unit = ""
        row.acknowledge_time = None
        await session.execute(delete(TicketUnit).where(TicketUnit.ticket_id == row.id))
        facts.refresh(row)
        timeline = await append_entry(
            session,
            entry_values(
                row.id, "escalate", "system", now, entry.from_state.value, entry.to_state.value, entry.note
            ),
        )
        await announce(session, "system", row, [], timeline)
        return True

    async def run(self, interval: float) -> None:
        while True:
            try:
                await self.sweep_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("deadline sweep failed; trying again next round")
            await asyncio.sleep(interval)


def _still_breached(row: Ticket, kind: str, deadline: dt.datetime) -> bool:
    if kind == "acknowledge":
        return (
            row.state in AWAITING_ACKNOWLEDGEMENT
            and row.acknowledge_time is None
            and not row.acknowledge_overdue
            and row.acknowledge_deadline == deadline
        )
    return row.state in OPEN_STATES and not row.resolve_overdue and row.resolve_deadline == deadline
