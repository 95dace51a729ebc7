"""Server-Sent Events relayed from a gRPC server stream: one upstream stream per connection.

The relay forwards what the upstream stream says as SSE frames, writes a comment (`: keep-alive`)
whenever nothing was written for `heartbeat` seconds (proxies and load balancers drop connections that
look idle), and ends when the stream ends, the upstream fails (the client reconnects with
Last-Event-ID), the client goes away (Starlette cancels the response; the upstream call is cancelled
with it), or the gateway begins to stop (`Shutdown`): an open stream must not hold uvicorn's graceful
shutdown until its timeout.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc

from govkit import metrics

log = logging.getLogger(__name__)

KEEP_ALIVE = b": keep-alive\n\n"
# EventSource waits this long before reconnecting after the stream ends (the default is ~3 s too,
# but said explicitly so every browser does the same).
RETRY_MILLISECONDS = 2000
HEADERS = {
    "Cache-Control": "no-store",
    # nginx buffers proxied responses unless told not to; an event would wait for the buffer to fill.
    "X-Accel-Buffering": "no",
}


class Shutdown:
    """Set once when the gateway begins to stop; every open stream ends at that moment."""

    def __init__(self) -> None:
        self.event = asyncio.Event()
        self._loop = asyncio.get_running_loop()

    def set(self) -> None:
        """Safe from a signal handler or another thread."""
        self._loop.call_soon_threadsafe(self.event.set)


def frame(*, event: str, data: str, id: int | str | None = None) -> bytes:
    """One SSE event. `data` must be one line (JSON is): a newline would split it into two fields."""
    if "\n" in data or "\r" in data:
        raise ValueError("SSE data must be a single line")
    head = f"id: {id}\n" if id is not None else ""
    return f"{head}event: {event}\ndata: {data}\n\n".encode()


def _retrieve(task: asyncio.Future[Any]) -> None:
    # A read that fails after the relay stopped waiting for it must not be logged as never retrieved.
    if not task.cancelled():
        task.exception()


async def relay(
    call: grpc.aio.UnaryStreamCall[Any, Any],
    encode: Callable[[Any], bytes | None],
    *,
    heartbeat: float,
    shutdown: Shutdown,
    route: str,
) -> AsyncIterator[bytes]:
    """The SSE body: `encode` turns an upstream message into a frame (None: nothing to send)."""
    open_streams = metrics.sse_streams_open.labels(route)
    open_streams.inc()
    stopping = asyncio.ensure_future(shutdown.event.wait())
    pending: asyncio.Future[Any] | None = None
    loop = asyncio.get_running_loop()
    try:
        yield f"retry: {RETRY_MILLISECONDS}\n\n".encode()
        written = loop.time()
        while True:
            if pending is None:
                # Kept across keep-alives: cancelling a read would cancel the whole call.
                pending = asyncio.ensure_future(call.read())
                pending.add_done_callback(_retrieve)
            # Due `heartbeat` after the last write, whatever the upstream said in between.
            due = max(0.0, written + heartbeat - loop.time())
            done, _ = await asyncio.wait({pending, stopping}, timeout=due, return_when="FIRST_COMPLETED")
            if stopping in done:
                return
            if pending not in done:
                yield KEEP_ALIVE
                written = loop.time()
                continue
            message, pending = pending.result(), None
            if message is grpc.aio.EOF:
                return
            chunk = encode(message)
            if chunk is not None:
                yield chunk
                written = loop.time()
    except grpc.aio.AioRpcError as exc:
        # The client reconnects and resumes from the last id it received; nothing is lost.
        log.info("sse upstream ended", extra={"grpc_code": exc.code().name})
    finally:
        # No awaiting here: on a client disconnect this runs inside a cancelled scope.
        call.cancel()
        open_streams.dec()
        stopping.cancel()
        if pending is not None:
            pending.cancel()
