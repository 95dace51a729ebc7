"""Reading events off the real streams in tests."""

from __future__ import annotations

import asyncio

import nats
import nats.errors

from gov.common.v1 import event_pb2
from govkit.events import parse_event


async def _read_about(
    nats_url: str, subject: str, resource: str, settle: float = 0.5
) -> list[tuple[bytes, event_pb2.Event]]:
    """One pass over `subject` (wildcards allowed): its events about `resource`, in stream order,
    read until none arrives for `settle` seconds."""
    found = []
    nc = await nats.connect(nats_url)
    try:
        sub = await nc.jetstream().subscribe(subject, ordered_consumer=True)
        while True:
            try:
                msg = await sub.next_msg(timeout=settle)
            except nats.errors.TimeoutError:
                return found
            event = parse_event(msg.data)
            if event.resource == resource:
                found.append((msg.data, event))
    finally:
        await nc.close()


async def event_types(nats_url: str, subject: str, resource: str, settle: float = 0.5) -> list[str]:
    """Types of every event on `subject` about `resource` so far, in stream order."""
    return [event.type for _, event in await _read_about(nats_url, subject, resource, settle)]


async def events_about(
    nats_url: str, subject: str, resource: str, *, count: int = 1, within: float = 15.0
) -> list[tuple[bytes, event_pb2.Event]]:
    """(raw message, event) of every event on `subject` (wildcards allowed) about `resource`,
    in stream order, once at least `count` of them are there (or `within` seconds passed)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        found = await _read_about(nats_url, subject, resource)
        if len(found) >= count or loop.time() > deadline:
            return found
        await asyncio.sleep(0.2)
