"""Automatic earning: rules that award a reward indicator when another service's event says a
resident did something the community values, exactly once per event.

The handler runs inside the consumer's transaction, together with the record of the event's id
(govkit.consumer), and the award's id is derived from the event's id: a redelivered event, or
the same event published twice, changes the ledger once.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gov.blocks.v1 import events_pb2 as blocks_events
from gov.common.v1 import event_pb2
from gov.points.v1 import points_pb2 as pb
from gov.tickets.v1 import events_pb2 as tickets_events
from gov.tickets.v1 import tickets_pb2
from govkit import pagination
from govkit.auth.principal import Principal
from govkit.auth.scopes import ancestors, covers, validate_path
from govkit.db import new_id
from govkit.errors import DomainError, InvalidArgument, NotFound
from govkit.events import unpack_payload
from govkit.protobuf import timestamp
from services.points import convert, domain
from services.points.catalogue import require_configure, resource_id
from services.points.flows import PointsFlows
from services.points.models import Award, EarningRule, Indicator

log = logging.getLogger(__name__)

# Which event each trigger listens to: tickets' on the TICKETS stream, blocks' on BLOCKS.
SUBJECTS = {
    "tickets.v1.ticket.accepted": "report_accepted",
    "tickets.v1.ticket.closed": "ticket_rated",
    "tickets.v1.ticket.resolved": "dispute_settled",
}
VISIT_SUBJECTS = {"blocks.v1.visit.recorded": "visit_issue_resolved"}
RULE_FIELDS = ("indicator", "active")


def earns(trigger: str, ticket: tickets_events.TicketSummary, entry: tickets_events.EntrySummary) -> bool:
    """The condition each trigger puts on the ticket and the step that made the event (plain data,
    no I/O). Events carry summaries, never contact data; they are enough to decide."""
    if not ticket.reporter.startswith("users/"):
        return False
    if trigger == "report_accepted":
        return ticket.source == tickets_pb2.TICKET_SOURCE_RESIDENT
    if trigger == "ticket_rated":
        # Rated by the reporter themselves, not a rating staff recorded on their behalf.
        return ticket.rating > 0 and entry.actor == ticket.reporter
    if trigger == "dispute_settled":
        return (
            ticket.kind == tickets_pb2.TICKET_KIND_DISPUTE
            and ticket.mediation_outcome == tickets_pb2.MEDIATION_OUTCOME_SETTLED
        )
    return False


def visit_earns(visit: blocks_events.VisitSummary) -> bool:
    """A household visit earns its household when it resolved at least one issue."""
    return visit.issues_resolved > 0 and visit.household.startswith("households/") and bool(visit.block)


def rule_message(row: EarningRule) -> pb.EarningRule:
    return pb.EarningRule(
        name=f"earningRules/{row.id}",
        node=row.node,
        trigger=convert.value_of(pb.Trigger, row.trigger),
        indicator=f"indicators/{row.indicator_id}",
        active=row.active,
        create_time=timestamp(row.create_time),
        update_time=timestamp(row.update_time),
    )


class Earning:
    def __init__(self, flows: PointsFlows) -> None:
        self.flows = flows
        self.db = flows.db

    # ---------------------------------------------------------------- rules

    async def _usable(self, session: AsyncSession, indicator_name: str, node: str) -> Indicator:
        iid = resource_id(indicator_name, "indicators", "earning_rule.indicator")
        indicator = await session.get(Indicator, iid)
        if indicator is None:
            raise InvalidArgument(f"no indicators/{iid}", field="earning_rule.indicator")
        if indicator.kind != domain.IndicatorKind.REWARD or indicator.evidence_required:
            raise InvalidArgument(
                "must be a reward that needs no evidence (nobody attaches any to an event)",
                field="earning_rule.indicator",
            )
        if not covers(indicator.node, node):
            raise InvalidArgument(f"is not published at or above {node}", field="earning_rule.indicator")
        return indicator

    async def create_rule(self, principal: Principal, msg: pb.EarningRule) -> EarningRule:
        node = validate_path(msg.node, field="earning_rule.node", allow_global=False)
        require_configure(principal, node)
        trigger = convert.name_of(pb.Trigger, msg.trigger, "earning_rule.trigger")
        now = self.flows.clock()
        async with self.db.transaction() as session:
            indicator = await self._usable(session, msg.indicator, node)
            row = EarningRule(
                id=new_id(),
                node=node,
                trigger=trigger,
                indicator_id=indicator.id,
                active=True,
                create_time=now,
                update_time=now,
            )
            session.add(row)
        return row

    async def list_rules(self, node: str, page_size: int, page_token: str) -> tuple[list[EarningRule], str]:
        path = validate_path(node, field="node", allow_global=False)
        size = pagination.page_size(page_size)
        fp = pagination.fingerprint("earning-rules", path)
        cursor = pagination.decode_token(page_token, fp, i=str)
        stmt = select(EarningRule).where(EarningRule.node.in_(ancestors(path)))
        if cursor:
            stmt = stmt.where(EarningRule.id > cursor["i"])
        async with self.db.sessions() as session:
            rows = list((await session.scalars(stmt.order_by(EarningRule.id).limit(size + 1))).all())
        return pagination.cut(rows, size, fp, lambda r: {"i": r.id})

    async def update_rule(
        self, principal: Principal, msg: pb.EarningRule, paths: Sequence[str]
    ) -> EarningRule:
        rid = resource_id(msg.name, "earningRules", "earning_rule.name")
        async with self.db.transaction() as session:
            row = await session.get(EarningRule, rid, with_for_update=True)
            if row is None:
                raise NotFound(f"no earningRules/{rid}")
            require_configure(principal, row.node)
            if "indicator" in paths:
                row.indicator_id = (await self._usable(session, msg.indicator, row.node)).id
            if "active" in paths:
                row.active = msg.active
            row.update_time = self.flows.clock()
        return row

    # ---------------------------------------------------------------- events

    async def handle(self, session: AsyncSession, event: event_pb2.Event) -> None:
        earned = self._earned(event)
        if earned is None:
            return
        trigger, node, recipient = earned
        rule = await session.scalar(
            select(EarningRule)
            .where(
                EarningRule.trigger == trigger,
                EarningRule.active.is_(True),
                EarningRule.node.in_(ancestors(node)),
            )
            .order_by(EarningRule.node.desc())  # the nearest node: the longest path among ancestors
            .limit(1)
        )
        if rule is None:
            return
        award_id = f"ev-{event.id}"
        if await session.get(Award, award_id) is not None:
            return  # the same event again, under another delivery: already earned
        try:
            # A savepoint: a refused award (cap reached, indicator switched off) leaves no trace,
            # and the event still counts as handled.
            async with session.begin_nested():
                indicator = await self.flows.catalogue.in_force(session, rule.indicator_id, node)
                await self.flows.record_in(
                    session,
                    "system",
                    award_id,
                    domain.account_id(recipient),
                    recipient,
                    node,
                    indicator,
                    f"{event.type} {event.resource}",
                    [],
                    {"event": event.id, "rule": rule.id},
                    source_event=f"{event.type}:{event.id}",
                )
        except DomainError as exc:
            log.info("event %s earns nothing: %s", event.id, exc)

    @staticmethod
    def _earned(event: event_pb2.Event) -> tuple[str, str, str] | None:
        """(trigger, node, recipient) when the event meets its trigger's condition, else None."""
        if (trigger := SUBJECTS.get(event.type)) is not None:
            payload = unpack_payload(event, tickets_events.TicketTransitioned)
            ticket = payload.ticket
            if not ticket.node or not earns(trigger, ticket, payload.entry):
                return None
            return trigger, ticket.node, ticket.reporter
        if (trigger := VISIT_SUBJECTS.get(event.type)) is not None:
            visit = unpack_payload(event, blocks_events.VisitRecorded).visit
            return (trigger, visit.block, visit.household) if visit_earns(visit) else None
        return None
