"""Targeted notices (broadcasts): create, read with progress and read counts, list, cancel, receipts.

Who may send: `notifications.send` over the node (leaders, dispatchers, admins), or the governor
or an assistant of the block itself, read live from blocks' staffing records (govkit.blockstaff).
Reading a notice and its receipts takes the same right over the notice's node. The fan-out itself
is services/notifications/fanout.py.
"""

from __future__ import annotations

import builtins
import re
from collections.abc import Callable

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from gov.blocks.v1 import blocks_pb2, blocks_pb2_grpc
from gov.notifications.v1 import events_pb2
from gov.notifications.v1 import notifications_pb2 as pb
from govkit import blockstaff, keyset, pagination, validation
from govkit.auth.principal import Principal
from govkit.auth.roles import Permission
from govkit.auth.scopes import GLOBAL, validate_path
from govkit.db import Database, new_id, rowcount, utcnow
from govkit.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from govkit.events import build_event
from govkit.idempotency import Command, IdempotencyKeys
from govkit.outbox import add_event
from govkit.protobuf import timestamp
from govkit.sqlpaths import within
from services.notifications.models import InboxItem, NoticeRow, platform

_CATEGORY = re.compile(r"^[a-z0-9_-]{1,40}$")
SENDING, COMPLETED, CANCELLED = "sending", "completed", "cancelled"
STATES = {
    SENDING: pb.NOTICE_STATE_SENDING,
    COMPLETED: pb.NOTICE_STATE_COMPLETED,
    CANCELLED: pb.NOTICE_STATE_CANCELLED,
}
# Block staff who may tell their own block's residents.
SENDING_STAFF = frozenset({"governor", "assistant"})


def notice_id(name: str) -> str:
    return validation.resource_id(name, "notices")


def to_pb(row: NoticeRow, read_count: int = 0) -> pb.Notice:
    return pb.Notice(
        name=f"notices/{row.id}",
        node=row.node,
        title=row.title,
        body=row.body,
        urgent=row.urgent,
        category=row.category,
        household_tag=row.household_tag,  # type: ignore[arg-type]  # stored enum value
        state=STATES[row.state],
        sender=row.sender,
        recipients_written=row.recipients_written,
        recipients_total=row.recipients_total,
        households_done=row.households_done,
        read_count=read_count,
        create_time=timestamp(row.create_time),
        complete_time=timestamp(row.complete_time),
    )


def completed_event(row: NoticeRow) -> events_pb2.NoticeCompleted:
    return events_pb2.NoticeCompleted(
        notice=f"notices/{row.id}", node=row.node, state=STATES[row.state], recipients=row.recipients_written
    )


async def emit_completed(session: AsyncSession, row: NoticeRow, actor: str) -> None:
    await add_event(
        session,
        platform.outbox,
        build_event(
            "notifications.v1.notice.completed",
            completed_event(row),
            actor=actor,
            resource=f"notices/{row.id}",
        ),
    )


class Notices:
    def __init__(
        self,
        db: Database,
        blocks: blocks_pb2_grpc.BlocksServiceStub | None,
        wake_fanout: Callable[[], None],
    ) -> None:
        self.db = db
        self.blocks = blocks
        self.wake_fanout = wake_fanout
        self.keys = IdempotencyKeys(db, platform.idempotency)

    async def _require(self, principal: Principal, node: str) -> None:
        if principal.can(Permission.NOTIFICATIONS_SEND, node):
            return
        if node != GLOBAL and await blockstaff.staff_roles(self.blocks, principal, node) & SENDING_STAFF:
            return
        raise PermissionDenied(f"{Permission.NOTIFICATIONS_SEND} is not granted to the caller for '{node}'")

    async def create(self, principal: Principal, request: pb.CreateNoticeRequest) -> pb.Notice:
        """A retry with the same request_id answers what the first call did and sends nothing again."""
        if not principal.is_user:
            raise PermissionDenied("notices are sent by people")
        command = Command.of("CreateNotice", principal.subject, request)
        if (earlier := await self.keys.recall(command, pb.Notice)) is not None:
            return earlier
        n = request.notice
        node = validate_path(n.node, field="notice.node", allow_global=False)
        title = validation.text(n.title, "notice.title", max_len=200)
        body = validation.text(n.body, "notice.body", max_len=4000, multiline=True)
        category = n.category.strip() or "general"
        if not _CATEGORY.match(category):
            raise InvalidArgument(
                "lowercase letters, digits, '_' or '-' (at most 40)", field="notice.category"
            )
        if n.household_tag not in blocks_pb2.VulnerabilityTag.values():
            raise InvalidArgument("is not a household tag", field="notice.household_tag")
        await self._require(principal, node)
        now = utcnow()
        row = NoticeRow(
            id=new_id(),
            node=node,
            title=title,
            body=body,
            urgent=n.urgent,
            category=category,
            household_tag=int(n.household_tag),
            sender=principal.subject,
            state=SENDING,
            cursor="",
            households_done=0,
            recipients_written=0,
            recipients_total=0,
            create_time=now,
            update_time=now,
            complete_time=None,
        )
        async with self.db.transaction() as session:
            if (earlier := await self.keys.claim(session, command, pb.Notice)) is not None:
                return earlier
            session.add(row)
            await session.flush()
            made = to_pb(row)
            await add_event(
                session,
                platform.outbox,
                build_event(
                    "notifications.v1.notice.sent",
                    events_pb2.NoticeSent(
                        notice=made.name, node=node, sender=principal.subject, urgent=row.urgent
                    ),
                    actor=principal.subject,
                    resource=made.name,
                ),
            )
            await self.keys.record(session, command, made, made.name)
        self.wake_fanout()
        return made

    async def _load(self, principal: Principal, name: str) -> NoticeRow:
        nid = notice_id(name)
        async with self.db.sessions() as session:
            row = await session.get(NoticeRow, nid)
        if row is None:
            raise NotFound(f"{name} not found")
        await self._require(principal, row.node)
        return row

    async def get(self, principal: Principal, name: str) -> pb.Notice:
        row = await self._load(principal, name)
        async with self.db.sessions() as session:
            read = await session.scalar(
                select(func.count()).where(InboxItem.event_id == row.id, InboxItem.read_time.is_not(None))
            )
        return to_pb(row, int(read or 0))

    async def list(
        self, principal: Principal, node: str, *, page_size: int, page_token: str
    ) -> tuple[builtins.list[NoticeRow], str]:
        validate_path(node, field="node")
        await self._require(principal, node)
        size = pagination.page_size(page_size)
        fp = pagination.fingerprint("notices", node)
        cursor = keyset.time_id_cursor(page_token, fp, id_key="id")
        query = select(NoticeRow)
        query = query.where(within(NoticeRow.node, node))
        return await keyset.newest_first(
            self.db, query, NoticeRow.create_time, NoticeRow.id, cursor, size, fp, id_key="id"
        )

    async def cancel(self, principal: Principal, name: str) -> pb.Notice:
        row = await self._load(principal, name)
        async with self.db.transaction() as session:
            now = utcnow()
            # The fan-out's batches update the row only while it is sending, so once this commits
            # no further batch can.
            changed = await session.execute(
                update(NoticeRow)
                .where(NoticeRow.id == row.id, NoticeRow.state == SENDING)
                .values(
                    state=CANCELLED,
                    recipients_total=NoticeRow.recipients_written,
                    complete_time=now,
                    update_time=now,
                )
            )
            if rowcount(changed) != 1:
                raise FailedPrecondition(f"the notice is {row.state} already")
            fresh = await session.get(NoticeRow, row.id, populate_existing=True)
            assert fresh is not None
            await emit_completed(session, fresh, principal.subject)
            return to_pb(fresh)

    async def recipients(
        self, principal: Principal, name: str, read_filter: int, *, page_size: int, page_token: str
    ) -> tuple[builtins.list[InboxItem], str]:
        if read_filter not in pb.ReadFilter.values():
            raise InvalidArgument("is not a read filter", field="filter")
        row = await self._load(principal, name)
        size = pagination.page_size(page_size)
        fp = pagination.fingerprint("notice-recipients", row.id, read_filter)
        cursor = pagination.decode_token(page_token, fp, r=str)
        query = select(InboxItem).where(InboxItem.event_id == row.id)
        if read_filter == pb.READ_FILTER_READ:
            query = query.where(InboxItem.read_time.is_not(None))
        elif read_filter == pb.READ_FILTER_UNREAD:
            query = query.where(InboxItem.read_time.is_(None))
        if cursor is not None:
            query = query.where(InboxItem.recipient > cursor["r"])
        async with self.db.sessions() as session:
            rows = list((await session.scalars(query.order_by(InboxItem.recipient).limit(size + 1))).all())
        return pagination.cut(rows, size, fp, lambda r: {"r": r.recipient})
