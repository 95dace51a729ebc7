"""Time-driven ledger work, run by every replica: void pending entries past their timeout,
expire unspent points past their validity (oldest first), and tell residents ahead of expiry.

Replicas may sweep at once: each change locks the account row (or flips a flag with a
conditional UPDATE) and re-checks under the lock, so nothing happens twice.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging

from sqlalchemy import select, update
from sqlalchemy.orm import aliased

from gov.points.v1 import events_pb2
from govkit.db import new_id, rowcount
from govkit.errors import FailedPrecondition
from govkit.protobuf import timestamp
from services.points import domain, repository
from services.points.domain import AwardState, RedemptionState
from services.points.flows import PointsFlows
from services.points.ledger import EXPIRED, Kind, Phase
from services.points.lovebank import LoveBank
from services.points.models import Award, Entry, Lot

log = logging.getLogger(__name__)
BATCH = 100


class Sweeper:
    def __init__(self, flows: PointsFlows, lovebank: LoveBank) -> None:
        self.flows = flows
        self.lovebank = lovebank
        self.db = flows.db

    async def run(self, interval: float) -> None:
        while True:
            try:
                await self.sweep(self.flows.clock())
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("points sweep failed; retrying next round")
            await asyncio.sleep(interval)

    async def sweep(self, now: dt.datetime) -> dict[str, int]:
        return {
            "voided": await self._all(self.void_timed_out, now),
            "expired": await self.expire_points(now),
            "warned": await self._all(self.warn_expiring, now),
        }

    @staticmethod
    async def _all(step, now: dt.datetime) -> int:  # type: ignore[no-untyped-def]
        """Repeat a batch step until a round finds little left, so a backlog clears in one sweep.
        A round that changes nothing (everything it found was handled meanwhile) ends it too."""
        total = 0
        while True:
            done = await step(now)
            total += done
            if done < BATCH // 2:
                return total

    async def void_timed_out(self, now: dt.datetime) -> int:
        """Awards nobody decided in time (rewards and penalties alike), and redemptions nobody
        collected: voided, stock returned."""
        resolution = aliased(Entry)
        async with self.db.sessions() as session:
            awards = list(
                await session.scalars(
                    select(Award.id)
                    .where(Award.state == AwardState.PENDING_APPROVAL.value, Award.approval_deadline <= now)
                    .order_by(Award.approval_deadline)
                    .limit(BATCH)
                )
            )
            redemptions = list(
                await session.scalars(
                    select(Entry.id)
                    .outerjoin(resolution, resolution.pending_id == Entry.id)
                    .where(
                        Entry.phase == Phase.PENDING.value,
                        Entry.kind == Kind.REDEMPTION.value,
                        Entry.timeout_time <= now,
                        resolution.id.is_(None),
                    )
                    .order_by(Entry.timeout_time)
                    .limit(BATCH)
                )
            )
        done = 0
        for award_id in awards:
            async with self.db.transaction() as session:
                done += await self.flows.expire_award(session, award_id, now)
        for redemption_id in redemptions:
            try:
                async with self.db.transaction() as session:
                    await self.lovebank.finish_in(
                        session,
                        redemption_id,
                        RedemptionState.EXPIRED,
                        "system",
                        "not collected in time",
                        now,
                    )
                done += 1
            except FailedPrecondition as exc:  # fulfilled or cancelled meanwhile: nothing written
                log.info("redemption %s not expired: %s", redemption_id, exc)
        return done

    async def expire_points(self, now: dt.datetime) -> int:
        done = 0
        after = ""
        while True:
            async with self.db.sessions() as session:
                accounts = list(
                    await session.scalars(
                        select(Lot.account_id)
                        .where(Lot.expires_at <= now, Lot.remaining > 0, Lot.account_id > after)
                        .group_by(Lot.account_id)
                        .order_by(Lot.account_id)
                        .limit(BATCH)
                    )
                )
            for account_id in accounts:
                done += await self.expire_account(account_id, now)
            if len(accounts) < BATCH:
                return done
            after = accounts[-1]

    async def expire_account(self, account_id: str, now: dt.datetime) -> int:
        async with self.db.transaction() as session:
            loaded = await repository.load(session, account_id)
            if loaded is None:
                return 0
            allocations = loaded.book.expire(now)
            if not allocations:
                return 0  # what is due is held by pending redemptions; it expires once released
            amount = sum(part for _, part in allocations)
            entry = await repository.add_entry(
                session,
                id=new_id(),
                kind=Kind.EXPIRY,
                phase=Phase.POSTED,
                debit=account_id,
                credit=EXPIRED,
                account=account_id,
                amount=amount,
                actor="system",
                now=now,
                note="points past their validity",
            )
            await repository.allocate(session, entry.id, allocations)
            await repository.save(session, loaded, now)
            await repository.announce(session, entry, [lot for lot, _ in allocations])
        return 1

    async def warn_expiring(self, now: dt.datetime) -> int:
        horizon = now + self.flows.settings.expiry_notice
        async with self.db.sessions() as session:
            lots = list(
                await session.scalars(
                    select(Lot)
                    .where(
                        Lot.warned.is_(False),
                        Lot.remaining > 0,
                        Lot.expires_at <= horizon,
                        Lot.expires_at > now,
                    )
                    .order_by(Lot.expires_at)
                    .limit(BATCH)
                )
            )
        done = 0
        for lot in lots:
            async with self.db.transaction() as session:
                flipped = await session.execute(
                    update(Lot).where(Lot.entry_id == lot.entry_id, Lot.warned.is_(False)).values(warned=True)
                )
                if rowcount(flipped) != 1:
                    continue  # another replica sent it
                await repository.emit(
                    session,
                    "system",
                    "points.v1.points.expiring",
                    events_pb2.PointsExpiring(
                        account=f"accounts/{lot.account_id}",
                        owner=domain.owner_of(lot.account_id),
                        points=lot.remaining,
                        expire_time=timestamp(lot.expires_at),
                        earning_entry=f"entries/{lot.entry_id}",
                    ),
                    f"accounts/{lot.account_id}",
                )
                done += 1
        return done
