"""Delivery rules (pure): backoff between attempts, when to give up, what a dedupe key is."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum


class State(StrEnum):
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    DEAD = "dead"
    HELD = "held"  # waiting for the recipient's digest
    DIGESTED = "digested"  # went out as a line of a digest


# Outside channels; the inbox is written with the event, not delivered by the worker.
OUTSIDE_CHANNELS = ("webhook", "sms", "email")
# States a staff member may send again.
RETRYABLE = frozenset({State.FAILED, State.DEAD})


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int
    base: dt.timedelta
    cap: dt.timedelta

    def delay(self, attempts: int) -> dt.timedelta:
        """Wait after the `attempts`-th failed attempt: base, 2×base, 4×base ... up to the cap."""
        factor = 2 ** min(max(attempts - 1, 0), 30)
        return min(self.cap, self.base * factor)

    def after_failure(self, attempts: int, now: dt.datetime) -> tuple[State, dt.datetime]:
        """The state and next attempt time after a failed attempt: a retry, or a dead letter."""
        if attempts >= self.max_attempts:
            return State.DEAD, now
        return State.FAILED, now + self.delay(attempts)


def dedupe_key(event_id: str, recipient: str, channel: str) -> str:
    return f"{event_id}:{recipient}:{channel}"


def mask_phone(phone: str) -> str:
    """For logs: a number's first 3 and last 4 digits (no one is identified by a log line)."""
    return phone[:-8] + "****" + phone[-4:] if len(phone) >= 8 else "****"
