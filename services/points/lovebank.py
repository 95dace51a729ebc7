"""The love bank's redemptions: points reserved (a pending entry) and stock taken in one
transaction, posted at the counter, voided (stock returned) on cancellation or timeout.

Exact under any concurrency: the resident's account row is locked before anything is read, and
stock comes off with a conditional UPDATE (`stock >= quantity`), so 50 people racing for 10 units
get exactly 10 reservations and nobody's points are double-spent.
"""

from __future__ import annotations

import datetime as dt
import json

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from gov.points.v1 import events_pb2
from gov.points.v1 import points_pb2 as pb
from govkit import pagination, validation
from govkit.auth.principal import Principal
from govkit.auth.roles import Permission
from govkit.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from govkit.keyset import newest_first, time_id_cursor
from services.points import catalogue, convert, domain, repository
from services.points.catalogue import resource_id
from services.points.domain import Period, RedemptionState
from services.points.flows import PointsFlows
from services.points.ledger import REDEEMED, Kind, Phase
from services.points.models import ExchangePoint, Item, Redemption

_HOLDING = (RedemptionState.RESERVED.value, RedemptionState.FULFILLED.value)
MAX_QUANTITY = 100


class LoveBank:
    def __init__(self, flows: PointsFlows) -> None:
        self.flows = flows
        self.db = flows.db

    async def _announce(self, session: AsyncSession, actor: str, row: Redemption, verb: str) -> None:
        await repository.emit(
            session,
            actor,
            f"points.v1.redemption.{verb}",
            events_pb2.RedemptionChanged(redemption=convert.redemption_facts(row)),
            f"redemptions/{row.id}",
        )

    async def _row(self, redemption_id: str) -> Redemption | None:
        async with self.db.sessions() as session:
            return await session.get(Redemption, redemption_id)

    async def create(self, principal: Principal, msg: pb.Redemption, request_id: str) -> Redemption:
        redemption_id = domain.request_id(request_id)
        if not principal.is_user:
            raise PermissionDenied("a resident redeems their own points")
        point_id, item_id = catalogue.item_ids(msg.item, "redemption.item")
        if not 1 <= msg.quantity <= MAX_QUANTITY:
            raise InvalidArgument(f"must be 1..{MAX_QUANTITY}", field="redemption.quantity")
        account_id = domain.account_id(principal.subject)
        body = {"item": item_id, "quantity": msg.quantity, "by": principal.subject}
        existing = await self._row(redemption_id)
        if existing is not None:
            domain.same_request(existing.request_hash, body, "redemption", redemption_id)
            return existing
        now = self.flows.clock()
        try:
            async with self.db.transaction() as session:
                # The account's lock first: every change to these points queues behind it.
                loaded = await repository.load(session, account_id)
                if loaded is None:
                    raise FailedPrecondition("not enough points: the account has none yet")
                item = await session.get(Item, item_id)
                point = await session.get(ExchangePoint, point_id)
                if item is None or point is None or item.exchange_point_id != point_id:
                    raise InvalidArgument(f"no {msg.item}", field="redemption.item")
                if not item.active or not point.active:
                    raise FailedPrecondition(f"{msg.item} is not offered now")
                if item.limit_per_person:
                    taken = await session.scalar(
                        select(func.coalesce(func.sum(Redemption.quantity), 0)).where(
                            Redemption.account_id == account_id,
                            Redemption.item_id == item_id,
                            Redemption.state.in_(_HOLDING),
                            Redemption.create_time >= domain.period_start(Period(item.limit_period), now),
                        )
                    )
                    domain.check_limit(
                        item.limit_per_person, Period(item.limit_period), int(taken or 0), msg.quantity
                    )
                points = item.price * msg.quantity
                loaded.book.reserve(points)
                await catalogue.take_stock(session, item_id, msg.quantity)
                row = Redemption(
                    id=redemption_id,
                    item_id=item_id,
                    exchange_point_id=point_id,
                    account_id=account_id,
                    resident=principal.subject,
                    quantity=msg.quantity,
                    points=points,
                    state=RedemptionState.RESERVED.value,
                    expire_time=now + self.flows.settings.redemption_hold,
                    fulfilled_by="",
                    cancelled_by="",
                    reason="",
                    create_time=now,
                    update_time=now,
                    request_hash=domain.fingerprint(body),
                )
                session.add(row)
                await session.flush()
                entry = await repository.add_entry(
                    session,
                    id=redemption_id,
                    kind=Kind.REDEMPTION,
                    phase=Phase.PENDING,
                    debit=account_id,
                    credit=REDEEMED,
                    account=account_id,
                    amount=points,
                    actor=principal.subject,
                    now=now,
                    redemption_id=redemption_id,
                    timeout_time=row.expire_time,
                )
                await repository.save(session, loaded, now)
                await repository.announce(session, entry)
                await self._announce(session, principal.subject, row, "reserved")
            return row
        except IntegrityError:
            existing = await self._row(redemption_id)
            if existing is None:
                domain.raise_conflict("entry", redemption_id)
            domain.same_request(existing.request_hash, body, "redemption", redemption_id)
            return existing

    async def _staff_of(self, principal: Principal, point_id: str) -> bool:
        async with self.db.sessions() as session:
            point = await session.get(ExchangePoint, point_id)
        if point is None:
            return False
        return principal.user_id in json.loads(point.staff) or principal.can(
            Permission.POINTS_CONFIGURE, point.node
        )

    async def get(self, principal: Principal, name: str) -> Redemption:
        row = await self._row(resource_id(name, "redemptions"))
        if row is None or not (
            row.resident == principal.subject or await self._staff_of(principal, row.exchange_point_id)
        ):
            raise NotFound(f"no {name}")
        return row

    async def list(
        self, principal: Principal, req: pb.ListRedemptionsRequest
    ) -> tuple[list[Redemption], str]:
        size = pagination.page_size(req.page_size)
        state = convert.name_of(pb.RedemptionState, req.state, "state", required=False)
        point_id = (
            resource_id(req.exchange_point, "exchangePoints", "exchange_point") if req.exchange_point else ""
        )
        fp = pagination.fingerprint("redemptions", point_id, state, principal.subject)
        cursor = time_id_cursor(req.page_token, fp)
        if point_id:
            if not await self._staff_of(principal, point_id):
                raise PermissionDenied("only the exchange point's staff see its redemptions")
            stmt = select(Redemption).where(Redemption.exchange_point_id == point_id)
        else:
            stmt = select(Redemption).where(Redemption.resident == principal.subject)
        if state:
            stmt = stmt.where(Redemption.state == state)
        return await newest_first(self.db, stmt, Redemption.create_time, Redemption.id, cursor, size, fp)

    async def fulfil(self, principal: Principal, name: str) -> Redemption:
        row = await self._row(resource_id(name, "redemptions"))
        if row is None:
            raise NotFound(f"no {name}")
        if not await self._staff_of(principal, row.exchange_point_id):
            raise PermissionDenied("only the exchange point's staff hand items over")
        return await self._finish(row.id, RedemptionState.FULFILLED, principal.subject, "")

    async def cancel(self, principal: Principal, name: str, reason: str) -> Redemption:
        reason = validation.text(reason, "reason", max_len=500, required=False, multiline=True)
        row = await self._row(resource_id(name, "redemptions"))
        if row is None:
            raise NotFound(f"no {name}")
        if row.resident != principal.subject and not await self._staff_of(principal, row.exchange_point_id):
            raise PermissionDenied("only the resident or the exchange point's staff cancel a redemption")
        return await self._finish(row.id, RedemptionState.CANCELLED, principal.subject, reason)

    async def _finish(self, redemption_id: str, to: RedemptionState, actor: str, reason: str) -> Redemption:
        now = self.flows.clock()
        async with self.db.transaction() as session:
            row = await self.finish_in(session, redemption_id, to, actor, reason, now)
        return row

    async def finish_in(
        self,
        session: AsyncSession,
        redemption_id: str,
        to: RedemptionState,
        actor: str,
        reason: str,
        now: dt.datetime,
    ) -> Redemption:
        """Fulfil, cancel or expire a reservation inside the caller's transaction."""
        first = await session.get(Redemption, redemption_id)
        assert first is not None
        loaded = await repository.load(session, first.account_id)
        assert loaded is not None
        row = await session.get(Redemption, redemption_id, with_for_update=True, populate_existing=True)
        assert row is not None
        domain.check_redemption_step(RedemptionState(row.state), to)
        row.state, row.update_time = to.value, now
        if to == RedemptionState.FULFILLED:
            row.fulfilled_by = actor
            entry = await repository.add_entry(
                session,
                id=f"{row.id}:post",
                kind=Kind.REDEMPTION,
                phase=Phase.POST,
                debit=row.account_id,
                credit=REDEEMED,
                account=row.account_id,
                amount=row.points,
                actor=actor,
                now=now,
                pending_id=row.id,
                redemption_id=row.id,
            )
            await repository.allocate(session, entry.id, loaded.book.post_reserved(row.points))
            await repository.announce(session, entry)
        else:
            row.cancelled_by, row.reason = actor, reason
            await self.flows.void(session, loaded, row.id, Kind.REDEMPTION, row.points, actor, now, reason)
            await catalogue.return_stock(session, row.item_id, row.quantity)
        await repository.save(session, loaded, now)
        verb = "fulfilled" if to == RedemptionState.FULFILLED else "cancelled"
        await self._announce(session, actor, row, verb)
        return row
