"""Loading what a caller may do: token roles plus the blocks they staff at this moment."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from govkit.auth.principal import Principal
from govkit.db import Database
from services.blocks import domain
from services.blocks.models import StaffAssignment


async def load_access(source: Database | AsyncSession, principal: Principal) -> domain.Access:
    """`source` is the caller's open session when it has one (a write transaction must not take a
    second connection from the pool), else the database."""
    # Read on every call (one indexed query): a person removed from a block loses it immediately,
    # whatever their still-valid token says.
    if not principal.user_id:
        return domain.Access(principal, {})
    if isinstance(source, AsyncSession):
        return domain.Access(principal, await _staffed(source, principal.user_id))
    async with source.sessions() as session:
        return domain.Access(principal, await _staffed(session, principal.user_id))


async def _staffed(session: AsyncSession, user_id: str) -> dict[str, set[str]]:
    staffed: dict[str, set[str]] = {}
    rows = await session.execute(
        select(StaffAssignment.block_path, StaffAssignment.role).where(StaffAssignment.user_id == user_id)
    )
    for block_path, role in rows:
        staffed.setdefault(block_path, set()).add(role)
    return staffed
