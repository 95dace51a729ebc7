"""The fan-out of targeted notices: resolve the audience page by page and write inbox items.

One page of blocks' household listing per transaction: the page's residents' inbox items, the
notice's progress and the cursor to the next page commit together. A service killed mid-way
resumes at the cursor when it starts again (no gap), and the inbox items' unique (event,
recipient) index, with a look-up of who in the page has the notice already, keeps anyone from
being told twice (no duplicate; a resident of two households is told once). The listing is read
before the transaction opens, so no transaction waits on another service, and the task yields
between pages so the service's other work goes on during a large notice.

The batch's first statement is the conditional update of the notice row (while it is `sending`
and at the cursor this batch started from): a cancel, or another replica that got there first,
makes it change nothing, and the batch is rolled back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from sqlalchemy import select, update

from gov.blocks.v1 import blocks_pb2
from govkit.db import Database, new_id, rowcount, utcnow
from services.notifications.directory import Directory
from services.notifications.hub import InboxHub
from services.notifications.models import InboxItem, NoticeRow
from services.notifications.notices import COMPLETED, SENDING, emit_completed

log = logging.getLogger(__name__)

KIND = "notice"


@dataclass(frozen=True)
class FanOutSettings:
    page_size: int  # households per batch (blocks lists at most 200 a page)
    pause: float  # seconds between batches: what the service's other work gets
    interval: float  # how often to look for notices when not woken
    link_base: str


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
            more = await self.step(nid)
            while more:
                # A pause between batches, not a poll: the service's other work gets the loop.
                await asyncio.sleep(self.settings.pause)
                more = await self.step(nid)

    async def step(self, nid: str) -> bool:
        """One batch of one notice; False when it is finished (or no longer sending)."""
        async with self.db.sessions() as session:
            notice = await session.get(NoticeRow, nid)
        if notice is None or notice.state != SENDING:
            return False
        page = await self.directory.households(
            notice.node, notice.household_tag, notice.cursor, self.settings.page_size
        )
        households: list[blocks_pb2.Household] = list(page.households) if page is not None else []
        next_cursor = page.next_page_token if page is not None else ""
        users = list(
            dict.fromkeys(r.user for h in households for r in h.residents if r.user.startswith("users/"))
        )
        written: list[InboxItem] = []
        try:
            async with self.db.transaction() as session:
                now = utcnow()
                done = not next_cursor
                claimed = await session.execute(
                    update(NoticeRow)
                    .where(NoticeRow.id == nid, NoticeRow.state == SENDING, NoticeRow.cursor == notice.cursor)
                    .values(cursor=next_cursor, update_time=now)
                )
                if rowcount(claimed) != 1:
                    raise _Lost
                told = (
                    set(
                        (
                            await session.scalars(
                                select(InboxItem.recipient).where(
                                    InboxItem.event_id == nid, InboxItem.recipient.in_(users)
                                )
                            )
                        ).all()
                    )
                    if users
                    else set()
                )
                link = f"{self.settings.link_base.rstrip('/')}/notices/{nid}"
                for user in users:
                    if user in told:
                        continue
                    item = InboxItem(
                        id=new_id(),
                        recipient=user,
                        event_id=nid,
                        kind=KIND,
                        title=notice.title,
                        body=notice.body,
                        link=link[:500],
                        resource=f"notices/{nid}",
                        node=notice.node,
                        urgent=notice.urgent,
                        create_time=now,
                        read_time=None,
                    )
                    session.add(item)
                    written.append(item)
                await session.flush()
                values: dict[str, object] = {
                    "households_done": NoticeRow.households_done + len(households),
                    "recipients_written": NoticeRow.recipients_written + len(written),
                }
                if done:
                    values.update(
                        state=COMPLETED,
                        recipients_total=NoticeRow.recipients_written + len(written),
                        complete_time=now,
                    )
                await session.execute(update(NoticeRow).where(NoticeRow.id == nid).values(**values))
                if done:
                    fresh = await session.get(NoticeRow, nid, populate_existing=True)
                    assert fresh is not None
                    await emit_completed(session, fresh, notice.sender)
        except _Lost:
            return False
        self.hub.publish(written)
        return not done
