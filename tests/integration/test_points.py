"""The points service against real identity, blocks and points processes, NATS and a database.

Block staff are assigned in blocks (live records): the points service asks blocks on every call
that needs their rights. Time-driven work (expiry, timeouts) runs through the service's own
sweeper in this process with a clock set ahead, against the same database the service uses.
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import random
import subprocess
import sys
import uuid

import grpc
from sqlalchemy import bindparam, text

from gov.blocks.v1 import blocks_pb2
from gov.blocks.v1.blocks_pb2_grpc import BlocksServiceStub
from gov.points.v1 import points_pb2 as pb
from gov.points.v1.points_pb2_grpc import PointsServiceStub
from govkit.db import Database, utcnow
from govkit.devstack import REPO, Stack
from services.points.catalogue import Catalogue
from services.points.flows import PointsFlows
from services.points.lovebank import LoveBank
from services.points.sweeper import Sweeper
from tests.integration.test_gateway_hygiene import forgeries
from tests.support.events import event_types
from tests.support.identity import IdentityClient, md
from tests.support.points import Village, account, award, make_indicator, make_village, refused, shop


def points_url(stack: Stack) -> str:
    return stack.service_envs["points"]["GOV_DATABASE_URL"]


def run_verify(stack: Stack) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services.points", "verify"],
        env=stack.env(GOV_DATABASE_URL=points_url(stack)),
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


class Clock:
    """The sweeper's clock, set ahead to make months pass."""

    def __init__(self) -> None:
        self.ahead = dt.timedelta()

    def __call__(self) -> dt.datetime:
        return utcnow() + self.ahead


async def sweeper_at(stack: Stack) -> tuple[Sweeper, Clock, Database]:
    db = Database(points_url(stack))
    clock = Clock()
    flows = PointsFlows(db, Catalogue(db), None, clock=clock)
    return Sweeper(flows, LoveBank(flows)), clock, db


# ---------------------------------------------------------------- awards


async def test_an_award_replayed_with_the_same_id_changes_the_ledger_once(
    points: PointsServiceStub, village: Village, stack: Stack
) -> None:
    indicator = await make_indicator(points, village, points=7)
    first = await award(points, village, indicator, request_id="award-replay-1")
    again = await award(points, village, indicator, request_id="award-replay-1")
    assert again == first and first.state == pb.AWARD_STATE_POSTED
    assert (await account(points, village)).balance == 7
    # The same id with a different body is refused and changes nothing.
    await refused(
        award(points, village, indicator, request_id="award-replay-1", note="另一件事"),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert (await account(points, village)).balance == 7
    entries = await points.ListEntries(
        pb.ListEntriesRequest(parent=village.resident_account(0)), metadata=village.residents[0].md
    )
    assert [(e.name, e.kind, e.amount) for e in entries.entries] == [
        ("entries/award-replay-1", pb.ENTRY_KIND_AWARD, 7)
    ]
    for _ in range(40):
        found = await event_types(stack.nats_url, "points.v1.>", "entries/award-replay-1")
        if found:
            break
        await asyncio.sleep(0.25)
    assert found == ["points.v1.entry.posted"]


async def test_forged_page_tokens_on_points_lists_are_invalid_argument(
    points: PointsServiceStub, village: Village
) -> None:
    """Points lists decode their page tokens as strictly as every other list: a token with altered
    values is INVALID_ARGUMENT naming page_token, never an internal error."""
    indicator = await make_indicator(points, village, points=1)
    for n in range(2):
        await award(points, village, indicator, request_id=f"forged-page-{n}-{uuid.uuid4().hex[:8]}")
    md_resident = village.residents[0].md
    lists = {
        "entries": lambda token: points.ListEntries(
            pb.ListEntriesRequest(parent=village.resident_account(0), page_size=1, page_token=token),
            metadata=md_resident,
        ),
        "awards": lambda token: points.ListAwards(
            pb.ListAwardsRequest(page_size=1, page_token=token), metadata=md_resident
        ),
    }
    for name, list_page in lists.items():
        token = (await list_page("")).next_page_token
        assert token, f"{name}: two items and a page of one give a next page"
        await list_page(token)  # the real token works
        for forged in forgeries(token):
            details = await refused(list_page(forged), grpc.StatusCode.INVALID_ARGUMENT)
            assert "page_token" in details or "token" in details, (name, details)


async def test_only_the_blocks_governor_and_assistants_record_awards(
    points: PointsServiceStub, village: Village
) -> None:
    indicator = await make_indicator(points, village)
    await award(points, village, indicator, by="assistant")
    for who in ("supervisor", "leader"):
        await refused(award(points, village, indicator, by=who), grpc.StatusCode.PERMISSION_DENIED)
    await refused(
        points.CreateAward(
            pb.CreateAwardRequest(
                award=pb.Award(recipient=village.residents[1].name, indicator=indicator, node=village.block),
                request_id="self-award",
            ),
            metadata=village.residents[1].md,
        ),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    assert (await account(points, village)).balance == 10


async def test_two_person_rule_and_a_removed_supervisor(
    points: PointsServiceStub, village: Village, blocks: BlocksServiceStub, identity: IdentityClient
) -> None:
    indicator = await make_indicator(points, village, points=15, approval_required=True)
    pending = await award(points, village, indicator)
    assert pending.state == pb.AWARD_STATE_PENDING_APPROVAL
    acct = await account(points, village)
    assert (acct.balance, acct.available, acct.pending_credits) == (0, 0, 15)
    # The recorder cannot approve their own, even as the supervisor.
    own = await award(points, village, indicator, by="assistant")
    for who, name in (("governor", pending.name), ("assistant", own.name)):
        await refused(
            points.ApproveAward(pb.ApproveAwardRequest(name=name), metadata=village.staff[who].md),
            grpc.StatusCode.PERMISSION_DENIED,
        )
    approved = await points.ApproveAward(
        pb.ApproveAwardRequest(name=pending.name), metadata=village.staff["supervisor"].md
    )
    assert approved.state == pb.AWARD_STATE_POSTED and approved.decided_by == village.staff["supervisor"].name
    acct = await account(points, village)
    assert (acct.balance, acct.pending_credits) == (15, 15)  # the assistant's award still waits
    await refused(
        points.ApproveAward(
            pb.ApproveAwardRequest(name=pending.name), metadata=village.staff["supervisor"].md
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    # Removed from the block in blocks: their next call is refused, with the same token.
    await blocks.RemoveStaff(
        blocks_pb2.RemoveStaffRequest(name=village.assignments["supervisor"]),
        metadata=md(identity.admin_token),
    )
    await refused(
        points.RejectAward(
            pb.RejectAwardRequest(name=own.name, note="证据不足"), metadata=village.staff["supervisor"].md
        ),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    assert (
        await points.GetAward(pb.GetAwardRequest(name=own.name), metadata=village.staff["leader"].md)
    ).state == (pb.AWARD_STATE_PENDING_APPROVAL)


async def test_a_rejected_award_never_reaches_the_balance(
    points: PointsServiceStub, village: Village
) -> None:
    indicator = await make_indicator(points, village, points=5, approval_required=True)
    pending = await award(points, village, indicator)
    await refused(
        points.RejectAward(pb.RejectAwardRequest(name=pending.name), metadata=village.staff["supervisor"].md),
        grpc.StatusCode.INVALID_ARGUMENT,  # a rejection says why
    )
    rejected = await points.RejectAward(
        pb.RejectAwardRequest(name=pending.name, note="不属实"), metadata=village.staff["supervisor"].md
    )
    assert rejected.state == pb.AWARD_STATE_REJECTED
    acct = await account(points, village)
    assert (acct.balance, acct.pending_credits, acct.credits_pending) == (0, 0, 0)


async def test_caps_per_resident_per_period(points: PointsServiceStub, village: Village) -> None:
    indicator = await make_indicator(points, village, points=3, cap_count=2, cap_period=pb.PERIOD_MONTH)
    await award(points, village, indicator)
    await award(points, village, indicator)
    await refused(award(points, village, indicator), grpc.StatusCode.FAILED_PRECONDITION)
    await award(points, village, indicator, resident=1)  # per resident
    assert (await account(points, village)).balance == 6


async def test_a_penalty_stops_at_zero_and_later_awards_settle_the_rest(
    points: PointsServiceStub, village: Village
) -> None:
    reward = await make_indicator(points, village, points=10)
    penalty = await make_indicator(points, village, kind=pb.INDICATOR_KIND_PENALTY, points=25)
    await award(points, village, reward)
    fined = await award(points, village, penalty)
    assert (fined.applied_points, fined.outstanding_points) == (10, 15)
    acct = await account(points, village)
    assert (acct.balance, acct.outstanding_penalty) == (0, 15)
    await award(points, village, reward)
    acct = await account(points, village)
    assert (acct.balance, acct.outstanding_penalty) == (0, 5)
    await award(points, village, reward)
    acct = await account(points, village)
    assert (acct.balance, acct.outstanding_penalty) == (5, 0)
    entries = await points.ListEntries(
        pb.ListEntriesRequest(parent=village.resident_account(0)), metadata=village.residents[0].md
    )
    settlements = [e for e in entries.entries if e.kind == pb.ENTRY_KIND_SETTLEMENT]
    assert sorted(e.amount for e in settlements) == [5, 10]
    assert {e.settles for e in settlements} == {f"entries/{fined.name.removeprefix('awards/')}"}
    # Reversing the penalty gives back what it took and what settled it.
    reversal = await points.ReverseEntry(
        pb.ReverseEntryRequest(name=fined.entry, reason="申诉成立", request_id=uuid.uuid4().hex),
        metadata=village.staff["supervisor"].md,
    )
    assert reversal.amount == 25
    acct = await account(points, village)
    assert (acct.balance, acct.outstanding_penalty) == (30, 0)


# ---------------------------------------------------------------- the love bank


async def test_fifty_concurrent_redemptions_of_ten_in_stock(
    points: PointsServiceStub, blocks: BlocksServiceStub, identity: IdentityClient, stack: Stack
) -> None:
    village = await make_village(blocks, identity, residents=50)
    indicator = await make_indicator(points, village, points=20)
    await asyncio.gather(*(award(points, village, indicator, resident=i) for i in range(50)))
    item = await shop(points, village, price=15, stock=10)

    async def redeem(i: int) -> grpc.StatusCode:
        try:
            await points.CreateRedemption(
                pb.CreateRedemptionRequest(
                    redemption=pb.Redemption(item=item.name, quantity=1),
                    request_id=f"r-{i}-{uuid.uuid4().hex[:8]}",
                ),
                metadata=village.residents[i].md,
            )
        except grpc.aio.AioRpcError as exc:
            assert "out of stock" in (exc.details() or ""), exc.details()
            return exc.code()
        return grpc.StatusCode.OK

    codes = await asyncio.gather(*(redeem(i) for i in range(50)))
    assert codes.count(grpc.StatusCode.OK) == 10
    assert codes.count(grpc.StatusCode.FAILED_PRECONDITION) == 40
    assert (
        await points.GetItem(pb.GetItemRequest(name=item.name), metadata=village.staff["leader"].md)
    ).stock == 0
    accounts = [await account(points, village, i) for i in range(50)]
    reserved = [a for a in accounts if a.reserved]
    assert len(reserved) == 10
    assert all((a.balance, a.available, a.reserved) == (20, 5, 15) for a in reserved)
    assert all((a.balance, a.available) == (20, 20) for a in accounts if not a.reserved)
    result = run_verify(stack)
    assert result.returncode == 0, result.stdout + result.stderr


async def test_one_residents_concurrent_redemptions_never_double_spend(
    points: PointsServiceStub, village: Village
) -> None:
    indicator = await make_indicator(points, village, points=30)
    await award(points, village, indicator)
    item = await shop(points, village, price=10, stock=100)

    async def redeem(i: int) -> bool:
        try:
            await points.CreateRedemption(
                pb.CreateRedemptionRequest(
                    redemption=pb.Redemption(item=item.name, quantity=1),
                    request_id=f"same-{i}-{uuid.uuid4().hex[:6]}",
                ),
                metadata=village.residents[0].md,
            )
        except grpc.aio.AioRpcError as exc:
            assert exc.code() == grpc.StatusCode.FAILED_PRECONDITION and "not enough points" in (
                exc.details() or ""
            )
            return False
        return True

    assert sum(await asyncio.gather(*(redeem(i) for i in range(12)))) == 3
    acct = await account(points, village)
    assert (acct.balance, acct.available, acct.reserved) == (30, 0, 30)
    assert (
        await points.GetItem(pb.GetItemRequest(name=item.name), metadata=village.staff["leader"].md)
    ).stock == 97


async def test_redemptions_fulfil_cancel_and_limits(points: PointsServiceStub, village: Village) -> None:
    indicator = await make_indicator(points, village, points=50)
    await award(points, village, indicator)
    item = await shop(points, village, price=10, stock=5, limit_per_person=2, limit_period=pb.PERIOD_MONTH)
    me = village.residents[0].md
    first = await points.CreateRedemption(
        pb.CreateRedemptionRequest(redemption=pb.Redemption(item=item.name, quantity=1), request_id="rd-1"),
        metadata=me,
    )
    # A retry returns the first; the same id for something else is refused.
    assert (
        await points.CreateRedemption(
            pb.CreateRedemptionRequest(
                redemption=pb.Redemption(item=item.name, quantity=1), request_id="rd-1"
            ),
            metadata=me,
        )
    ) == first
    await refused(
        points.CreateRedemption(
            pb.CreateRedemptionRequest(
                redemption=pb.Redemption(item=item.name, quantity=2), request_id="rd-1"
            ),
            metadata=me,
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    second = await points.CreateRedemption(
        pb.CreateRedemptionRequest(redemption=pb.Redemption(item=item.name, quantity=1), request_id="rd-2"),
        metadata=me,
    )
    await refused(  # the per-person limit
        points.CreateRedemption(
            pb.CreateRedemptionRequest(
                redemption=pb.Redemption(item=item.name, quantity=1), request_id="rd-3"
            ),
            metadata=me,
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    # Only the exchange point's staff hand items over.
    await refused(
        points.FulfilRedemption(pb.FulfilRedemptionRequest(name=first.name), metadata=me),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    done = await points.FulfilRedemption(
        pb.FulfilRedemptionRequest(name=first.name), metadata=village.staff["assistant"].md
    )
    assert done.state == pb.REDEMPTION_STATE_FULFILLED
    cancelled = await points.CancelRedemption(
        pb.CancelRedemptionRequest(name=second.name, reason="不要了"), metadata=me
    )
    assert cancelled.state == pb.REDEMPTION_STATE_CANCELLED
    await refused(
        points.FulfilRedemption(
            pb.FulfilRedemptionRequest(name=second.name), metadata=village.staff["assistant"].md
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    acct = await account(points, village)
    assert (acct.balance, acct.available, acct.reserved) == (40, 40, 0)
    assert (await points.GetItem(pb.GetItemRequest(name=item.name), metadata=me)).stock == 4


# ---------------------------------------------------------------- time: expiry and timeouts


async def test_expiry_takes_the_oldest_points_first_and_a_reversal_of_expired_points_creates_none(
    points: PointsServiceStub, village: Village, stack: Stack
) -> None:
    long_lived = await make_indicator(points, village, points=10, validity_months=3)
    short_lived = await make_indicator(points, village, points=10, validity_months=1)
    await award(points, village, long_lived)  # the oldest points, though they expire later
    soon = await award(points, village, short_lived)
    item = await shop(points, village, price=10, stock=5)
    redemption = await points.CreateRedemption(
        pb.CreateRedemptionRequest(
            redemption=pb.Redemption(item=item.name, quantity=1), request_id=uuid.uuid4().hex
        ),
        metadata=village.residents[0].md,
    )
    await points.FulfilRedemption(
        pb.FulfilRedemptionRequest(name=redemption.name), metadata=village.staff["assistant"].md
    )
    acct = await account(points, village)
    earned = await points.ListEntries(
        pb.ListEntriesRequest(parent=village.resident_account(0)), metadata=village.residents[0].md
    )
    expires = next(e for e in earned.entries if e.name == soon.entry).expire_time.ToDatetime(tzinfo=dt.UTC)
    # The short-lived ten count as expiring when they expire within the notice window (30 days by
    # default). A month from now is 30 days away or less in some months and 31 in others.
    within = expires <= dt.datetime.now(dt.UTC) + dt.timedelta(days=30)
    assert acct.balance == 10
    assert acct.expiring_points == (10 if within else 0)
    assert acct.HasField("next_expire_time") == within
    if within:
        assert acct.next_expire_time.ToDatetime(tzinfo=dt.UTC) == expires
    sweeper, clock, db = await sweeper_at(stack)
    try:
        clock.ahead = dt.timedelta(days=40)
        await sweeper.sweep(clock())
        # The redemption took the oldest (long-lived) points, so the short-lived ten expired.
        entries = await points.ListEntries(
            pb.ListEntriesRequest(parent=village.resident_account(0)), metadata=village.residents[0].md
        )
        expiry = entries.entries[0]
        assert (expiry.kind, expiry.amount, list(expiry.expired_entries)) == (
            pb.ENTRY_KIND_EXPIRY,
            10,
            [soon.entry],
        )
        assert (await account(points, village)).balance == 0
        await sweeper.sweep(clock())  # nothing twice
        assert (await account(points, village)).balance == 0
    finally:
        await db.close()
    reversal = await points.ReverseEntry(
        pb.ReverseEntryRequest(name=soon.entry, reason="记错了人", request_id=uuid.uuid4().hex),
        metadata=village.staff["leader"].md,
    )
    assert (reversal.amount, reversal.outstanding_delta) == (0, 0)
    acct = await account(points, village)
    assert (acct.balance, acct.outstanding_penalty) == (0, 0)
    await refused(
        points.ReverseEntry(
            pb.ReverseEntryRequest(name=soon.entry, reason="再来一次", request_id=uuid.uuid4().hex),
            metadata=village.staff["leader"].md,
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    assert (
        await points.GetAward(pb.GetAwardRequest(name=soon.name), metadata=village.staff["leader"].md)
    ).state == (pb.AWARD_STATE_REVERSED)


async def test_pending_entries_void_themselves_after_their_timeout(
    points: PointsServiceStub, village: Village, stack: Stack
) -> None:
    held = await make_indicator(points, village, points=8, approval_required=True)
    plain = await make_indicator(points, village, points=20)
    held_penalty = await make_indicator(
        points, village, kind=pb.INDICATOR_KIND_PENALTY, points=6, approval_required=True
    )
    waiting = await award(points, village, held)
    waiting_penalty = await award(points, village, held_penalty)
    await award(points, village, plain)
    item = await shop(points, village, price=20, stock=1)
    reserved = await points.CreateRedemption(
        pb.CreateRedemptionRequest(
            redemption=pb.Redemption(item=item.name, quantity=1), request_id=uuid.uuid4().hex
        ),
        metadata=village.residents[0].md,
    )
    sweeper, clock, db = await sweeper_at(stack)
    try:
        clock.ahead = dt.timedelta(days=31)
        done = await sweeper.sweep(clock())
        assert done["voided"] >= 3
    finally:
        await db.close()
    assert (
        await points.GetAward(pb.GetAwardRequest(name=waiting.name), metadata=village.staff["leader"].md)
    ).state == (pb.AWARD_STATE_EXPIRED)
    assert (
        await points.GetAward(
            pb.GetAwardRequest(name=waiting_penalty.name), metadata=village.staff["leader"].md
        )
    ).state == pb.AWARD_STATE_EXPIRED
    again = await points.GetRedemption(
        pb.GetRedemptionRequest(name=reserved.name), metadata=village.residents[0].md
    )
    assert again.state == pb.REDEMPTION_STATE_EXPIRED
    acct = await account(points, village)
    assert (acct.balance, acct.available, acct.pending_credits, acct.reserved) == (20, 20, 0, 0)
    assert (
        await points.GetItem(pb.GetItemRequest(name=item.name), metadata=village.staff["leader"].md)
    ).stock == 1


# ---------------------------------------------------------------- the whole ledger


async def test_a_randomized_concurrent_load_keeps_every_balance_exact(
    points: PointsServiceStub, blocks: BlocksServiceStub, identity: IdentityClient, stack: Stack
) -> None:
    """Awards, penalties, reversals, redemptions, fulfilments, cancellations, timeouts and expiry at
    once; then `verify` proves every balance equals the sum of its entries, none negative."""
    rng = random.Random(20260101)
    village = await make_village(blocks, identity, residents=5)
    rewards = [
        await make_indicator(points, village, points=p, validity_months=v)
        for p, v in ((5, 1), (12, 0), (7, 2))
    ]
    held = await make_indicator(points, village, points=9, approval_required=True)
    penalty = await make_indicator(points, village, kind=pb.INDICATOR_KIND_PENALTY, points=11)
    item = await shop(points, village, price=6, stock=40)
    leader = village.staff["leader"].md
    posted: list[str] = []
    pending_awards: list[str] = []
    reservations: list[str] = []
    accepted = grpc.StatusCode.FAILED_PRECONDITION
    done: collections.Counter[str] = collections.Counter()

    async def step(n: int) -> None:
        who = rng.randrange(5)
        op = rng.random()
        kind = ""
        try:
            if op < 0.3:
                kind = "award"
                a = await award(points, village, rng.choice(rewards), who)
                posted.append(a.entry)
            elif op < 0.4:
                kind = "held award"
                pending_awards.append((await award(points, village, held, who)).name)
            elif op < 0.5 and pending_awards:
                name = pending_awards.pop(rng.randrange(len(pending_awards)))
                kind = "decision"
                call = points.ApproveAward if rng.random() < 0.7 else points.RejectAward
                request = (
                    pb.ApproveAwardRequest(name=name)
                    if call == points.ApproveAward
                    else pb.RejectAwardRequest(name=name, note="不符合")
                )
                await call(request, metadata=village.staff["supervisor"].md)
            elif op < 0.6:
                kind = "penalty"
                posted.append((await award(points, village, penalty, who)).entry)
            elif op < 0.75:
                kind = "redemption"
                r = await points.CreateRedemption(
                    pb.CreateRedemptionRequest(
                        redemption=pb.Redemption(item=item.name, quantity=1),
                        request_id=f"load-{n}-{uuid.uuid4().hex[:6]}",
                    ),
                    metadata=village.residents[who].md,
                )
                reservations.append(r.name)
            elif op < 0.9 and reservations:
                name = reservations.pop(rng.randrange(len(reservations)))
                if rng.random() < 0.6:
                    kind = "fulfilment"
                    fulfilled = await points.FulfilRedemption(
                        pb.FulfilRedemptionRequest(name=name), metadata=village.staff["assistant"].md
                    )
                    posted.append(f"entries/{fulfilled.name.removeprefix('redemptions/')}:post")
                else:
                    kind = "cancellation"
                    await points.CancelRedemption(pb.CancelRedemptionRequest(name=name), metadata=leader)
            elif posted:
                kind = "reversal"
                await points.ReverseEntry(
                    pb.ReverseEntryRequest(
                        name=posted.pop(rng.randrange(len(posted))),
                        reason="更正",
                        request_id=uuid.uuid4().hex,
                    ),
                    metadata=leader,
                )
        except grpc.aio.AioRpcError as exc:
            # Refusals the rules make (not enough points, out of stock, already decided ...) only.
            assert exc.code() == accepted, exc.details()
            return
        done[kind] += 1

    kinds = (
        "award",
        "held award",
        "decision",
        "penalty",
        "redemption",
        "fulfilment",
        "cancellation",
        "reversal",
    )
    sweeper, clock, db = await sweeper_at(stack)
    try:

        async def sweeping() -> None:
            for _ in range(2):
                await asyncio.sleep(0.3)
                clock.ahead += dt.timedelta(days=31)
                await sweeper.sweep(clock())

        # Eight waves, then more (up to 16) until every kind of change has happened: which
        # reservations are still live when a wave picks one depends on how the calls interleave,
        # and on a slow machine eight waves sometimes fulfilled none.
        for wave in range(16):
            await asyncio.gather(
                *(step(wave * 20 + i) for i in range(20)), sweeping() if wave % 3 == 2 else asyncio.sleep(0)
            )
            if wave >= 7 and all(done[k] > 0 for k in kinds):
                break
    finally:
        await db.close()
    # The load did what it says: every kind of change happened, expiries and timeouts included.
    assert all(done[k] > 0 for k in kinds), done
    db = Database(points_url(stack))
    try:
        async with db.sessions() as session:
            accounts = [village.resident_account(i).removeprefix("accounts/") for i in range(5)]
            phases = dict(
                (
                    await session.execute(
                        text(
                            "SELECT kind || ':' || phase, count(*) FROM entries"
                            " WHERE account_id IN :ids GROUP BY kind || ':' || phase"
                        ).bindparams(bindparam("ids", expanding=True)),
                        {"ids": accounts},
                    )
                ).all()
            )
    finally:
        await db.close()
    assert phases.get("expiry:posted", 0) > 0 and phases.get("redemption:void", 0) > 0, phases
    result = run_verify(stack)
    assert result.returncode == 0, result.stdout + result.stderr
    for i in range(5):
        acct = await account(points, village, i)
        assert acct.available >= 0 and acct.balance >= 0


async def test_verify_finds_a_balance_that_is_not_the_sum_of_its_entries(
    points: PointsServiceStub, village: Village, stack: Stack
) -> None:
    indicator = await make_indicator(points, village, points=4)
    await award(points, village, indicator)
    account_id = village.resident_account(0).removeprefix("accounts/")
    db = Database(points_url(stack))
    try:
        async with db.transaction() as session:
            await session.execute(
                text("UPDATE accounts SET credits_posted = credits_posted + 1 WHERE id = :id"),
                {"id": account_id},
            )
        result = run_verify(stack)
        assert result.returncode == 1 and account_id in result.stdout
    finally:
        async with db.transaction() as session:
            await session.execute(
                text("UPDATE accounts SET credits_posted = credits_posted - 1 WHERE id = :id"),
                {"id": account_id},
            )
        await db.close()
    assert run_verify(stack).returncode == 0


async def test_a_members_award_credits_the_household_too_where_the_indicator_says_so(
    points: PointsServiceStub, village: Village, blocks: BlocksServiceStub, identity: IdentityClient
) -> None:
    home = await blocks.CreateHousehold(
        blocks_pb2.CreateHouseholdRequest(
            household=blocks_pb2.Household(
                code=f"h{uuid.uuid4().hex[:10]}",
                block=village.block,
                address="5栋202",
                residents=[
                    blocks_pb2.Resident(
                        display_name="王芳", relation=blocks_pb2.RELATION_HEAD, user=village.residents[0].name
                    )
                ],
            )
        ),
        metadata=md(identity.admin_token),
    )
    shared = await make_indicator(
        points, village, points=10, credit_household=True, cap_count=1, cap_period=pb.PERIOD_DAY
    )

    async def give(resident: int, household: str, request_id: str) -> pb.Award:
        return await points.CreateAward(
            pb.CreateAwardRequest(
                award=pb.Award(
                    recipient=village.residents[resident].name,
                    indicator=shared,
                    node=village.block,
                    household=household,
                ),
                request_id=request_id,
            ),
            metadata=village.staff["governor"].md,
        )

    await refused(give(0, "", "hh-1"), grpc.StatusCode.INVALID_ARGUMENT)  # the household is required
    await refused(give(1, home.name, "hh-2"), grpc.StatusCode.INVALID_ARGUMENT)  # not a resident of it
    first = await give(0, home.name, "hh-3")
    assert first.household_award and await give(0, home.name, "hh-3") == first
    leader = village.staff["leader"].md
    member = await account(points, village, 0)
    household = await points.GetAccount(pb.GetAccountRequest(name=home.name), metadata=leader)
    assert (member.balance, household.balance) == (10, 10)
    # Its members read the household's account; other residents do not.
    mine = await points.GetAccount(pb.GetAccountRequest(name=home.name), metadata=village.residents[0].md)
    assert mine.balance == 10
    await refused(
        points.GetAccount(pb.GetAccountRequest(name=home.name), metadata=village.residents[1].md),
        grpc.StatusCode.NOT_FOUND,
    )
    share = await points.GetAward(pb.GetAwardRequest(name=first.household_award), metadata=leader)
    assert (share.recipient, share.source_event, share.points) == (home.name, first.name, 10)
    await refused(give(0, home.name, "hh-4"), grpc.StatusCode.FAILED_PRECONDITION)  # the member's cap
