"""Notifications end to end: real services, NATS, an SMTP server and HTTP robots on both backends."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hmac
import json
import uuid
from collections.abc import Awaitable, Callable
from typing import TypeVar

import grpc
import nats
import pytest
import pytest_asyncio
from google.protobuf.message import Message

from gov.blocks.v1.blocks_pb2_grpc import BlocksServiceStub
from gov.identity.v1 import events_pb2 as identity_events
from gov.identity.v1 import identity_pb2
from gov.notifications.v1 import events_pb2 as notification_events
from gov.notifications.v1 import notifications_pb2 as pb
from gov.notifications.v1.notifications_pb2_grpc import NotificationsServiceStub
from gov.tickets.v1 import events_pb2 as ticket_events
from gov.tickets.v1 import tickets_pb2
from gov.tickets.v1.tickets_pb2_grpc import TicketsServiceStub
from govkit.auth.service_tokens import ServiceTokens
from govkit.devstack import Stack
from govkit.errors import Unavailable
from govkit.events import MSG_ID_HEADER, build_event, unpack_payload
from services.notifications.channels import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from tests.support.identity import IdentityClient, find_event, md
from tests.support.mailsink import MailSink
from tests.support.tickets import Person, World, make_world, new_ticket
from tests.support.waiting import eventually
from tests.support.webhooks import Robot, serve

T = TypeVar("T")


@pytest_asyncio.fixture
async def world(blocks: BlocksServiceStub, tickets: TicketsServiceStub, identity: IdentityClient) -> World:
    return await make_world(blocks, tickets, identity)


async def inbox(n: NotificationsServiceStub, person: Person, **filters: object) -> list[pb.InboxItem]:
    reply = await n.ListInboxItems(pb.ListInboxItemsRequest(page_size=200, **filters), metadata=person.md)  # type: ignore[arg-type]
    return list(reply.items)


async def items_about(
    n: NotificationsServiceStub, person: Person, resource: str, kind: str
) -> list[pb.InboxItem]:
    return [i for i in await inbox(n, person) if i.resource == resource and i.kind == kind]


async def publish(nats_url: str, subject: str, payload: Message, msg_id: str = "") -> str:
    """A domain event straight onto its stream (as its owner's outbox relay would put it)."""
    event = build_event(subject, payload, actor="system", resource="test")
    nc = await nats.connect(nats_url)
    try:
        await nc.jetstream().publish(subject, event.envelope, headers={MSG_ID_HEADER: msg_id or event.id})
    finally:
        await nc.close()
    return event.id


async def republish_last(nats_url: str, stream: str, subject: str) -> None:
    """The newest event on `subject` again, under a new message id: a redelivery."""
    nc = await nats.connect(nats_url)
    try:
        msg = await nc.jsm().get_last_msg(stream, subject)
        headers = {MSG_ID_HEADER: f"{uuid.uuid4()}:again"}
        await nc.jetstream().publish(subject, msg.data, headers=headers)
    finally:
        await nc.close()


async def act(
    tickets: TicketsServiceStub, who: Person, t: tickets_pb2.Ticket, action: int, **extra: object
) -> tickets_pb2.Ticket:
    request = tickets_pb2.TransitionTicketRequest(name=t.name, action=action, **extra)  # type: ignore[arg-type]
    return await tickets.TransitionTicket(request, metadata=who.md)


async def test_an_event_delivered_twice_yields_one_inbox_item_and_one_email(
    notifications: NotificationsServiceStub,
    tickets: TicketsServiceStub,
    world: World,
    mail_sink: MailSink,
    stack: Stack,
) -> None:
    resident = world.staff["resident"]
    address = f"r-{uuid.uuid4().hex[:10]}@example.org"
    endpoint = pb.Endpoint(owner=resident.name, channel=pb.CHANNEL_EMAIL, address=address)
    # Only the person sets their own address.
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await notifications.CreateEndpoint(
            pb.CreateEndpointRequest(endpoint=endpoint), metadata=world.staff["neighbour"].md
        )
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    await notifications.CreateEndpoint(pb.CreateEndpointRequest(endpoint=endpoint), metadata=resident.md)

    t = await tickets.CreateTicket(
        tickets_pb2.CreateTicketRequest(ticket=new_ticket(world)), metadata=resident.md
    )
    t = await act(tickets, world.staff["dispatcher"], t, tickets_pb2.ACTION_ACCEPT)
    (item,) = await eventually(
        lambda: items_about(notifications, resident, t.name, "ticket.accepted"), what="inbox item"
    )
    assert "已受理" in item.title and item.link.endswith(t.name.removeprefix("tickets/"))
    assert not item.HasField("read_time")
    await eventually(lambda: asyncio.sleep(0, mail_sink.to(address)), what="e-mail")

    await republish_last(stack.nats_url, "TICKETS", "tickets.v1.ticket.accepted")
    # A later event on the same stream is handled after the duplicate: once it shows, so has that.
    second = await tickets.CreateTicket(
        tickets_pb2.CreateTicketRequest(ticket=new_ticket(world)), metadata=resident.md
    )
    second = await act(tickets, world.staff["dispatcher"], second, tickets_pb2.ACTION_REJECT, reason="重复")
    await eventually(
        lambda: items_about(notifications, resident, second.name, "ticket.rejected"), what="later item"
    )
    await eventually(lambda: asyncio.sleep(0, len(mail_sink.to(address)) >= 2), what="second e-mail")
    await asyncio.sleep(1)  # any second e-mail of the first event would have been sent by now
    assert len(await items_about(notifications, resident, t.name, "ticket.accepted")) == 1
    subjects = [m["Subject"] for m in mail_sink.to(address)]
    assert subjects.count(item.title) == 1, subjects

    unread = await notifications.GetUnreadCount(pb.GetUnreadCountRequest(), metadata=resident.md)
    assert unread.unread == 2
    marked = await notifications.MarkInboxItemsRead(
        pb.MarkInboxItemsReadRequest(names=[item.name]), metadata=resident.md
    )
    assert (marked.marked, marked.unread) == (1, 1)
    assert [i.name for i in await inbox(notifications, resident, unread_only=True)] != [item.name]
    # Someone else's item cannot be named.
    with pytest.raises(grpc.aio.AioRpcError) as other:
        await notifications.MarkInboxItemsRead(
            pb.MarkInboxItemsReadRequest(names=[item.name]), metadata=world.staff["neighbour"].md
        )
    assert other.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_a_webhook_failing_twice_then_succeeding_receives_exactly_one_delivery(
    notifications: NotificationsServiceStub,
    tickets: TicketsServiceStub,
    world: World,
    identity: IdentityClient,
) -> None:
    secret = uuid.uuid4().hex
    lead = f"units/{world.units['lead']}"
    with contextlib.contextmanager(serve)(Robot([500, 503, 200])) as robot:
        endpoint = pb.Endpoint(owner=lead, channel=pb.CHANNEL_WEBHOOK, address=robot.url, secret=secret)
        create = pb.CreateEndpointRequest(endpoint=endpoint, request_id=uuid.uuid4().hex)
        made = await notifications.CreateEndpoint(create, metadata=md(identity.admin_token))
        assert made.secret == ""  # never returned
        # A retry with the same request id answers the first result (not ALREADY_EXISTS).
        assert await notifications.CreateEndpoint(create, metadata=md(identity.admin_token)) == made
        t = await tickets.CreateTicket(
            tickets_pb2.CreateTicketRequest(ticket=new_ticket(world)), metadata=world.staff["resident"].md
        )
        t = await act(tickets, world.staff["dispatcher"], t, tickets_pb2.ACTION_ACCEPT)
        t = await act(tickets, world.staff["dispatcher"], t, tickets_pb2.ACTION_DISPATCH, lead_unit=lead)
        # The unit's member hears it in their inbox too.
        await eventually(
            lambda: items_about(notifications, world.staff["unit:lead"], t.name, "ticket.assigned"),
            what="unit inbox",
        )
        await eventually(lambda: asyncio.sleep(0, robot.accepted), what="accepted webhook")
        await asyncio.sleep(1.5)  # time for any further (wrong) attempt
        assert [r.status for r in robot.received] == [500, 503, 200]
        (got,) = robot.accepted
        # Signed with the robot's secret over timestamp and body.
        assert hmac.compare_digest(
            got.headers[SIGNATURE_HEADER], sign(secret, got.headers[TIMESTAMP_HEADER], got.body)
        )
        assert t.name.removeprefix("tickets/") in json.loads(got.body)["text"]["content"]
        listed = await notifications.ListDeliveries(
            pb.ListDeliveriesRequest(node=world.street, recipient=lead), metadata=md(identity.admin_token)
        )
        (delivery,) = [d for d in listed.deliveries if d.channel == pb.CHANNEL_WEBHOOK]
        assert (delivery.state, delivery.attempts) == (pb.DELIVERY_STATE_SENT, 3)


async def test_a_dead_webhook_ends_in_a_dead_letter_visible_through_the_api(
    notifications: NotificationsServiceStub,
    tickets: TicketsServiceStub,
    world: World,
    identity: IdentityClient,
    stack: Stack,
) -> None:
    started = dt.datetime.now(dt.UTC)
    lead = f"units/{world.units['lead']}"
    admin = md(identity.admin_token)
    with contextlib.contextmanager(serve)(Robot([500])) as robot:
        endpoint = pb.Endpoint(
            owner=lead, channel=pb.CHANNEL_WEBHOOK, address=robot.url, secret=uuid.uuid4().hex
        )
        await notifications.CreateEndpoint(pb.CreateEndpointRequest(endpoint=endpoint), metadata=admin)
        t = await tickets.CreateTicket(
            tickets_pb2.CreateTicketRequest(ticket=new_ticket(world)), metadata=world.staff["resident"].md
        )
        t = await act(tickets, world.staff["dispatcher"], t, tickets_pb2.ACTION_ACCEPT)
        await act(tickets, world.staff["dispatcher"], t, tickets_pb2.ACTION_DISPATCH, lead_unit=lead)
        dead_filter = pb.ListDeliveriesRequest(
            node=world.street, recipient=lead, state=pb.DELIVERY_STATE_DEAD
        )

        async def dead() -> list[pb.Delivery]:
            return list((await notifications.ListDeliveries(dead_filter, metadata=admin)).deliveries)

        (letter,) = await eventually(dead, what="dead letter")
        assert letter.attempts == 3 and "500" in letter.last_error
        assert len(robot.received) == 3
        # Announced with ids only.
        announced = await find_event(stack.nats_url, "notifications.v1.delivery.failed", letter.name, started)
        failed = unpack_payload(announced, notification_events.DeliveryFailed)
        assert (failed.recipient, failed.channel, failed.attempts) == (lead, pb.CHANNEL_WEBHOOK, 3)
        # Staff outside the street see none of it.
        with pytest.raises(grpc.aio.AioRpcError) as denied:
            await notifications.ListDeliveries(dead_filter, metadata=world.staff["resident"].md)
        assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
        # Sent again by hand once the robot is mended.
        robot.script[:] = [200]
        await notifications.RetryDelivery(pb.RetryDeliveryRequest(name=letter.name), metadata=admin)
        await eventually(lambda: asyncio.sleep(0, robot.accepted), what="retried delivery")


class Watch:
    """A WatchInbox stream read in the background."""

    def __init__(self, stub: NotificationsServiceStub, person: Person, after: int = 0) -> None:
        self.call = stub.WatchInbox(pb.WatchInboxRequest(after_sequence=after), metadata=person.md)
        self.items: list[pb.InboxItem] = []
        self.heartbeats = 0
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        with contextlib.suppress(grpc.aio.AioRpcError, asyncio.CancelledError):
            async for event in self.call:
                if event.HasField("item"):
                    self.items.append(event.item)
                else:
                    self.heartbeats += 1

    async def close(self) -> None:
        self.call.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


async def password_reset(stack: Stack, person: Person) -> None:
    await publish(
        stack.nats_url, "identity.v1.password.reset", identity_events.PasswordReset(user=person.name)
    )


async def test_watch_inbox_streams_new_items_to_their_owner_only_and_resumes_exactly(
    notifications: NotificationsServiceStub, identity: IdentityClient, stack: Stack
) -> None:
    people = []
    for _ in range(2):
        user, _, token = await identity.make_user("yuhu", [("resident", "yuhu")])
        people.append(Person(user.name, token))
    alice, bob = people
    a, b = Watch(notifications, alice), Watch(notifications, bob)
    await asyncio.sleep(0.5)  # both streams open
    await password_reset(stack, alice)
    await eventually(lambda: asyncio.sleep(0, a.items), what="streamed item")
    assert a.items[0].kind == "account.password_reset" and a.items[0].name.startswith(f"{alice.name}/")
    await eventually(lambda: asyncio.sleep(0, b.heartbeats), what="heartbeat", within=10)
    assert b.items == []  # never another person's item
    await b.close()
    last = a.items[-1].sequence
    await a.close()

    # Away: two items are written; a third arrives after the stream is back.
    await password_reset(stack, alice)
    await password_reset(stack, alice)
    missed = await eventually(
        lambda: _newer(notifications, alice, last, 2), what="two items written while away"
    )
    resumed = Watch(notifications, alice, after=last)
    await eventually(lambda: asyncio.sleep(0, len(resumed.items) >= 2), what="missed items")
    await password_reset(stack, alice)
    await eventually(lambda: asyncio.sleep(0, len(resumed.items) >= 3), what="live item after resume")
    await asyncio.sleep(0.5)
    await resumed.close()
    assert [i.sequence for i in resumed.items[:2]] == [i.sequence for i in missed]
    assert len(resumed.items) == 3 and resumed.items[2].sequence > missed[-1].sequence
    assert all(i.name.startswith(f"{alice.name}/") for i in resumed.items)


async def _newer(
    n: NotificationsServiceStub, person: Person, after: int, count: int
) -> list[pb.InboxItem] | None:
    found = sorted((i for i in await inbox(n, person) if i.sequence > after), key=lambda i: i.sequence)
    return found if len(found) >= count else None


async def test_streams_and_inboxes_need_a_person(notifications: NotificationsServiceStub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as anonymous:
        await notifications.GetUnreadCount(pb.GetUnreadCountRequest())
    assert anonymous.value.code() == grpc.StatusCode.UNAUTHENTICATED
    call = notifications.WatchInbox(pb.WatchInboxRequest())
    with pytest.raises(grpc.aio.AioRpcError) as stream:
        async for _ in call:
            pass
    assert stream.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_text_messages_go_to_the_number_identity_holds_split_like_carriers_do(
    notifications: NotificationsServiceStub, identity: IdentityClient, stack: Stack, sms_gateway: Robot
) -> None:
    user, phone, token = await identity.make_user("yuhu", [("resident", "yuhu")])
    person = Person(user.name, token)
    admin = md(identity.admin_token)
    # A long text of the operator's own: carried as 67-character parts with the same message id.
    long_text = "社区通知：" + "请注意防溺水安全，" * 12 + "{{ link }}"
    await notifications.UpdateTemplate(
        pb.UpdateTemplateRequest(
            template=pb.Template(
                name="templates/account.password_reset/sms/zh-CN", subject="", body=long_text
            )
        ),
        metadata=admin,
    )
    try:
        await password_reset(stack, person)

        async def texts() -> list[dict[str, object]]:
            sent = [json.loads(r.body) for r in sms_gateway.received]
            return [m for m in sent if m["to"] == f"+86{phone}"]

        parts = await eventually(lambda: _at_least(texts, 2), what="text message parts")
        assert {p["parts"] for p in parts} == {len(parts)} and len(parts) >= 2
        assert all(len(str(p["text"])) <= 67 for p in parts)
        assert len({str(p["id"]).split("#")[0] for p in parts}) == 1
    finally:
        await notifications.UpdateTemplate(
            pb.UpdateTemplateRequest(
                template=pb.Template(
                    name="templates/account.password_reset/sms/zh-CN",
                    subject="",
                    body="管理员已重置您的密码。",
                )
            ),
            metadata=admin,
        )


async def _at_least(check: Callable[[], Awaitable[list[T]]], count: int) -> list[T] | None:
    found = await check()
    return found if len(found) >= count else None


async def test_templates_are_checked_previewed_and_edited_by_global_staff_only(
    notifications: NotificationsServiceStub, identity: IdentityClient
) -> None:
    admin = md(identity.admin_token)
    name = "templates/ticket.resolved/sms/zh-CN"
    current = await notifications.GetTemplate(pb.GetTemplateRequest(name=name), metadata=admin)
    assert "rating_link" in current.parameters and "rating_link" in current.body
    preview = await notifications.PreviewTemplate(
        pb.PreviewTemplateRequest(name=name, body="{{ ticket_id }}" * 20), metadata=admin
    )
    assert len(preview.sms_parts) == 4 and preview.sms_parts[0].startswith("(1/4)")
    with pytest.raises(grpc.aio.AioRpcError) as bad:
        await notifications.UpdateTemplate(
            pb.UpdateTemplateRequest(template=pb.Template(name=name, body="{{ ''.__class__ }}")),
            metadata=admin,
        )
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    _, _, leader = await identity.make_user("yuhu", [("leader", "yuhu")])
    with pytest.raises(grpc.aio.AioRpcError) as denied:
        await notifications.UpdateTemplate(
            pb.UpdateTemplateRequest(template=pb.Template(name=name, body="x")), metadata=md(leader)
        )
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
    listed = await notifications.ListTemplates(
        pb.ListTemplatesRequest(kind="ticket.resolved"), metadata=md(leader)
    )
    assert {t.name for t in listed.templates} >= {name, "templates/ticket.resolved/inbox/en"}


async def test_service_tokens_by_client_credentials(identity: IdentityClient, stack: Stack) -> None:
    creds = stack.create_service_account("tokentest", "admin", "admin-test-password")
    channel = grpc.aio.insecure_channel(stack.addrs["identity"])
    try:
        client_id, secret = creds["GOV_TOKENTEST_CLIENT_ID"], creds["GOV_TOKENTEST_CLIENT_SECRET"]
        tokens = ServiceTokens(channel, client_id, secret)
        first = await tokens.token()
        assert await tokens.token() == first  # kept until near its expiry
        caller = await identity.stub.GetCaller(
            identity_pb2.GetCallerRequest(), metadata=await tokens.metadata()
        )
        assert caller.principal.startswith("serviceAccounts/")
        tokens.invalidate()
        assert await tokens.token()  # fetched anew
        wrong = ServiceTokens(channel, client_id, "not-the-secret")
        with pytest.raises(Unavailable):
            await wrong.token()
    finally:
        await channel.close()


async def test_an_escalation_reaches_the_streets_dispatcher_and_the_blocks_robot(
    notifications: NotificationsServiceStub,
    tickets: TicketsServiceStub,
    world: World,
    identity: IdentityClient,
) -> None:
    t = await tickets.CreateTicket(
        tickets_pb2.CreateTicketRequest(ticket=new_ticket(world)), metadata=world.staff["resident"].md
    )
    with contextlib.contextmanager(serve)(Robot([200])) as robot:
        block_robot = pb.Endpoint(
            owner=f"nodes/{t.node}", channel=pb.CHANNEL_WEBHOOK, address=robot.url, secret=uuid.uuid4().hex
        )
        await notifications.CreateEndpoint(
            pb.CreateEndpointRequest(endpoint=block_robot), metadata=md(identity.admin_token)
        )
        dispatcher = world.staff["dispatcher"]
        t = await act(tickets, dispatcher, t, tickets_pb2.ACTION_ACCEPT)
        t = await act(tickets, dispatcher, t, tickets_pb2.ACTION_ESCALATE, reason="涉及多部门")
        (item,) = await eventually(
            lambda: items_about(notifications, dispatcher, t.name, "ticket.escalated"),
            what="dispatcher's item",
        )
        assert item.urgent
        await eventually(lambda: asyncio.sleep(0, robot.accepted), what="block robot")
        assert t.name.removeprefix("tickets/") in json.loads(robot.accepted[0].body)["text"]["content"]
    # The district's dispatcher, who takes it up, hears of it; a dispatcher of another part of the
    # district (administered in the district too) does not; nor does the reporter.
    await eventually(
        lambda: items_about(notifications, world.staff["district"], t.name, "ticket.escalated"),
        what="district dispatcher's item",
    )
    for bystander in ("outsider", "resident"):
        assert await items_about(notifications, world.staff[bystander], t.name, "ticket.escalated") == []


async def test_events_applied_together_reach_the_stream_once_each_in_sequence_order(
    notifications: NotificationsServiceStub, identity: IdentityClient, stack: Stack
) -> None:
    """Many events at once are applied in shared transactions (the consumer's batches); each item
    still reaches the person's stream exactly once, in sequence order (the events' order), and a copy
    of an event sent among them (a redelivery) adds nothing."""
    user, _, token = await identity.make_user("yuhu", [("resident", "yuhu")])
    person = Person(user.name, token)
    watch = Watch(notifications, person)
    await asyncio.sleep(0.5)  # the stream is open
    tickets: list[str] = []
    envelopes: list[bytes] = []
    for _ in range(40):
        name = f"tickets/t-{uuid.uuid4().hex[:12]}"
        summary = ticket_events.TicketSummary(
            name=name,
            category="categories/c",
            state=tickets_pb2.TICKET_STATE_ACCEPTED,
            node="yuhu/x/b01",
            reporter=person.name,
        )
        event = build_event(
            "tickets.v1.ticket.accepted",
            ticket_events.TicketTransitioned(ticket=summary),
            actor="system",
            resource=name,
        )
        tickets.append(name)
        envelopes.append(event.envelope)
    nc = await nats.connect(stack.nats_url)
    try:
        js = nc.jetstream()
        for i, envelope in enumerate(envelopes):
            await js.publish(
                "tickets.v1.ticket.accepted", envelope, headers={MSG_ID_HEADER: str(uuid.uuid4())}
            )
            if i == 20:  # the first event again, as a redelivery would bring it
                await js.publish(
                    "tickets.v1.ticket.accepted", envelopes[0], headers={MSG_ID_HEADER: str(uuid.uuid4())}
                )
    finally:
        await nc.close()
    await eventually(lambda: asyncio.sleep(0, len(watch.items) >= 40), what="40 streamed items")
    await asyncio.sleep(1)  # anything streamed twice would have come by now
    await watch.close()
    assert sorted(i.resource for i in watch.items) == sorted(tickets)
    sequences = [i.sequence for i in watch.items]
    assert sequences == sorted(sequences) and len(set(sequences)) == 40
    # The sequences follow the events' order on the stream, within a shared transaction too.
    assert [i.resource for i in watch.items] == tickets
    stored = [i for i in await inbox(notifications, person) if i.resource in set(tickets)]
    assert sorted(i.sequence for i in stored) == sorted(sequences)
