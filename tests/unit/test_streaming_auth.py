"""Every kind of gRPC method is authenticated by govkit's interceptor, streaming ones included.

No proto has a streaming method yet, so a test-only service is registered with grpc's generic
handlers on a real server built with `PlatformInterceptor`, and called over a real channel with a
token signed by a real key (and without one).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
import pytest_asyncio
from cryptography.hazmat.primitives.asymmetric import ec

from govkit.auth.principal import current_principal
from govkit.auth.tokens import TokenVerifier
from govkit.grpc_server import PlatformInterceptor
from tests.support.tokens import StaticJwks, access_token

SERVICE = "test.v1.Echo"


def _identity(request: bytes) -> bytes:
    return request


def _caller() -> bytes:
    return current_principal().subject.encode()


async def unary_unary(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    return _caller()


async def unary_stream(request: bytes, context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
    for _ in range(2):
        yield _caller()


async def unary_stream_writer(request: bytes, context: grpc.aio.ServicerContext) -> None:
    """A streaming method written as a coroutine that writes, not as a generator."""
    await context.write(_caller())
    await context.write(_caller())


async def stream_unary(requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext) -> bytes:
    received = [r async for r in requests]
    return _caller() + b":" + b",".join(received)


async def stream_stream(
    requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext
) -> AsyncIterator[bytes]:
    async for r in requests:
        yield _caller() + b":" + r


async def public_stream(request: bytes, context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
    yield b"anyone"


def _handlers() -> grpc.GenericRpcHandler:
    codec = {"request_deserializer": _identity, "response_serializer": _identity}
    return grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "UnaryUnary": grpc.unary_unary_rpc_method_handler(unary_unary, **codec),
            "UnaryStream": grpc.unary_stream_rpc_method_handler(unary_stream, **codec),
            "UnaryStreamWriter": grpc.unary_stream_rpc_method_handler(unary_stream_writer, **codec),
            "StreamUnary": grpc.stream_unary_rpc_method_handler(stream_unary, **codec),
            "StreamStream": grpc.stream_stream_rpc_method_handler(stream_stream, **codec),
            "PublicStream": grpc.unary_stream_rpc_method_handler(public_stream, **codec),
        },
    )


@pytest_asyncio.fixture
async def signing_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest_asyncio.fixture
async def channel(signing_key: ec.EllipticCurvePrivateKey) -> AsyncIterator[grpc.aio.Channel]:
    verifier = TokenVerifier(StaticJwks(signing_key.public_key()))
    server = grpc.aio.server(interceptors=[PlatformInterceptor(verifier, [f"/{SERVICE}/PublicStream"])])
    server.add_generic_rpc_handlers((_handlers(),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    client = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield client
    finally:
        await client.close()
        await server.stop(None)


def _token(key: ec.EllipticCurvePrivateKey, subject: str = "users/alice", **overrides: Any) -> str:
    return access_token(key, subject, **overrides)


def _md(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


async def _requests(*items: bytes) -> AsyncIterator[bytes]:
    for item in items:
        yield item


def _start(channel: grpc.aio.Channel, kind: str, metadata: tuple[tuple[str, str], ...]) -> Any:
    """Start a call to the method of the given kind."""
    codec = {"request_serializer": _identity, "response_deserializer": _identity}
    path = f"/{SERVICE}/{kind}"
    if kind == "UnaryUnary":
        return channel.unary_unary(path, **codec)(b"x", metadata=metadata, timeout=5)
    if kind in ("UnaryStream", "UnaryStreamWriter", "PublicStream"):
        return channel.unary_stream(path, **codec)(b"x", metadata=metadata, timeout=5)
    if kind == "StreamUnary":
        return channel.stream_unary(path, **codec)(_requests(b"a", b"b"), metadata=metadata, timeout=5)
    return channel.stream_stream(path, **codec)(_requests(b"a", b"b"), metadata=metadata, timeout=5)


async def _call(
    channel: grpc.aio.Channel, kind: str, metadata: tuple[tuple[str, str], ...] = ()
) -> list[bytes]:
    """Every answer of one call, as a list."""
    call = _start(channel, kind, metadata)
    if kind in ("UnaryUnary", "StreamUnary"):
        return [await call]
    return [r async for r in call]


async def _status(channel: grpc.aio.Channel, kind: str, metadata: tuple[tuple[str, str], ...] = ()) -> Any:
    """The status the server ends one call with. A request stream is opened but nothing is sent:
    the refusal must come before the server reads any request (and a client writing into a call the
    server has already refused would see its own write fail first)."""
    codec = {"request_serializer": _identity, "response_deserializer": _identity}
    path = f"/{SERVICE}/{kind}"
    if kind == "StreamUnary":
        call = channel.stream_unary(path, **codec)(metadata=metadata, timeout=5)
    elif kind == "StreamStream":
        call = channel.stream_stream(path, **codec)(metadata=metadata, timeout=5)
    else:
        call = _start(channel, kind, metadata)
        with contextlib.suppress(grpc.aio.AioRpcError):
            if kind == "UnaryUnary":
                await call
            else:
                async for _ in call:
                    pass
    return await call.code()


KINDS = ["UnaryUnary", "UnaryStream", "UnaryStreamWriter", "StreamUnary", "StreamStream"]


@pytest.mark.parametrize("kind", KINDS)
async def test_every_kind_of_method_refuses_a_call_without_a_token(
    channel: grpc.aio.Channel, kind: str
) -> None:
    assert await _status(channel, kind) == grpc.StatusCode.UNAUTHENTICATED


@pytest.mark.parametrize("kind", KINDS)
async def test_every_kind_of_method_refuses_a_forged_or_expired_token(
    channel: grpc.aio.Channel, signing_key: ec.EllipticCurvePrivateKey, kind: str
) -> None:
    forger = ec.generate_private_key(ec.SECP256R1())
    for token in (_token(forger), _token(signing_key, exp=int(time.time()) - 600)):
        assert await _status(channel, kind, _md(token)) == grpc.StatusCode.UNAUTHENTICATED


@pytest.mark.parametrize(
    ("kind", "answers"),
    [
        ("UnaryUnary", [b"users/alice"]),
        ("UnaryStream", [b"users/alice", b"users/alice"]),
        ("UnaryStreamWriter", [b"users/alice", b"users/alice"]),
        ("StreamUnary", [b"users/alice:a,b"]),
        ("StreamStream", [b"users/alice:a", b"users/alice:b"]),
    ],
)
async def test_every_kind_of_method_runs_as_the_verified_caller(
    channel: grpc.aio.Channel, signing_key: ec.EllipticCurvePrivateKey, kind: str, answers: list[bytes]
) -> None:
    assert await _call(channel, kind, _md(_token(signing_key))) == answers


async def test_a_public_streaming_method_needs_no_token(channel: grpc.aio.Channel) -> None:
    assert await _call(channel, "PublicStream") == [b"anyone"]
