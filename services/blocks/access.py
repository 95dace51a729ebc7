"""Loading what a caller may do: token roles plus the blocks they staff at this moment."""

from __future__ import annotations

from sqlalchemy import select

from govkit.auth.principal import Principal
from govkit.db import Database
from services.blocks import domain
from services.blocks.models import StaffAssignment


async def load_access(db: Database, principal: Principal) -> domain.Access:
    # Read on every call (one indexed query): a person removed from a block loses it immediately,
    # whatever their still-valid token says.
    staffed: dict[str, set[str]] = {}
    if principal.user_id:
        async with db.sessions() as session:
            rows = await session.execute(
                select(StaffAssignment.block_path, StaffAssignment.role).where(
                    StaffAssignment.user_id == principal.user_id
                )
            )
            for block_path, role in rows:
                staffed.setdefault(block_path, set()).add(role)
    return domain.Access(principal, staffed)
