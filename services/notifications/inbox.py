"""A person's own inbox: list, unread count, mark read, watch. Nobody reads another's items."""

from __future__ import annotations

import builtins
from collections.abc import AsyncGenerator
from dataclasses import dataclass

from sqlalchemy import func, or_, select, update

from govkit import pagination
from govkit.auth.principal import Principal
from govkit.db import Database, rowcount, utcnow
from govkit.errors import InvalidArgument, PermissionDenied
from services.notifications.hub import InboxHub
from services.notifications.models import InboxItem

MAX_MARK = 500
_CATCH_UP_PAGE = 200


def owner(principal: Principal) -> str:
    if not principal.is_user:
        raise PermissionDenied("an inbox belongs to a person; service accounts have none")
    return principal.subject


@dataclass(frozen=True)
class Heartbeat:
    last_sequence: int


class Inbox:
    def __init__(self, db: Database, hub: InboxHub, heartbeat_seconds: float) -> None:
        self.db = db
        self.hub = hub
        self.heartbeat_seconds = heartbeat_seconds

    async def list(
        self, principal: Principal, *, page_size: int, page_token: str, unread_only: bool
    ) -> tuple[builtins.list[InboxItem], str]:
        me = owner(principal)
        size = pagination.page_size(page_size)
        fp = pagination.fingerprint("inbox", me, unread_only)
        cursor = pagination.decode_token(page_token, fp, seq=int)
        query = select(InboxItem).where(InboxItem.recipient == me)
        if unread_only:
            query = query.where(InboxItem.read_time.is_(None))
        if cursor is not None:
            query = query.where(InboxItem.seq < cursor["seq"])
        async with self.db.sessions() as session:
            rows = list((await session.scalars(query.order_by(InboxItem.seq.desc()).limit(size + 1))).all())
        return pagination.cut(rows, size, fp, lambda r: {"seq": r.seq})

    async def unread(self, principal: Principal) -> int:
        me = owner(principal)
        async with self.db.sessions() as session:
            count = await session.scalar(
                select(func.count()).where(InboxItem.recipient == me, InboxItem.read_time.is_(None))
            )
        return int(count or 0)

    async def mark_read(self, principal: Principal, names: builtins.list[str], up_to: int) -> tuple[int, int]:
        me = owner(principal)
        if len(names) > MAX_MARK:
            raise InvalidArgument(f"at most {MAX_MARK} items at once", field="names")
        if up_to < 0:
            raise InvalidArgument("must not be negative", field="up_to_sequence")
        prefix = f"{me}/inboxItems/"
        ids: builtins.list[str] = []
        for i, name in enumerate(names):
            # Someone else's item is refused like a missing one: it is not the caller's to name.
            if not name.startswith(prefix) or not name.removeprefix(prefix):
                raise InvalidArgument("is not an item of the caller's inbox", field=f"names[{i}]")
            ids.append(name.removeprefix(prefix))
        if not ids and not up_to:
            raise InvalidArgument("name items or give up_to_sequence", field="names")
        chosen = or_(InboxItem.id.in_(ids), InboxItem.seq <= up_to) if up_to else InboxItem.id.in_(ids)
        async with self.db.transaction() as session:
            marked = rowcount(
                await session.execute(
                    update(InboxItem)
                    .where(InboxItem.recipient == me, InboxItem.read_time.is_(None), chosen)
                    .values(read_time=utcnow())
                )
            )
        return marked, await self.unread(principal)

    async def watch(self, principal: Principal, after: int) -> AsyncGenerator[InboxItem | Heartbeat]:
        """What the caller missed after `after`, then each new item; heartbeats while idle."""
        me = owner(principal)
        if after < 0:
            raise InvalidArgument("must not be negative", field="after_sequence")
        # Subscribe before reading the backlog, so nothing written in between is lost; what both
        # deliver is dropped by sequence.
        sub = self.hub.subscribe(me)
        try:
            last = after
            if after > 0:
                while True:
                    async with self.db.sessions() as session:
                        missed = (
                            await session.scalars(
                                select(InboxItem)
                                .where(InboxItem.recipient == me, InboxItem.seq > last)
                                .order_by(InboxItem.seq)
                                .limit(_CATCH_UP_PAGE)
                            )
                        ).all()
                    for item in missed:
                        yield item
                        last = item.seq
                    if len(missed) < _CATCH_UP_PAGE:
                        break
            while True:
                new = await sub.get(self.heartbeat_seconds)
                if new is None:
                    yield Heartbeat(last)
                elif new.seq > last:
                    yield new
                    last = new.seq
        finally:
            sub.close()
