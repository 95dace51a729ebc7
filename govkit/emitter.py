"""A flow's events about its own resources, staged in its service's outbox in the caller's name."""

from __future__ import annotations

from google.protobuf.message import Message
from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncSession

from govkit import outbox
from govkit.auth.principal import Principal


def actor_of(principal: Principal | None) -> str:
    """Who an event says did it: the caller, or the service itself ("system") without one."""
    return principal.subject if principal else "system"


class Emitter:
    """`await emit(session, principal, "blocks.v1.node.created", payload, "nodes/yuhu")`."""

    def __init__(self, outbox_table: Table) -> None:
        self.outbox_table = outbox_table

    async def __call__(
        self,
        session: AsyncSession,
        principal: Principal | None,
        event_type: str,
        payload: Message,
        resource: str,
    ) -> None:
        await outbox.emit(session, self.outbox_table, actor_of(principal), event_type, payload, resource)
