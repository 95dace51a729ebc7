"""Delivery records for staff and operators: listing (dead letters among them) and sending again."""

from __future__ import annotations

import builtins
from collections.abc import Callable

from sqlalchemy import select, update

from govkit import keyset, pagination
from govkit.auth.principal import Principal
from govkit.auth.roles import Permission
from govkit.auth.scopes import GLOBAL, validate_path
from govkit.db import Database, utcnow
from govkit.errors import FailedPrecondition, InvalidArgument, NotFound
from govkit.sqlpaths import within
from services.notifications.domain import RETRYABLE, State
from services.notifications.models import Delivery


def _scope_of(row: Delivery) -> str:
    # Events without a place (identity's, points') are seen by global operators only.
    return row.node or GLOBAL


class Deliveries:
    def __init__(self, db: Database, wake_worker: Callable[[], None]) -> None:
        self.db = db
        self.wake_worker = wake_worker

    async def list(
        self,
        principal: Principal,
        *,
        node: str,
        recipient: str,
        channel: str,
        state: str,
        page_size: int,
        page_token: str,
    ) -> tuple[builtins.list[Delivery], str]:
        validate_path(node, field="node")
        principal.require(Permission.NOTIFICATIONS_MANAGE, node)
        size = pagination.page_size(page_size)
        fp = pagination.fingerprint("deliveries", node, recipient, channel, state)
        cursor = keyset.time_id_cursor(page_token, fp, id_key="id")
        query = select(Delivery)
        query = query.where(within(Delivery.node, node))
        if recipient:
            query = query.where(Delivery.recipient == recipient)
        if channel:
            query = query.where(Delivery.channel == channel)
        if state:
            query = query.where(Delivery.state == state)
        return await keyset.newest_first(
            self.db, query, Delivery.create_time, Delivery.id, cursor, size, fp, id_key="id"
        )

    async def retry(self, principal: Principal, name: str) -> Delivery:
        delivery_id = name.removeprefix("deliveries/")
        if not name.startswith("deliveries/") or not delivery_id or "/" in delivery_id:
            raise InvalidArgument("must be deliveries/{id}", field="name")
        async with self.db.transaction() as session:
            row = await session.get(Delivery, delivery_id)
            if row is None:
                raise NotFound(f"{name} not found")
            principal.require(Permission.NOTIFICATIONS_MANAGE, _scope_of(row))
            if row.state not in RETRYABLE:
                raise FailedPrecondition(f"a {row.state} delivery is not sent again")
            now = utcnow()
            await session.execute(
                update(Delivery)
                .where(Delivery.id == delivery_id, Delivery.state.in_([s.value for s in RETRYABLE]))
                .values(
                    state=State.QUEUED.value,
                    attempts=0,
                    next_attempt_time=now,
                    last_error="",
                    update_time=now,
                )
            )
            await session.refresh(row)
        self.wake_worker()
        return row
