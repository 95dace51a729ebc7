"""Digests: held deliveries go out as one message per person and channel at their digest time.

One transaction per (person, channel) finds the held rows now due, queues one digest delivery
listing them, and marks them `digested` with that delivery's id; a row is claimed only while it is
still `held` with no digest, so a crash before the commit leaves them held (sent next time) and
after it leaves them digested: never in two digests, never lost, also across a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select, update

from govkit.db import Database, new_id, rowcount, utcnow
from services.notifications.domain import State
from services.notifications.models import Delivery

log = logging.getLogger(__name__)

KIND = "digest"
MAX_LINES = 200  # items in one digest; more go in the next


def digest_text(rows: list[Delivery]) -> tuple[str, str]:
    """Subject and body of a digest: one line per held item, oldest first."""
    subject = f"消息汇总：{len(rows)}条"
    lines = [
        f"{i}. {r.subject or r.body[:60]}" + (f" {r.link}" if r.link else "") for i, r in enumerate(rows, 1)
    ]
    return subject, "\n".join(lines)


@dataclass(eq=False)
class DigestRunner:
    db: Database
    wake_worker: Callable[[], None]
    interval: float
    clock: Callable[[], dt.datetime] = utcnow

    async def run(self) -> None:
        while True:
            try:
                if await self.release():
                    self.wake_worker()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("digest release failed; retrying")
            await asyncio.sleep(self.interval)

    async def release(self) -> int:
        """Digests queued for every (person, channel) with held items due now."""
        now = self.clock()
        async with self.db.sessions() as session:
            due = (
                await session.execute(
                    select(Delivery.recipient, Delivery.channel)
                    .where(Delivery.state == State.HELD.value, Delivery.next_attempt_time <= now)
                    .distinct()
                )
            ).all()
        made = 0
        for recipient, channel in due:
            with contextlib.suppress(_Raced):
                made += await self._one(recipient, channel, now)
        return made

    async def _one(self, recipient: str, channel: str, now: dt.datetime) -> int:
        async with self.db.transaction() as session:
            rows = list(
                (
                    await session.scalars(
                        select(Delivery)
                        .where(
                            Delivery.recipient == recipient,
                            Delivery.channel == channel,
                            Delivery.state == State.HELD.value,
                            Delivery.next_attempt_time <= now,
                        )
                        .order_by(Delivery.create_time, Delivery.id)
                        .limit(MAX_LINES)
                    )
                ).all()
            )
            if not rows:
                return 0
            digest_id = new_id()
            claimed = await session.execute(
                update(Delivery)
                .where(
                    Delivery.id.in_([r.id for r in rows]),
                    Delivery.state == State.HELD.value,
                    Delivery.digest_id.is_(None),
                )
                .values(state=State.DIGESTED.value, digest_id=digest_id, update_time=now)
                .execution_options(synchronize_session=False)
            )
            if rowcount(claimed) != len(rows):
                # Another replica took some of them meanwhile: roll back and let the next round decide.
                raise _Raced
            subject, body = digest_text(rows)
            session.add(
                Delivery.untried(
                    id=digest_id,
                    event_id=digest_id,
                    recipient=recipient,
                    channel=channel,
                    kind=KIND,
                    node=rows[0].node if len({r.node for r in rows}) == 1 else "",
                    subject=subject[:200],
                    body=body,
                    link="",
                    state=State.QUEUED.value,
                    due=now,
                    now=now,
                )
            )
        return 1


class _Raced(Exception):
    pass
