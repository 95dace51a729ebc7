"""govkit's client channels: a read waits briefly for a peer that is coming back; a write does not."""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest

from govkit.channels import insecure_channel, is_safe
from govkit.devstack import free_port

SERVICE = "test.v1.Things"


def test_reads_are_safe_writes_and_health_checks_are_not() -> None:
    assert is_safe("/gov.tickets.v1.TicketsService/GetTicket")
    assert is_safe(b"/gov.tickets.v1.TicketsService/ListTickets")
    assert is_safe("/gov.blocks.v1.BlocksService/LocateBlock")
    assert not is_safe("/gov.tickets.v1.TicketsService/CreateTicket")
    assert not is_safe("/gov.tickets.v1.TicketsService/TransitionTicket")
    assert not is_safe("/grpc.health.v1.Health/Check")


async def _echo(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    return request


async def _serve_later(port: int, delay: float) -> grpc.aio.Server:
    await asyncio.sleep(delay)
    server = grpc.aio.server()
    handler = grpc.unary_unary_rpc_method_handler(_echo)
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(SERVICE, {"GetThing": handler, "CreateThing": handler}),)
    )
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    return server


@pytest.fixture
def port() -> int:
    return free_port()


async def test_a_read_waits_for_a_peer_that_comes_back_a_write_fails_fast(port: int) -> None:
    channel = insecure_channel(f"127.0.0.1:{port}", ready_wait=3.0)
    get = channel.unary_unary(f"/{SERVICE}/GetThing")
    create = channel.unary_unary(f"/{SERVICE}/CreateThing")
    try:
        # Nobody listens: the channel fails to connect and backs off.
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await create(b"x", timeout=5)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
        started = time.monotonic()
        with pytest.raises(grpc.aio.AioRpcError) as still_refused:
            await create(b"x", timeout=5)
        assert still_refused.value.code() == grpc.StatusCode.UNAVAILABLE
        assert time.monotonic() - started < 1.0  # a write is not held
        # The peer comes back 0.5 s after a read was asked for: the read is answered.
        server_task = asyncio.create_task(_serve_later(port, 0.5))
        assert await get(b"hello", timeout=5) == b"hello"
        server = await server_task
        try:
            assert await create(b"x", timeout=5) == b"x"
        finally:
            await server.stop(None)
    finally:
        await channel.close()


async def test_a_read_gives_up_after_its_bound(port: int) -> None:
    channel = insecure_channel(f"127.0.0.1:{port}", ready_wait=0.5)
    try:
        started = time.monotonic()
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await channel.unary_unary(f"/{SERVICE}/GetThing")(b"x", timeout=5)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
        assert 0.4 < time.monotonic() - started < 3.0
    finally:
        await channel.close()
