"""NATS connection and JetStream streams."""

from __future__ import annotations

import logging

import nats
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from nats.js.api import StorageType, StreamConfig
from nats.js.errors import BadRequestError

from govkit.events import DEAD_LETTER_PREFIX, stream_name, stream_subjects

log = logging.getLogger(__name__)

# A relay that crashed after publishing republishes within this window; JetStream drops the copy.
DUPLICATE_WINDOW_SECONDS = 600.0


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


async def _ensure(js: JetStreamContext, config: StreamConfig) -> None:
    try:
        await js.add_stream(config)
    except BadRequestError:
        # Exists with another configuration (an older release): bring it up to date.
        await js.update_stream(config)


async def ensure_domain_stream(js: JetStreamContext, domain: str) -> None:
    await _ensure(
        js,
        StreamConfig(
            name=stream_name(domain),
            subjects=stream_subjects(domain),
            storage=StorageType.FILE,
            duplicate_window=DUPLICATE_WINDOW_SECONDS,
        ),
    )


async def ensure_dead_letter_stream(js: JetStreamContext) -> None:
    await _ensure(
        js,
        StreamConfig(
            name="DEADLETTER",
            subjects=[f"{DEAD_LETTER_PREFIX}.>"],
            storage=StorageType.FILE,
            duplicate_window=DUPLICATE_WINDOW_SECONDS,
        ),
    )
