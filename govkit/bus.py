"""NATS connection.

Streams are not made here: the deployment owns them (govkit/streams.toml, `python -m govkit.streams
apply`); a service only checks that its streams exist (govkit.streams.missing)."""

from __future__ import annotations

import logging
from typing import Any

import nats
from nats.aio.client import Client as NATS

from govkit import tls

log = logging.getLogger(__name__)


def tls_options(ca_file: str | None) -> dict[str, Any]:
    """nats.connect's arguments for a server whose certificate `ca_file` signed (GOV_TLS_NATS_CA_FILE):
    the certificate and the URL's host name are verified against it. nats-py upgrades to TLS when
    the server says it requires TLS (a nats-server with TLS configured always does), whatever the
    URL's scheme. None: as the URL says (`tls://` trusts the system's CAs)."""
    if not ca_file:
        return {}
    return {"tls": tls.client_context(ca_file)}


async def connect(url: str, name: str, *, ca_file: str | None = None) -> NATS:
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
        **tls_options(ca_file),
    )
