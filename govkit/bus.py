"""NATS connection.

Streams are not made here: the deployment owns them (govkit/streams.toml, `python -m govkit.streams
apply`); a service only checks that its streams exist (govkit.streams.missing)."""

from __future__ import annotations

import logging

import nats
from nats.aio.client import Client as NATS

log = logging.getLogger(__name__)


async def connect(url: str, name: str) -> NATS:
    async def _disconnected() -> None:
        log.warning("NATS disconnected")

    async def _reconnected() -> None:
        log.info("NATS reconnected")

    return await nats.connect(
        url,
        name=name,
        connect_timeout=2,
        drain_timeout=5,
        max_reconnect_attempts=-1,
        reconnect_time_wait=1,
        disconnected_cb=_disconnected,
        reconnected_cb=_reconnected,
    )
