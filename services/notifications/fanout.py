"""The fan-out of targeted notices: resolve the audience page by page and write inbox items.

One page of blocks' household listing per transaction: the page's residents' inbox items, the
notice's progress and the cursor to the next page commit together. A service killed mid-way
resumes at the cursor when it starts again (no gap), and the inbox items' unique (event,
recipient) index keeps anyone from being told twice (no duplicate; a resident of two households is
told once): the page's items go in as a few multi-row `INSERT ... ON CONFLICT DO NOTHING
RETURNING` statements (Core; SQLAlchemy's insertmanyvalues), so a row the index refuses is simply
not returned and not counted.

The listing is read outside the transaction, so no transaction waits on another service; the next
page is fetched from blocks while this one is written (its token is known once this page is
read), and the task sleeps between pages so the service's other work goes on during a large
notice.

The batch's first statement is the conditional update of the notice row (while it is `sending`
and at the cursor this batch started from): a cancel, or another replica that got there first,
makes it change nothing, and the batch is rolled back.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from gov.blocks.v1 import blocks_pb2
from govkit.db import Database, new_id, rowcount, utcnow
from services.notifications.directory import Directory
from services.notifications.hub import InboxHub
from services.notifications.models import InboxItem, NoticeRow
from services.notifications.notices import COMPLETED, SENDING, emit_completed

log = logging.getLogger(__name__)

KIND = "notice"
_ITEMS = InboxItem.__table__
# Rows per INSERT statement: powers of two only. Every distinct row count is another SQL text,
# compiled, cached and prepared by the driver; pages of any size made each page's statement new and
# the caches grew the process by ~70 MiB over a 170,000-resident notice. With these, nine shapes.
_CHUNK_SIZES = tuple(2**k for k in range(8, -1, -1))  # 256, 128, ..., 1


def _chunks(rows: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """`rows` cut into pieces whose lengths are powers of two, largest first."""
    out, i = [], 0
    for size in _CHUNK_SIZES:
        while len(rows) - i >= size:
            out.append(rows[i : i + size])
            i += size
    return out


@dataclass(frozen=True)
class FanOutSettings:
    page_size: int  # households per batch (blocks lists at most 200 a page)
    pause: float  # seconds between batches: what the service's other work gets
    interval: float  # how often to look for notices when not woken
    link_base: str


@dataclass(frozen=True)
class _Page:
    households: int
    users: list[str]  # linked residents' accounts, each once, in listing order
    next_cursor: str  # '' on the last page


class _Lost(Exception):
    """The notice was cancelled or advanced by someone else: this batch must not commit."""


class NoticeFanOut:
    def __init__(self, db: Database, directory: Directory, hub: InboxHub, settings: FanOutSettings) -> None:
        self.db = db
        self.directory = directory
        self.hub = hub
        self.settings = settings
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        """Until cancelled: every notice still sending (also those a previous process left)."""
        while True:
            self._wake.clear()
            try:
                await self.drain()
            except asyncio.CancelledError:
                raise
            except Exception:
                # A lookup failed (blocks down): the cursor is where the last batch left it.
                log.exception("notice fan-out failed; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.settings.interval)

    async def drain(self) -> None:
        async with self.db.sessions() as session:
            ids = list(
                (
                    await session.scalars(
                        select(NoticeRow.id).where(NoticeRow.state == SENDING).order_by(NoticeRow.create_time)
                    )
                ).all()
            )
        for nid in ids:
            await self.send(nid)

    async def send(self, nid: str) -> None:
        """The rest of one notice, from its stored cursor, page by page."""
        async with self.db.sessions() as session:
            notice = await session.get(NoticeRow, nid)
        if notice is None or notice.state != SENDING:
            return
        cursor = notice.cursor
        fetching = asyncio.ensure_future(self._page(notice, cursor))
        try:
            while True:
                page = await fetching
                if page.next_cursor:
                    # Read the next page from blocks while this one is written.
                    fetching = asyncio.ensure_future(self._page(notice, page.next_cursor))
                if not await self._write(notice, cursor, page) or not page.next_cursor:
                    return
                cursor = page.next_cursor
                # A pause between batches, not a poll: the service's other work gets the loop.
                await asyncio.sleep(self.settings.pause)
        finally:
            if not fetching.done():
                fetching.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await fetching

    async def _page(self, notice: NoticeRow, cursor: str) -> _Page:
        listed = await self.directory.households(
            notice.node, notice.household_tag, cursor, self.settings.page_size
        )
        households: list[blocks_pb2.Household] = list(listed.households) if listed is not None else []
        users = list(
            dict.fromkeys(r.user for h in households for r in h.residents if r.user.startswith("users/"))
        )
        return _Page(len(households), users, listed.next_page_token if listed is not None else "")

    async def _write(self, notice: NoticeRow, cursor: str, page: _Page) -> bool:
        """One page in one transaction; False if the notice was cancelled or advanced meanwhile."""
        nid = notice.id
        try:
            async with self.db.transaction() as session:
                now = utcnow()
                done = not page.next_cursor
                claimed = await session.execute(
                    update(NoticeRow)
                    .where(NoticeRow.id == nid, NoticeRow.state == SENDING, NoticeRow.cursor == cursor)
                    .values(cursor=page.next_cursor, update_time=now)
                )
                if rowcount(claimed) != 1:
                    raise _Lost
                written, items = await self._insert(session, notice, page.users, now)
                values: dict[str, object] = {
                    "households_done": NoticeRow.households_done + page.households,
                    "recipients_written": NoticeRow.recipients_written + written,
                }
                if done:
                    values.update(
                        state=COMPLETED,
                        recipients_total=NoticeRow.recipients_written + written,
                        complete_time=now,
                    )
                await session.execute(update(NoticeRow).where(NoticeRow.id == nid).values(**values))
                if done:
                    fresh = await session.get(NoticeRow, nid, populate_existing=True)
                    assert fresh is not None
                    await emit_completed(session, fresh, notice.sender)
        except _Lost:
            return False
        self.hub.publish(items)
        return True

    async def _insert(
        self, session: AsyncSession, notice: NoticeRow, users: list[str], now: dt.datetime
    ) -> tuple[int, list[InboxItem]]:
        """The page's items in multi-row inserts; those of people told already are skipped. How
        many were written, and the items for the hub (none when no stream is open)."""
        if not users:
            return 0, []
        link = f"{self.settings.link_base.rstrip('/')}/notices/{notice.id}"[:500]
        common: dict[str, Any] = {
            "event_id": notice.id,
            "kind": KIND,
            "title": notice.title,
            "body": notice.body,
            "link": link,
            "resource": f"notices/{notice.id}",
            "node": notice.node,
            "urgent": notice.urgent,
            "create_time": now,
            "read_time": None,
        }
        rows = [{"id": new_id(), "recipient": user, **common} for user in users]
        dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
        statement = (
            dialect.insert(_ITEMS)
            .on_conflict_do_nothing(index_elements=["event_id", "recipient"])
            .returning(_ITEMS.c.seq, _ITEMS.c.id, _ITEMS.c.recipient)
        )
        inserted: list[Any] = []
        for chunk in _chunks(rows):
            inserted += (await session.execute(statement, chunk)).all()
        if not self.hub.streams:
            # Nobody watches an inbox in this process: no objects to hand over, only the count.
            # (Building an ORM object per item was half of this path's CPU in a profile; with
            # streams open it is paid for every item, since the hub only says how many it has.)
            return len(inserted), []
        # What the hub hands to open streams (only the rows the index let in).
        return len(inserted), [
            InboxItem(seq=seq, id=item_id, recipient=recipient, **common)
            for seq, item_id, recipient in inserted
        ]
