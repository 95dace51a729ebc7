"""A domain error's status reaches a gRPC client with default options as the server sent it.

A status travels in the trailers, one header block, and a gRPC client refuses a received block over
8 KiB at random (the more often the larger it is) and every one over 16 KiB: the call then fails on
the client with RESOURCE_EXHAUSTED. An import's hundred bad rows came to 8.4 KiB, and about 3% of
those answers reached the gateway as 429 instead of 400. Served here by `abort_with` on a real
server, called over a real channel with grpc's default limits.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
import pytest_asyncio
from google.rpc import error_details_pb2, status_pb2

from govkit.errors import DomainError, InvalidArgument, ResourceExhausted
from govkit.grpc_server import MAX_MESSAGE_BYTES, RETRY_AFTER_KEY, abort_with

METHOD = "/test.v1.Refuser/Refuse"
# What grpc's default grpc.max_metadata_size lets through every time.
SOFT_LIMIT = 8 * 1024
# :status, content-type and grpc-status, as a client counts them (in its refusal's message).
FIXED_ENTRIES_SIZE = 42 + 60 + 44


class Refuser:
    """Answers every call with the error it is given, through `abort_with`."""

    def __init__(self) -> None:
        self.error: DomainError = InvalidArgument("unset")

    async def refuse(self, request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
        await abort_with(context, self.error)
        return b""  # not reached: abort_with raises


@pytest_asyncio.fixture
async def served() -> AsyncIterator[tuple[Refuser, grpc.aio.UnaryUnaryMultiCallable[bytes, bytes]]]:
    refuser = Refuser()
    server = grpc.aio.server()
    server.add_generic_rpc_handlers(
        [
            grpc.method_handlers_generic_handler(
                "test.v1.Refuser", {"Refuse": grpc.unary_unary_rpc_method_handler(refuser.refuse)}
            )
        ]
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")  # grpc's default limits
    try:
        yield refuser, channel.unary_unary(METHOD)
    finally:
        await channel.close()
        await server.stop(0)


def _encoded(message: str) -> int:
    return sum(1 if 0x20 <= b <= 0x7E and b != 0x25 else 3 for b in message.encode())


def _block_size(error: grpc.aio.AioRpcError) -> int:
    """The trailers' header block as the client counted it against its limit."""
    size = FIXED_ENTRIES_SIZE + len("grpc-message") + _encoded(error.details() or "") + 32
    for key, value in error.trailing_metadata() or ():
        size += len(key) + len(value) + 32
    return size


def _violations(error: grpc.aio.AioRpcError) -> list[tuple[str, str]]:
    raw = dict(error.trailing_metadata() or ())["grpc-status-details-bin"]
    assert isinstance(raw, bytes)
    status = status_pb2.Status()
    status.ParseFromString(raw)
    out: list[tuple[str, str]] = []
    for detail in status.details:
        bad = error_details_pb2.BadRequest()
        assert detail.Unpack(bad)
        out.extend((v.field, v.description) for v in bad.field_violations)
    return out


async def _refusal(call: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes]) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call(b"")
    return refused.value


async def test_an_imports_hundred_bad_rows_arrive_as_sent_every_time(
    served: tuple[Refuser, grpc.aio.UnaryUnaryMultiCallable[bytes, bytes]],
) -> None:
    """The residents import of test_imports_hardening: 6,000 rows naming households that do not
    exist. Its trailers came to 8,435 bytes, refused by the client about one time in thirty."""
    refuser, call = served
    rows = [
        (f"line {i + 2}: household_code", f"no household 7f6e17-nope{i}; import households first")
        for i in range(100)
    ]
    refuser.error = InvalidArgument(
        f"residents: 6000 bad row(s), nothing imported; first: {rows[0][0]}: {rows[0][1]}", violations=rows
    )
    for _ in range(60):
        error = await _refusal(call)
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
        assert _block_size(error) < SOFT_LIMIT
        received = _violations(error)
        assert 50 <= len(received) < 100 and received == rows[: len(received)]  # the first rows, in order


async def test_details_far_over_the_hard_limit_are_cut_to_the_first_that_fit(
    served: tuple[Refuser, grpc.aio.UnaryUnaryMultiCallable[bytes, bytes]],
) -> None:
    """100 problems of 200 bytes: 20 KiB of details, which every client would refuse."""
    refuser, call = served
    problems = [(f"line {i}: address", "地址" * 33 + f" is wrong on line {i}") for i in range(100)]
    refuser.error = InvalidArgument("addresses: 100 bad row(s)", field="file", violations=problems)
    error = await _refusal(call)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
    assert _block_size(error) < SOFT_LIMIT
    received = _violations(error)
    assert received[0] == ("file", "addresses: 100 bad row(s)")  # the error's own field comes first
    assert 10 <= len(received) - 1 < 100 and received[1:] == problems[: len(received) - 1]


async def test_a_long_message_is_cut_and_retry_after_still_travels(
    served: tuple[Refuser, grpc.aio.UnaryUnaryMultiCallable[bytes, bytes]],
) -> None:
    """2,800 Chinese characters are 25,200 bytes percent-encoded in grpc-message: over the hard limit."""
    refuser, call = served
    refuser.error = ResourceExhausted("张" * 2800, retry_after=7)
    error = await _refusal(call)
    # The server's own RESOURCE_EXHAUSTED, not the client's refusal of the block.
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    details = error.details() or ""
    assert details.startswith("张" * 100) and details.endswith("…")
    assert _encoded(details) <= MAX_MESSAGE_BYTES
    assert dict(error.trailing_metadata() or ())[RETRY_AFTER_KEY] == "7"
    assert _block_size(error) < SOFT_LIMIT
