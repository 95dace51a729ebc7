"""Deny-list of access tokens revoked before they expire, fed by identity's revocation events.

Identity announces every revocation (a disabled account, a changed or reset password, a logout, a
reused refresh token) as an `identity.v1.tokens.revoked` event. Every verifier (the gateway and
each service) follows that subject with an ordered JetStream consumer that starts an access-token
lifetime in the past, so a verifier that has just started still knows every revocation in force.
An entry is forgotten once every token it could match has expired, so the list stays short.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import Callable

import nats.errors
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from gov.common.v1 import event_pb2
from gov.identity.v1 import events_pb2
from govkit import bus
from govkit.events import parse_event, unpack_payload

log = logging.getLogger(__name__)

REVOCATION_SUBJECT = "identity.v1.tokens.revoked"
# The longest access-token lifetime identity may be configured with, plus verifier leeway: a
# revocation older than this cannot match a token that is still valid.
MAX_ACCESS_TOKEN_TTL_SECONDS = 3600
LOOKBACK = dt.timedelta(seconds=MAX_ACCESS_TOKEN_TTL_SECONDS + 120)
_PRUNE_EVERY_SECONDS = 30.0
# Read back this much before the last moment the connection was known to be up (clock skew
# between this host and the NATS server included).
_CATCH_UP_MARGIN = dt.timedelta(seconds=30)


class Revocations:
    """Who and which sessions are denied; consulted by `TokenVerifier` on every token."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        # subject -> (tokens issued before this are denied, entry expires at)
        self._subjects: dict[str, tuple[float, float]] = {}
        # session id -> entry expires at
        self._sessions: dict[str, float] = {}
        self._pruned_at = clock()

    def __len__(self) -> int:
        return len(self._subjects) + len(self._sessions)

    def deny(self, subject: str, *, session: str = "", issued_before: float, expire_at: float) -> None:
        if expire_at <= self._clock():
            return
        if session:
            self._sessions[session] = max(expire_at, self._sessions.get(session, 0.0))
        else:
            before, until = self._subjects.get(subject, (0.0, 0.0))
            self._subjects[subject] = (max(before, issued_before), max(until, expire_at))
        self._prune()

    def is_revoked(self, subject: str, session: str, issued_at: float) -> bool:
        now = self._clock()
        entry = self._subjects.get(subject)
        if entry is not None and issued_at < entry[0] and now < entry[1]:
            return True
        until = self._sessions.get(session) if session else None
        return until is not None and now < until

    def apply(self, event: event_pb2.Event) -> None:
        revoked = unpack_payload(event, events_pb2.TokensRevoked)
        self.deny(
            revoked.principal,
            session=revoked.session,
            issued_before=revoked.issued_before.ToMicroseconds() / 1e6,
            expire_at=revoked.expire_time.ToMicroseconds() / 1e6,
        )

    def _prune(self) -> None:
        now = self._clock()
        if now - self._pruned_at < _PRUNE_EVERY_SECONDS:
            return
        self._pruned_at = now
        self._subjects = {k: v for k, v in self._subjects.items() if v[1] > now}
        self._sessions = {k: v for k, v in self._sessions.items() if v > now}


async def _catch_up(nc: NATS, revocations: Revocations, since: dt.datetime) -> int:
    """Apply every revocation stored since `since` (a short-lived pull consumer); returns how many."""
    config = ConsumerConfig(
        deliver_policy=DeliverPolicy.BY_START_TIME,
        opt_start_time=since,
        ack_policy=AckPolicy.NONE,
        inactive_threshold=60.0,  # the server drops it if this process dies mid-read
        mem_storage=True,
        num_replicas=1,
    )
    sub = await nc.jetstream().pull_subscribe(REVOCATION_SUBJECT, config=config)
    applied = 0
    try:
        while True:
            try:
                messages = await sub.fetch(256, timeout=1.0)
            except nats.errors.TimeoutError:
                return applied
            for msg in messages:
                _apply(revocations, msg.data)
            applied += len(messages)
            if not messages or messages[-1].metadata.num_pending == 0:
                return applied
    finally:
        with contextlib.suppress(Exception):
            await sub.unsubscribe()


def _apply(revocations: Revocations, data: bytes) -> None:
    try:
        revocations.apply(parse_event(data))
    except Exception:
        log.exception("unreadable revocation event; skipped")


async def follow(nc: NATS, revocations: Revocations, *, poll_seconds: float = 0.5) -> None:
    """Feed `revocations` from identity's events until cancelled.

    Live events arrive on a core NATS subscription (the client restores it after a reconnect, and
    it needs no consumer state on the server, so a NATS restart cannot break it). What was
    published while this process could not hear is read back from the stream: on start, from an
    access-token lifetime ago; after each reconnect, from shortly before the connection was lost.
    """

    async def on_message(msg: Msg) -> None:
        _apply(revocations, msg.data)

    live = await nc.subscribe(REVOCATION_SUBJECT, cb=on_message)
    due: dt.datetime | None = dt.datetime.now(dt.UTC) - LOOKBACK  # a catch-up is owed from here
    heard_until = dt.datetime.now(dt.UTC)
    reconnects = nc.stats["reconnects"]
    failures = 0
    try:
        while True:
            if nc.stats["reconnects"] != reconnects:
                reconnects = nc.stats["reconnects"]
                lost = heard_until - _CATCH_UP_MARGIN
                due = lost if due is None else min(due, lost)
            if nc.is_connected:
                if due is not None:
                    try:
                        applied = await _catch_up(nc, revocations, due)
                        log.info(
                            "token revocations read back", extra={"since": due.isoformat(), "count": applied}
                        )
                        due, failures = None, 0
                    except asyncio.CancelledError:
                        raise
                    except Exception as exc:
                        # Once loud, then quiet: identity's stream may simply not exist yet.
                        level = logging.WARNING if failures == 0 else logging.DEBUG
                        log.log(
                            level, "cannot read token revocations yet; retrying", extra={"error": repr(exc)}
                        )
                        failures += 1
                if due is None:
                    heard_until = dt.datetime.now(dt.UTC)
            await asyncio.sleep(poll_seconds)
    finally:
        with contextlib.suppress(Exception):  # the connection may already be gone at shutdown
            await live.unsubscribe()


class RevocationFeed:
    """`follow()` on a NATS connection of its own, for processes that have none (the gateway)."""

    def __init__(
        self, revocations: Revocations, nats_url: str, name: str, *, ca_file: str | None = None
    ) -> None:
        self.revocations = revocations
        self.nats_url = nats_url
        self.ca_file = ca_file  # GOV_TLS_NATS_CA_FILE
        self.name = name
        self._task: asyncio.Task[None] | None = None
        self._nc: NATS | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="revocation-feed")

    async def _run(self) -> None:
        while self._nc is None:
            try:
                self._nc = await bus.connect(self.nats_url, self.name, ca_file=self.ca_file)
            except Exception as exc:
                log.warning("NATS not reachable yet; retrying", extra={"error": repr(exc)})
                await asyncio.sleep(1)
        await follow(self._nc, self.revocations)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._nc is not None and not self._nc.is_closed:
            with contextlib.suppress(Exception):
                await self._nc.close()
