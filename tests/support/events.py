"""Reading events off the real streams in tests."""

from __future__ import annotations

import asyncio

import nats
import nats.errors

from gov.common.v1 import event_pb2
from govkit.events import parse_event


async def events_about(
    nats_url: str, subject: str, resource: str, *, count: int = 1, within: float = 15.0
) -> list[tuple[bytes, event_pb2.Event]]:
    """(raw message, event) of every event on `subject` (wildcards allowed) about `resource`,
    in stream order, once at least `count` of them are there (or `within` seconds passed)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        found = []
        nc = await nats.connect(nats_url)
        try:
            sub = await nc.jetstream().subscribe(subject, ordered_consumer=True)
            while True:
                try:
                    msg = await sub.next_msg(timeout=0.5)
                except nats.errors.TimeoutError:
                    break
                event = parse_event(msg.data)
                if event.resource == resource:
                    found.append((msg.data, event))
        finally:
            await nc.close()
        if len(found) >= count or loop.time() > deadline:
            return found
        await asyncio.sleep(0.2)
