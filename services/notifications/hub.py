"""In-process fan-out of new inbox items to the streams watching them (WatchInbox, later SSE).

Items are published after the transaction that wrote them commits, to the queues of their
recipient's open streams only: a stream costs a queue, not a database query per item or per tick.
A stream too slow to keep up is ended (overflow) and its client resumes from its last sequence,
which reads what it missed from the database once.

One process's hub hears the items its own consumers write; replicas that share streams need the
items relayed between them (not done yet: run one replica, or pin a person's streams to one).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field

from services.notifications.models import InboxItem


class Overflow(Exception):
    """The stream fell too far behind; the client resumes from the last sequence it received."""


@dataclass(eq=False)
class Subscription:
    recipient: str
    hub: InboxHub
    queue: asyncio.Queue[InboxItem] = field(default_factory=lambda: asyncio.Queue(maxsize=256))
    overflowed: bool = False

    async def get(self, wait: float) -> InboxItem | None:
        """The next item, or None after `wait` seconds without one."""
        if self.overflowed and self.queue.empty():
            raise Overflow("stream fell behind; resume from the last sequence received")
        try:
            return await asyncio.wait_for(self.queue.get(), wait)
        except TimeoutError:
            return None

    def close(self) -> None:
        self.hub._remove(self)


class InboxHub:
    def __init__(self) -> None:
        self._subs: dict[str, set[Subscription]] = {}

    def subscribe(self, recipient: str) -> Subscription:
        sub = Subscription(recipient, self)
        self._subs.setdefault(recipient, set()).add(sub)
        return sub

    def _remove(self, sub: Subscription) -> None:
        subs = self._subs.get(sub.recipient)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._subs[sub.recipient]

    def publish(self, items: Iterable[InboxItem]) -> None:
        for item in items:
            for sub in self._subs.get(item.recipient, ()):
                try:
                    sub.queue.put_nowait(item)
                except asyncio.QueueFull:
                    sub.overflowed = True

    @property
    def streams(self) -> int:
        return sum(len(s) for s in self._subs.values())
