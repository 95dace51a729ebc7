"""Identity follows the region tree's node moves (`blocks.v1.node.changed` with a new parent).

Role bindings and accounts are scoped by path. When blocks moves a node, every binding scoped at
or below it moves with it, so its staff keep their access and the old path grants nothing (a node
created there later inherits no one); accounts administered under it move too, and so do the
staffing records staff_sync keeps. Moves apply in blocks' order, each once (govkit.treemoves).

A moved binding is announced as revoked at its old scope and granted at its new one, so whatever
acts on revocations (tokens still carrying the old scope) treats the old path as gone.
"""

from __future__ import annotations

from google.protobuf.message import Message
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gov.identity.v1 import events_pb2
from govkit import treemoves
from govkit.db import utcnow
from govkit.events import build_event
from govkit.outbox import add_event
from govkit.sqlpaths import within
from services.identity import convert
from services.identity.models import MOVES, RoleBinding, StaffAssignment, User, platform


async def _announce(
    session: AsyncSession, actor: str, event_type: str, payload: Message, resource: str
) -> None:
    await add_event(
        session, platform.outbox, build_event(event_type, payload, actor=actor, resource=resource)
    )


async def relocate(session: AsyncSession, move: treemoves.Move, actor: str) -> None:
    previous, new = move.previous, move.path
    bindings = (await session.scalars(select(RoleBinding).where(within(RoleBinding.scope, previous)))).all()
    for binding in bindings:
        resource = f"{binding.principal}/roleBindings/{binding.id}"
        await _announce(
            session,
            actor,
            "identity.v1.role.revoked",
            events_pb2.RoleRevoked(role_binding=convert.role_binding(binding)),
            resource,
        )
        target = treemoves.moved(binding.scope, previous, new)
        twin = await session.scalar(
            select(RoleBinding.id).where(
                RoleBinding.principal == binding.principal,
                RoleBinding.role == binding.role,
                RoleBinding.scope == target,
            )
        )
        if twin is not None:  # the same role was already granted at the new path: keep that one
            await session.delete(binding)
            continue
        binding.scope = target
        await _announce(
            session,
            actor,
            "identity.v1.role.granted",
            events_pb2.RoleGranted(role_binding=convert.role_binding(binding)),
            resource,
        )
    now = utcnow()
    users = (await session.scalars(select(User).where(within(User.scope, previous)))).all()
    for user in users:
        user.scope, user.update_time = treemoves.moved(user.scope, previous, new), now
        await _announce(
            session,
            actor,
            "identity.v1.user.updated",
            events_pb2.UserUpdated(user=convert.user_summary(user), changed_fields=["scope"]),
            f"users/{user.id}",
        )
    await session.flush()
    await treemoves.rewrite(session, StaffAssignment.scope, previous, new)


SPEC = treemoves.follow_moves("identity-node-moves", MOVES, relocate)
