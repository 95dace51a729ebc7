"""Domain events: envelope fields, deduplication ids and W3C trace context carried over NATS."""

from __future__ import annotations

import asyncio
import secrets

import nats

from gov.identity.v1 import events_pb2
from gov.identity.v1 import identity_pb2 as pb
from govkit.devstack import Stack
from govkit.events import MSG_ID_HEADER, parse_event, unpack_payload
from tests.support.identity import PASSWORD, IdentityClient, random_phone


async def test_user_created_event_carries_envelope_and_the_callers_trace(
    stack: Stack, identity: IdentityClient
) -> None:
    trace_id = secrets.token_hex(16)
    parent_span = secrets.token_hex(8)
    metadata = (
        ("authorization", f"Bearer {identity.admin_token}"),
        ("traceparent", f"00-{trace_id}-{parent_span}-01"),
    )
    user = await identity.stub.CreateUser(
        pb.CreateUserRequest(
            user=pb.User(phone=random_phone(), display_name="事件", scope="yuhu"), password=PASSWORD
        ),
        metadata=metadata,
    )
    admin = await identity.stub.GetCaller(pb.GetCallerRequest(), metadata=metadata[:1])
    nc = await nats.connect(stack.nats_url)
    try:
        js = nc.jetstream()
        sub = await js.subscribe("identity.v1.user.created", ordered_consumer=True)
        found = None
        for _ in range(200):
            try:
                msg = await sub.next_msg(timeout=2)
            except nats.errors.TimeoutError:
                break
            if parse_event(msg.data).resource == user.name:
                found = msg
                break
        assert found is not None, "user.created event not on the stream"
        event = parse_event(found.data)
        assert event.type == "identity.v1.user.created" and event.actor == admin.principal
        assert found.headers[MSG_ID_HEADER] == event.id
        assert unpack_payload(event, events_pb2.UserCreated).user.id == user.id
        # The relay's producer span continues the trace the caller started.
        _version, got_trace, got_span, _flags = found.headers["traceparent"].split("-")
        assert got_trace == trace_id and got_span != parent_span
    finally:
        await nc.close()
    await asyncio.sleep(0)
