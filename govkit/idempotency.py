"""Client request ids for retried mutating calls: the same id returns the first result."""

from __future__ import annotations

from sqlalchemy import Table, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from govkit.db import utcnow


async def recall(session: AsyncSession, table: Table, scope: str, request_id: str) -> str | None:
    if not request_id:
        return None
    return await session.scalar(
        select(table.c.resource).where(table.c.scope == scope, table.c.request_id == request_id)
    )


async def remember(session: AsyncSession, table: Table, scope: str, request_id: str, resource: str) -> None:
    """Recorded in the same transaction as the resource, so a crash can't keep one without the other."""
    if request_id:
        await session.execute(
            insert(table).values(scope=scope, request_id=request_id, resource=resource, created_at=utcnow())
        )
