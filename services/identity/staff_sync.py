"""Keeps role bindings in step with block staffing, from the blocks service's events.

Assigning a governor, assistant or supervisor to a block grants the matching role scoped to
that block; removing them revokes it. Driven by events (no dual write between the services);
the blocks service itself refuses a removed person at once from its own staffing records.

Order-safe: a failed `assigned` is redelivered after later events, so the outcome must not depend
on which event came last. Identity records every assignment it hears of by blocks' assignment id
(unique: assigning the same person again is a new assignment), active or removed, and derives the
binding from those records:

- `removed` marks its assignment removed, even one whose `assigned` has not arrived yet;
- `assigned` of an assignment already recorded, active or removed, changes nothing;
- the binding exists while at least one active assignment asks for it.

Paths in an event are as of the tree it was written in: they are brought forward through the node
moves applied here since, and an event from a newer tree waits for them (govkit.treemoves).
"""

from __future__ import annotations

import logging

from google.protobuf.message import Message
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gov.blocks.v1 import blocks_pb2, events_pb2
from gov.common.v1 import event_pb2
from gov.identity.v1 import events_pb2 as identity_events
from govkit import treemoves
from govkit.auth.roles import Role
from govkit.consumer import ConsumerSpec
from govkit.db import new_id, utcnow
from govkit.events import build_event, unpack_payload
from govkit.outbox import add_event
from services.identity import convert
from services.identity.models import MOVES, RoleBinding, StaffAssignment, User, platform

log = logging.getLogger(__name__)

ACTOR = "system:blocks-staffing"
_ROLES = {
    blocks_pb2.STAFF_ROLE_GOVERNOR: Role.GOVERNOR,
    blocks_pb2.STAFF_ROLE_ASSISTANT: Role.ASSISTANT,
    blocks_pb2.STAFF_ROLE_SUPERVISOR: Role.SUPERVISOR,
}


async def apply(session: AsyncSession, event: event_pb2.Event) -> None:
    if event.type == "blocks.v1.staff.assigned":
        message: events_pb2.StaffAssigned | events_pb2.StaffRemoved = unpack_payload(
            event, events_pb2.StaffAssigned
        )
        active = True
    elif event.type == "blocks.v1.staff.removed":
        message, active = unpack_payload(event, events_pb2.StaffRemoved), False
    else:
        return
    assignment = message.assignment
    role = _ROLES.get(assignment.role)
    if role is None:  # the three heads are block records only, not platform roles
        return
    user_id = assignment.user.removeprefix("users/")
    if await session.get(User, user_id) is None:
        log.warning("staffing event for an unknown user; ignored", extra={"user": assignment.user})
        return
    await treemoves.lock(session)
    async with treemoves.conflicts_retried(session):
        await _record(session, message.tree_version, assignment, role, user_id, active)


async def _record(
    session: AsyncSession,
    tree_version: int,
    assignment: blocks_pb2.StaffAssignment,
    role: Role,
    user_id: str,
    active: bool,
) -> None:
    block = await MOVES.forward(session, assignment.block, tree_version)
    assignment_id = assignment.name.rpartition("/staff/")[2]
    principal = f"users/{user_id}"
    record = await session.get(StaffAssignment, assignment_id)
    if record is None:
        record = StaffAssignment(
            id=assignment_id,
            principal=principal,
            role=role.value,
            scope=block,
            active=active,
            update_time=utcnow(),
        )
        session.add(record)
    elif active or not record.active:
        return  # assigned after it was removed (a late redelivery), or heard twice: nothing new
    else:
        record.active, record.update_time = False, utcnow()
    await session.flush()
    await _reconcile(session, principal, role, record.scope)


async def _reconcile(session: AsyncSession, principal: str, role: Role, scope: str) -> None:
    """Grant or revoke the staffing binding so it exists exactly while an active assignment wants it."""
    wanted = await session.scalar(
        select(StaffAssignment.id)
        .where(
            StaffAssignment.principal == principal,
            StaffAssignment.role == role.value,
            StaffAssignment.scope == scope,
            StaffAssignment.active.is_(True),
        )
        .limit(1)
    )
    binding = await session.scalar(
        select(RoleBinding).where(
            RoleBinding.principal == principal, RoleBinding.role == role.value, RoleBinding.scope == scope
        )
    )
    payload: Message
    if wanted and binding is None:
        binding = RoleBinding(
            id=new_id(),
            principal=principal,
            role=role.value,
            scope=scope,
            granted_by=ACTOR,
            create_time=utcnow(),
        )
        session.add(binding)
        await session.flush()
        payload = identity_events.RoleGranted(role_binding=convert.role_binding(binding))
        event_type = "identity.v1.role.granted"
    elif not wanted and binding is not None:
        # Also one an administrator granted by hand: removal from the block ends the role there.
        await session.delete(binding)
        payload = identity_events.RoleRevoked(role_binding=convert.role_binding(binding))
        event_type = "identity.v1.role.revoked"
    else:
        return
    await add_event(
        session,
        platform.outbox,
        build_event(event_type, payload, actor=ACTOR, resource=f"{principal}/roleBindings/{binding.id}"),
    )


SPEC = ConsumerSpec(
    durable="identity-staff-sync",
    stream="BLOCKS",
    subjects=["blocks.v1.staff.>"],
    handler=apply,
    # An event may wait for a node move that is itself being retried (govkit.treemoves).
    max_deliver=treemoves.MOVE_MAX_DELIVER,
)
