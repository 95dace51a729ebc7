"""Preferences end to end: quiet hours hold a non-urgent e-mail until the window's end (a person's own
short window), a channel switched off for a kind queues nothing, the inbox cannot be switched off.

And on a platform of its own whose notifications service runs on a set clock (the test-only
GOV_NOTIFICATIONS_CLOCK_OFFSET_SECONDS, restarted to move it): the default quiet hours hold a
non-urgent e-mail that arrives at 06:59 in Shanghai and release it at 07:00, while an urgent one
goes at once. test_digests.py uses the same platform.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import grpc
import pytest
import pytest_asyncio

from gov.identity.v1 import events_pb2 as identity_events
from gov.notifications.v1 import notifications_pb2 as pb
from gov.notifications.v1.notifications_pb2_grpc import NotificationsServiceStub
from gov.tickets.v1 import events_pb2 as ticket_events
from gov.tickets.v1 import tickets_pb2
from gov.tickets.v1.tickets_pb2_grpc import TicketsServiceStub
from govkit.devstack import Stack
from tests.conftest import notifications_env, stack_of_its_own, start_identity
from tests.integration.test_notifications import (  # noqa: F401 - fixtures
    act,
    eventually,
    items_about,
    publish,
    world,
)
from tests.support.databases import Databases
from tests.support.identity import IdentityClient, md
from tests.support.mailsink import MailSink
from tests.support.tickets import Person, World, new_ticket

HOLD_SECONDS = 10
SHANGHAI = ZoneInfo("Asia/Shanghai")
# The production defaults, which the session's stack turns off: 22:00-07:00 in Shanghai.
CLOCK_ENV = {
    "GOV_NOTIFICATIONS_QUIET_START": "22:00",
    "GOV_NOTIFICATIONS_QUIET_END": "07:00",
    "GOV_NOTIFICATIONS_QUIET_TIME_ZONE": "Asia/Shanghai",
    "GOV_NOTIFICATIONS_WORKER_INTERVAL_SECONDS": "1",
}
# How long after a restart the moment under test comes: time to start and to send what it holds.
LEAD_SECONDS = 40.0


async def deliveries_to(
    n: NotificationsServiceStub, admin: str, recipient: str, node: str
) -> list[pb.Delivery]:
    reply = await n.ListDeliveries(
        pb.ListDeliveriesRequest(node=node, recipient=recipient, channel=pb.CHANNEL_EMAIL, page_size=200),
        metadata=md(admin),
    )
    return list(reply.deliveries)


async def test_quiet_hours_hold_an_email_until_the_window_ends_and_a_switched_off_kind_sends_none(
    notifications: NotificationsServiceStub,
    tickets: TicketsServiceStub,
    world: World,  # noqa: F811
    identity: IdentityClient,
    mail_sink: MailSink,
) -> None:
    resident = world.staff["resident"]
    address = f"q-{uuid.uuid4().hex[:10]}@example.org"
    await notifications.CreateEndpoint(
        pb.CreateEndpointRequest(
            endpoint=pb.Endpoint(owner=resident.name, channel=pb.CHANNEL_EMAIL, address=address)
        ),
        metadata=resident.md,
    )
    # The inbox is always on.
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await notifications.UpdatePreferences(
            pb.UpdatePreferencesRequest(
                preferences=pb.Preferences(
                    channels=[pb.ChannelPreference(kind="*", channel=pb.CHANNEL_INBOX, enabled=False)]
                )
            ),
            metadata=resident.md,
        )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    defaults = await notifications.GetPreferences(pb.GetPreferencesRequest(), metadata=resident.md)
    assert defaults.name == f"{resident.name}/preferences" and not defaults.channels

    # A quiet window that started a minute ago and ends in a few seconds (UTC, to the second).
    now = dt.datetime.now(dt.UTC)
    end = (now + dt.timedelta(seconds=HOLD_SECONDS)).replace(microsecond=0)
    quiet = pb.QuietHours(
        enabled=True,
        start=(now - dt.timedelta(minutes=1)).strftime("%H:%M:%S"),
        end=end.strftime("%H:%M:%S"),
        time_zone="UTC",
    )
    saved = await notifications.UpdatePreferences(
        pb.UpdatePreferencesRequest(
            preferences=pb.Preferences(
                quiet_hours=quiet,
                channels=[
                    pb.ChannelPreference(kind="ticket.rejected", channel=pb.CHANNEL_EMAIL, enabled=False)
                ],
            )
        ),
        metadata=resident.md,
    )
    assert saved.quiet_hours == quiet and len(saved.channels) == 1

    t = await tickets.CreateTicket(
        tickets_pb2.CreateTicketRequest(ticket=new_ticket(world)), metadata=resident.md
    )
    t = await act(tickets, world.staff["dispatcher"], t, tickets_pb2.ACTION_ACCEPT)
    # The inbox item comes at once; the e-mail is queued for the window's end.
    await eventually(
        lambda: items_about(notifications, resident, t.name, "ticket.accepted"), what="inbox item"
    )
    admin = identity.admin_token
    (held,) = await eventually(
        lambda: deliveries_to(notifications, admin, resident.name, t.node), what="delivery"
    )
    assert held.kind == "ticket.accepted"
    assert held.next_attempt_time.ToDatetime(dt.UTC) == end
    if dt.datetime.now(dt.UTC) < end - dt.timedelta(seconds=1):
        assert not mail_sink.to(address), "sent inside the quiet window"
    # Released at the end (the worker's slow timer may take a few seconds more).
    await eventually(
        lambda: asyncio.sleep(0, mail_sink.to(address)), within=30, what="e-mail after the window"
    )
    assert dt.datetime.now(dt.UTC) >= end

    # Switched off for rejections: the inbox item, and no e-mail delivery at all.
    second = await tickets.CreateTicket(
        tickets_pb2.CreateTicketRequest(ticket=new_ticket(world)), metadata=resident.md
    )
    second = await act(tickets, world.staff["dispatcher"], second, tickets_pb2.ACTION_REJECT, reason="重复")
    await eventually(
        lambda: items_about(notifications, resident, second.name, "ticket.rejected"), what="rejection item"
    )
    kinds = [d.kind for d in await deliveries_to(notifications, admin, resident.name, t.node)]
    assert "ticket.rejected" not in kinds


async def test_a_daily_digest_holds_exactly_the_items_of_its_window_and_sends_one_message(
    notifications: NotificationsServiceStub,
    tickets: TicketsServiceStub,
    world: World,  # noqa: F811
    identity: IdentityClient,
    mail_sink: MailSink,
) -> None:
    resident = world.staff["resident"]
    admin = identity.admin_token
    address = f"d-{uuid.uuid4().hex[:10]}@example.org"
    await notifications.CreateEndpoint(
        pb.CreateEndpointRequest(
            endpoint=pb.Endpoint(owner=resident.name, channel=pb.CHANNEL_EMAIL, address=address)
        ),
        metadata=resident.md,
    )
    # Accepted tickets by e-mail as a daily digest, due in a few seconds (UTC, to the second).
    at = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=HOLD_SECONDS)).replace(microsecond=0)
    digest = pb.ChannelPreference(
        kind="ticket.accepted",
        channel=pb.CHANNEL_EMAIL,
        enabled=True,
        digest=pb.DIGEST_FREQUENCY_DAILY,
        digest_time=at.strftime("%H:%M:%S"),
    )
    await notifications.UpdatePreferences(
        pb.UpdatePreferencesRequest(
            preferences=pb.Preferences(
                channels=[digest], quiet_hours=pb.QuietHours(enabled=False, time_zone="UTC")
            )
        ),
        metadata=resident.md,
    )
    accepted = []
    for _ in range(2):
        t = await tickets.CreateTicket(
            tickets_pb2.CreateTicketRequest(ticket=new_ticket(world)), metadata=resident.md
        )
        accepted.append(await act(tickets, world.staff["dispatcher"], t, tickets_pb2.ACTION_ACCEPT))
    node = accepted[0].node

    async def held() -> list[pb.Delivery] | None:
        rows = [
            d
            for d in await deliveries_to(notifications, admin, resident.name, node)
            if d.kind == "ticket.accepted"
        ]
        return rows if len(rows) == 2 else None

    rows = await eventually(held, what="two held deliveries")
    assert all(d.state == pb.DELIVERY_STATE_HELD for d in rows)
    assert {d.next_attempt_time.ToDatetime(dt.UTC) for d in rows} == {at}
    if dt.datetime.now(dt.UTC) < at - dt.timedelta(seconds=1):
        assert not mail_sink.to(address)

    # At the digest time: one e-mail listing both, and the held rows point at it.
    (mail,) = await eventually(lambda: asyncio.sleep(0, mail_sink.to(address)), within=30, what="the digest")
    assert mail["Subject"] == "消息汇总：2条", mail["Subject"]
    after = await deliveries_to(notifications, admin, resident.name, node)
    digested = [d for d in after if d.kind == "ticket.accepted"]
    assert {d.state for d in digested} == {pb.DELIVERY_STATE_DIGESTED}
    (sent,) = [d for d in after if d.kind == "digest"]
    assert {d.digest for d in digested} == {sent.name}

    # An item after the digest time waits for tomorrow's; nothing goes out twice.
    t = await tickets.CreateTicket(
        tickets_pb2.CreateTicketRequest(ticket=new_ticket(world)), metadata=resident.md
    )
    t = await act(tickets, world.staff["dispatcher"], t, tickets_pb2.ACTION_ACCEPT)

    async def third() -> list[pb.Delivery] | None:
        rows = [
            d
            for d in await deliveries_to(notifications, admin, resident.name, node)
            if d.kind == "ticket.accepted" and d.state == pb.DELIVERY_STATE_HELD
        ]
        return rows or None

    (later,) = await eventually(third, what="the third item held")
    assert later.next_attempt_time.ToDatetime(dt.UTC) == at + dt.timedelta(days=1)
    await asyncio.sleep(2)
    assert len(mail_sink.to(address)) == 1


# ----------------------------------------------------------------------------- a service on a set clock


@dataclass
class Clocked:
    """A platform (NATS, identity, notifications e-mailing the sink) and the notifications clock."""

    stack: Stack
    identity: IdentityClient
    notifications: NotificationsServiceStub
    channel: grpc.aio.Channel
    offset: float = 0.0  # seconds the service's clock is ahead of the system's

    def now(self) -> dt.datetime:
        """The service's clock (both read the same system clock)."""
        return dt.datetime.now(dt.UTC) + dt.timedelta(seconds=self.offset)

    def real(self, service_time: dt.datetime) -> float:
        """The system's epoch seconds at which the service's clock shows `service_time`."""
        return service_time.timestamp() - self.offset

    def kill(self) -> None:
        """SIGKILL the service: a crash, no drain."""
        self.stack.kill_proc(self.stack.proc("notifications"))

    async def start(self, clock_at: dt.datetime | None = None) -> None:
        """Start the service again, its clock showing `clock_at` now (or running on where it was)."""
        if clock_at is not None:
            self.offset = (clock_at - dt.datetime.now(dt.UTC)).total_seconds()
        env = {
            **self.stack.service_envs["notifications"],
            "GOV_NOTIFICATIONS_CLOCK_OFFSET_SECONDS": repr(self.offset),
        }
        port = int(self.stack.addrs["notifications"].rsplit(":", 1)[1])
        await asyncio.to_thread(self.stack.start_service, "notifications", env, port=port)

    async def restart(self, clock_at: dt.datetime | None = None) -> None:
        self.kill()
        await self.start(clock_at)

    async def person(self) -> tuple[Person, str]:
        """A resident with an e-mail endpoint of their own, and its address."""
        user, _, token = await self.identity.make_user("yuhu", [("resident", "yuhu")])
        person = Person(user.name, token)
        address = f"c-{uuid.uuid4().hex[:10]}@example.org"
        await self.notifications.CreateEndpoint(
            pb.CreateEndpointRequest(
                endpoint=pb.Endpoint(owner=person.name, channel=pb.CHANNEL_EMAIL, address=address)
            ),
            metadata=person.md,
        )
        return person, address

    async def emails(self, recipient: str) -> list[pb.Delivery]:
        reply = await self.notifications.ListDeliveries(
            pb.ListDeliveriesRequest(node="*", recipient=recipient, channel=pb.CHANNEL_EMAIL, page_size=200),
            metadata=md(self.identity.admin_token),
        )
        return list(reply.deliveries)

    async def accepted(self, person: Person) -> str:
        """A `tickets.v1.ticket.accepted` naming `person` as reporter, as tickets' relay publishes it;
        returns the ticket's name."""
        name = f"tickets/{uuid.uuid4()}"
        summary = ticket_events.TicketSummary(
            name=name,
            category="categories/road",
            node="yuhu/wanlou/taoyuan/b07",
            street="yuhu/wanlou",
            district="yuhu",
            reporter=person.name,
        )
        await publish(
            self.stack.nats_url,
            "tickets.v1.ticket.accepted",
            ticket_events.TicketTransitioned(ticket=summary, entry=ticket_events.EntrySummary()),
        )
        return name

    async def password_reset(self, person: Person) -> None:
        """An urgent message (account security) for `person`."""
        await publish(
            self.stack.nats_url, "identity.v1.password.reset", identity_events.PasswordReset(user=person.name)
        )


@pytest.fixture(scope="module")
def clock_stack(
    databases: Databases, mail_sink: MailSink, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    with stack_of_its_own(tmp_path_factory, "clocked") as s:
        s.start_nats()
        start_identity(s, databases)
        mail = {"GOV_SMTP_HOST": "127.0.0.1", "GOV_SMTP_PORT": str(mail_sink.port)}
        # A database of its own: no other notifications process shares its deliveries.
        s.start_service("notifications", notifications_env(s, databases.url("clocked"), **mail, **CLOCK_ENV))
        yield s


@pytest_asyncio.fixture(scope="module")
async def clocked(clock_stack: Stack) -> AsyncIterator[Clocked]:
    identity = await IdentityClient(clock_stack.addrs["identity"]).start()
    channel = grpc.aio.insecure_channel(clock_stack.addrs["notifications"])
    try:
        yield Clocked(clock_stack, identity, NotificationsServiceStub(channel), channel)
    finally:
        await channel.close()
        await identity.close()


def next_local(at: dt.time, after: dt.datetime) -> dt.datetime:
    """The first `at` in Shanghai a day or more after `after` (UTC)."""
    day = after.astimezone(SHANGHAI).date() + dt.timedelta(days=1)
    return dt.datetime.combine(day, at, tzinfo=SHANGHAI).astimezone(dt.UTC)


async def test_default_quiet_hours_release_a_held_email_at_seven_in_shanghai_and_urgent_goes_at_once(
    clocked: Clocked, mail_sink: MailSink
) -> None:
    seven = next_local(dt.time(7, 0), dt.datetime.now(dt.UTC))
    # The service restarted at 06:59:20 in Shanghai: inside the default window (22:00-07:00).
    await clocked.restart(seven - dt.timedelta(seconds=LEAD_SECONDS))
    person, address = await clocked.person()
    ticket = await clocked.accepted(person)
    await clocked.password_reset(person)

    # The inbox item comes at once, quiet hours or not.
    await eventually(
        lambda: items_about(clocked.notifications, person, ticket, "ticket.accepted"), what="inbox item"
    )
    # The urgent message goes at once: its e-mail arrives well before 07:00 on the service's clock.
    await eventually(
        lambda: asyncio.sleep(0, mail_sink.to(address)), within=LEAD_SECONDS / 2, what="the urgent e-mail"
    )
    assert time.time() < clocked.real(seven), "the machine was too slow for the lead; nothing was proved"

    async def held() -> pb.Delivery | None:
        found = [d for d in await clocked.emails(person.name) if d.kind == "ticket.accepted"]
        return found[0] if found else None

    accepted = await eventually(held, what="the held delivery")
    assert accepted.state == pb.DELIVERY_STATE_QUEUED
    assert accepted.next_attempt_time.ToDatetime(dt.UTC) == seven  # 07:00 in Shanghai, 23:00 UTC

    async def reset_sent() -> pb.Delivery | None:
        # The sink has the e-mail a moment before the worker commits the delivery as sent.
        found = [d for d in await clocked.emails(person.name) if d.kind == "account.password_reset"]
        assert len(found) == 1
        return found[0] if found[0].state == pb.DELIVERY_STATE_SENT else None

    reset = await eventually(reset_sent, within=10, what="the urgent delivery recorded as sent")
    assert reset.sent_time.ToDatetime(dt.UTC) < seven
    if time.time() < clocked.real(seven) - 1:
        assert len(mail_sink.to(address)) == 1, "the non-urgent e-mail went inside quiet hours"

    # At 07:00 it goes (the worker wakes for it; its slow timer is 1 s here).
    await eventually(
        lambda: asyncio.sleep(0, mail_sink.to(address)[1:]),
        within=LEAD_SECONDS + 30,
        what="the e-mail at 07:00",
    )
    assert time.time() >= clocked.real(seven)

    async def held_sent() -> pb.Delivery | None:
        found = await held()  # the sink has it a moment before the delivery is committed as sent
        return found if found is not None and found.state == pb.DELIVERY_STATE_SENT else None

    sent = await eventually(held_sent, within=10, what="the held delivery recorded as sent")
    assert seven <= sent.sent_time.ToDatetime(dt.UTC) < seven + dt.timedelta(seconds=30)
