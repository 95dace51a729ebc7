"""Domain events: envelope fields, deduplication ids and W3C trace context carried over NATS."""

from __future__ import annotations

import asyncio
import secrets

import grpc
import httpx
import nats
import nats.aio.msg
import pytest

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
        # Read the whole subject (the session's stack may have created thousands of users before
        # this test runs); the stream's end shows as a pause.
        while True:
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


async def _find_event(nats_url: str, subject: str, resource: str) -> nats.aio.msg.Msg:
    nc = await nats.connect(nats_url)
    try:
        sub = await nc.jetstream().subscribe(subject, ordered_consumer=True)
        for _ in range(50):
            while True:
                try:
                    msg = await sub.next_msg(timeout=0.2)
                except nats.errors.TimeoutError:
                    break
                if parse_event(msg.data).resource == resource:
                    return msg
            await sub.unsubscribe()
            await asyncio.sleep(0.1)
            sub = await nc.jetstream().subscribe(subject, ordered_consumer=True)
        raise AssertionError(f"no {subject} event for {resource}")
    finally:
        await nc.close()


async def test_trace_context_flows_from_rest_through_grpc_to_the_event(
    stack: Stack, identity: IdentityClient
) -> None:
    trace_id = secrets.token_hex(16)
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=10) as http:
        reply = await http.post(
            "/api/v1/users",
            json={"phone": random_phone(), "display_name": "追踪", "scope": "yuhu", "password": PASSWORD},
            headers={
                "Authorization": f"Bearer {identity.admin_token}",
                "traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01",
            },
        )
    assert reply.status_code == 201
    msg = await _find_event(stack.nats_url, "identity.v1.user.created", reply.json()["name"])
    assert msg.headers["traceparent"].split("-")[1] == trace_id


async def test_lockout_emits_login_locked_for_real_accounts(stack: Stack, identity: IdentityClient) -> None:
    user, phone, _ = await identity.make_user("yuhu/wanlou")
    for _ in range(3):
        with pytest.raises(grpc.aio.AioRpcError):
            await identity.login(phone, "wrong-password")
    msg = await _find_event(stack.nats_url, "identity.v1.login.locked", user.name)
    locked = unpack_payload(parse_event(msg.data), events_pb2.LoginLocked)
    assert locked.user == user.name and locked.failed_attempts == 3 and locked.locked_seconds == 3
