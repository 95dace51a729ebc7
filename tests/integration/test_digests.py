"""Digests on a real database (both backends), the clock injected: a digest holds exactly the held
items due by its time, each goes out in one digest only, also when a new runner (a restarted
service) looks again; items of a later window stay held for it.

Then through a running notifications service on a set clock (test_preferences.py's platform): a
digest lists exactly its window's items, none twice, although the service is SIGKILLed while the
window holds them and again after it went; an urgent message goes at once and is not in the digest.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid

from sqlalchemy import select

from gov.notifications.v1 import notifications_pb2 as pb
from govkit import migrations
from govkit.db import Database
from govkit.devstack import REPO
from services.notifications.digests import DigestRunner
from services.notifications.domain import State
from services.notifications.models import Delivery
from tests.integration.test_notifications import eventually
from tests.integration.test_preferences import (  # noqa: F401 - fixtures
    LEAD_SECONDS,
    SHANGHAI,
    Clocked,
    clock_stack,
    clocked,
    next_local,
)
from tests.support.databases import Databases
from tests.support.mailsink import MailSink
from tests.support.tickets import Person

T0 = dt.datetime(2026, 11, 30, 0, 30, tzinfo=dt.UTC)  # 08:30 in Shanghai


def held(person: str, due: dt.datetime, subject: str, created: dt.datetime) -> Delivery:
    return Delivery.untried(
        id=str(uuid.uuid4()),
        event_id=str(uuid.uuid4()),
        recipient=person,
        channel="email",
        kind="ticket.overdue",
        node="yuhu/wanlou",
        subject=subject,
        body=subject,
        link="",
        state=State.HELD.value,
        due=due,
        now=created,
    )


async def test_a_digest_takes_exactly_its_window_once_also_after_a_restart(databases: Databases) -> None:
    url = databases.url("digests")
    await asyncio.to_thread(migrations.upgrade, REPO / "services/notifications/migrations", url)
    db = Database(url)
    person, other = f"users/{uuid.uuid4()}", f"users/{uuid.uuid4()}"
    tomorrow = T0 + dt.timedelta(days=1)
    try:
        async with db.transaction() as session:
            for i in range(3):
                session.add(held(person, T0, f"工单{i}超时", T0 - dt.timedelta(hours=3 - i)))
            session.add(held(person, tomorrow, "明天的", T0 + dt.timedelta(minutes=5)))
            session.add(held(other, T0, "别人的", T0 - dt.timedelta(hours=1)))
        # Before the digest time nothing goes.
        early = DigestRunner(db, lambda: None, 1, clock=lambda: T0 - dt.timedelta(seconds=1))
        assert await early.release() == 0
        runner = DigestRunner(db, lambda: None, 1, clock=lambda: T0)
        assert await runner.release() == 2  # one per person
        # A restarted service (a new runner) at the same moment finds nothing left to send.
        assert (
            await DigestRunner(db, lambda: None, 1, clock=lambda: T0 + dt.timedelta(minutes=1)).release() == 0
        )
        async with db.sessions() as session:
            rows = (
                await session.scalars(select(Delivery).where(Delivery.recipient.in_([person, other])))
            ).all()
        digests = {r.id: r for r in rows if r.kind == "digest"}
        mine = [d for d in digests.values() if d.recipient == person]
        assert len(mine) == 1 and len(digests) == 2
        (digest,) = mine
        assert digest.state == State.QUEUED.value and digest.subject == "消息汇总：3条"
        assert digest.body.splitlines() == ["1. 工单0超时", "2. 工单1超时", "3. 工单2超时"]
        items = [r for r in rows if r.recipient == person and r.kind != "digest"]
        assert (
            sorted((r.state, r.digest_id) for r in items if r.subject != "明天的")
            == [(State.DIGESTED.value, digest.id)] * 3
        )
        (later,) = [r for r in items if r.subject == "明天的"]
        assert (later.state, later.digest_id) == (State.HELD.value, None)
        # Tomorrow's digest takes only tomorrow's item.
        assert await DigestRunner(db, lambda: None, 1, clock=lambda: tomorrow).release() == 1
        async with db.sessions() as session:
            second = (
                await session.scalars(
                    select(Delivery).where(
                        Delivery.recipient == person, Delivery.kind == "digest", Delivery.id != digest.id
                    )
                )
            ).one()
        assert second.body == "1. 明天的"
    finally:
        await db.close()


# ----------------------------------------------------------------------------- through a running service


async def daily_digest(c: Clocked, person: Person, at: str, kinds: list[str], quiet: bool = True) -> None:
    await c.notifications.UpdatePreferences(
        pb.UpdatePreferencesRequest(
            preferences=pb.Preferences(
                channels=[
                    pb.ChannelPreference(
                        kind=kind,
                        channel=pb.CHANNEL_EMAIL,
                        enabled=True,
                        digest=pb.DIGEST_FREQUENCY_DAILY,
                        digest_time=at,
                    )
                    for kind in kinds
                ],
                quiet_hours=pb.QuietHours(enabled=quiet, time_zone="Asia/Shanghai"),
            )
        ),
        metadata=person.md,
    )


async def emails_of(c: Clocked, person: Person, kind: str, state: int = 0) -> list[pb.Delivery]:
    return [d for d in await c.emails(person.name) if d.kind == kind and (not state or d.state == state)]


def ticket_id(name: str) -> str:
    return name.removeprefix("tickets/")


async def test_a_digest_lists_exactly_its_window_once_across_a_killed_service(
    clocked: Clocked,  # noqa: F811 - the fixture
    mail_sink: MailSink,
) -> None:
    half_past_eight = next_local(dt.time(8, 30), dt.datetime.now(dt.UTC))
    await clocked.restart(half_past_eight - dt.timedelta(minutes=30))  # 08:00 in Shanghai
    person, address = await clocked.person()
    await daily_digest(clocked, person, "08:30", ["ticket.accepted"])
    window = [await clocked.accepted(person) for _ in range(3)]

    async def held(n: int, due: dt.datetime) -> list[pb.Delivery] | None:
        rows = await emails_of(clocked, person, "ticket.accepted", pb.DELIVERY_STATE_HELD)
        return (
            rows
            if len(rows) == n and {r.next_attempt_time.ToDatetime(dt.UTC) for r in rows} == {due}
            else None
        )

    await eventually(lambda: held(3, half_past_eight), what="three items held for 08:30")
    # Killed while the window holds them; one more event comes while it is down (JetStream keeps it).
    clocked.kill()
    window.append(await clocked.accepted(person))
    await clocked.start(half_past_eight - dt.timedelta(seconds=LEAD_SECONDS))
    await eventually(lambda: held(4, half_past_eight), what="four items held after the restart")
    assert not mail_sink.to(address)

    (mail,) = await eventually(
        lambda: asyncio.sleep(0, mail_sink.to(address)), within=LEAD_SECONDS + 30, what="the digest"
    )
    assert time.time() >= clocked.real(half_past_eight)
    assert mail["Subject"] == "消息汇总：4条", mail["Subject"]
    lines = mail.get_content().strip().splitlines()
    assert len(lines) == 4, lines
    for name in window:  # each item of the window on exactly one line
        assert sum(ticket_id(name) in line for line in lines) == 1, (name, lines)
    (digest,) = await emails_of(clocked, person, "digest")
    digested = await emails_of(clocked, person, "ticket.accepted")
    assert {(d.state, d.digest) for d in digested} == {(pb.DELIVERY_STATE_DIGESTED, digest.name)}
    assert len(digested) == 4

    # Killed again after it went: nothing is sent twice, and a later item waits for tomorrow's.
    await clocked.restart()
    later = await clocked.accepted(person)
    await eventually(lambda: held(1, half_past_eight + dt.timedelta(days=1)), what="tomorrow's item held")
    await asyncio.sleep(3)
    assert len(mail_sink.to(address)) == 1
    assert not any(ticket_id(later) in line for line in lines)


async def test_an_urgent_message_bypasses_the_digest_and_is_not_repeated_in_it(
    clocked: Clocked,  # noqa: F811 - the fixture
    mail_sink: MailSink,
) -> None:
    person, address = await clocked.person()
    due = (clocked.now() + dt.timedelta(seconds=LEAD_SECONDS / 2)).replace(microsecond=0)
    at = due.astimezone(SHANGHAI).strftime("%H:%M:%S")
    # Everything as a daily digest, and the urgent kind asked for by name too; no quiet hours, so
    # only the digest could hold anything.
    await daily_digest(clocked, person, at, ["*", "account.password_reset"], quiet=False)
    await clocked.password_reset(person)
    ticket = await clocked.accepted(person)

    (urgent,) = await eventually(
        lambda: asyncio.sleep(0, mail_sink.to(address)), within=LEAD_SECONDS / 2, what="the urgent e-mail"
    )
    assert time.time() < clocked.real(due), "the machine was too slow for the lead; nothing was proved"
    # The sink has the e-mail a moment before the worker commits the delivery as sent.
    (reset,) = await eventually(
        lambda: emails_of(clocked, person, "account.password_reset", pb.DELIVERY_STATE_SENT),
        within=10,
        what="the urgent delivery recorded as sent",
    )
    assert not reset.digest
    (held,) = await eventually(
        lambda: emails_of(clocked, person, "ticket.accepted", pb.DELIVERY_STATE_HELD), what="held item"
    )
    assert held.next_attempt_time.ToDatetime(dt.UTC) == due

    mails = await eventually(
        lambda: asyncio.sleep(0, mail_sink.to(address)[1:]), within=LEAD_SECONDS + 30, what="the digest"
    )
    (digest_mail,) = mails
    assert digest_mail["Subject"] == "消息汇总：1条", digest_mail["Subject"]
    (line,) = digest_mail.get_content().strip().splitlines()
    assert ticket_id(ticket) in line
    (digest,) = await emails_of(clocked, person, "digest")
    (accepted,) = await emails_of(clocked, person, "ticket.accepted")
    assert (accepted.state, accepted.digest) == (pb.DELIVERY_STATE_DIGESTED, digest.name)
    # The urgent one went once, by itself, and no digest names it.
    (reset,) = await emails_of(clocked, person, "account.password_reset")
    assert reset.state == pb.DELIVERY_STATE_SENT and not reset.digest
    assert urgent["Subject"] != digest_mail["Subject"]
    await asyncio.sleep(2)
    assert len(mail_sink.to(address)) == 2
