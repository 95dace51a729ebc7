"""Keeps role bindings in step with block staffing, from the blocks service's events.

Assigning a governor, assistant or supervisor to a block grants the matching role scoped to
that block; removing them revokes it. Driven by events (no dual write between the services);
the blocks service itself refuses a removed person at once from its own staffing records.
"""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gov.blocks.v1 import blocks_pb2, events_pb2
from gov.common.v1 import event_pb2
from gov.identity.v1 import events_pb2 as identity_events
from govkit.auth.roles import Role
from govkit.consumer import ConsumerSpec
from govkit.db import new_id, utcnow
from govkit.events import build_event, unpack_payload
from govkit.outbox import add_event
from services.identity import convert
from services.identity.models import RoleBinding, User, platform

log = logging.getLogger(__name__)

ACTOR = "system:blocks-staffing"
_ROLES = {
    blocks_pb2.STAFF_ROLE_GOVERNOR: Role.GOVERNOR,
    blocks_pb2.STAFF_ROLE_ASSISTANT: Role.ASSISTANT,
    blocks_pb2.STAFF_ROLE_SUPERVISOR: Role.SUPERVISOR,
}


async def apply(session: AsyncSession, event: event_pb2.Event) -> None:
    if event.type == "blocks.v1.staff.assigned":
        assignment, granted = unpack_payload(event, events_pb2.StaffAssigned).assignment, True
    elif event.type == "blocks.v1.staff.removed":
        assignment, granted = unpack_payload(event, events_pb2.StaffRemoved).assignment, False
    else:
        return
    role = _ROLES.get(assignment.role)
    if role is None:  # the three heads are block records only, not platform roles
        return
    user_id = assignment.user.removeprefix("users/")
    if await session.get(User, user_id) is None:
        log.warning("staffing event for an unknown user; ignored", extra={"user": assignment.user})
        return
    principal = f"users/{user_id}"
    binding = await session.scalar(
        select(RoleBinding).where(
            RoleBinding.principal == principal,
            RoleBinding.role == role.value,
            RoleBinding.scope == assignment.block,
        )
    )
    if granted and binding is None:
        binding = RoleBinding(
            id=new_id(),
            principal=principal,
            role=role.value,
            scope=assignment.block,
            granted_by=ACTOR,
            create_time=utcnow(),
        )
        session.add(binding)
        await session.flush()
        payload = identity_events.RoleGranted(role_binding=convert.role_binding(binding))
        event_type = "identity.v1.role.granted"
    elif not granted and binding is not None:
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
    durable="identity-staff-sync", stream="BLOCKS", subjects=["blocks.v1.staff.>"], handler=apply
)
