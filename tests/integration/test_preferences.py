"""Preferences end to end: quiet hours hold a non-urgent e-mail until the window's end (a person's own
short window), a channel switched off for a kind queues nothing, the inbox cannot be switched off."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid

import grpc
import pytest

from gov.notifications.v1 import notifications_pb2 as pb
from gov.notifications.v1.notifications_pb2_grpc import NotificationsServiceStub
from gov.tickets.v1 import tickets_pb2
from gov.tickets.v1.tickets_pb2_grpc import TicketsServiceStub
from tests.integration.test_notifications import (  # noqa: F401 - fixtures
    act,
    eventually,
    items_about,
    world,
)
from tests.support.identity import IdentityClient, md
from tests.support.mailsink import MailSink
from tests.support.tickets import World, new_ticket

HOLD_SECONDS = 10


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
