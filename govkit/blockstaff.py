"""Block staff rights read live from the blocks service, for services other than blocks.

Block staff (governor, assistants, supervisor) get their rights from blocks' staffing records,
not from token roles: asked on every call that needs them, so a person removed from a block is
refused on their very next call, whatever their still-valid token says.
"""

from __future__ import annotations

import grpc

from gov.blocks.v1 import blocks_pb2, blocks_pb2_grpc
from govkit.auth.principal import Principal
from govkit.errors import Unavailable
from govkit.peers import on_behalf_of


async def staff_roles(
    blocks: blocks_pb2_grpc.BlocksServiceStub | None, principal: Principal, block: str
) -> frozenset[str]:
    """The staff roles (`governor`, `assistant`, `supervisor`, ...) the caller holds at `block` now.

    Asked as the caller: blocks lets staff read their own block, so a caller who is not (or no
    longer) staff there gets nothing back, and holds no role.
    """
    if blocks is None:
        raise Unavailable("the blocks service is not configured")
    if not principal.is_user:
        return frozenset()
    try:
        reply = await blocks.ListStaff(
            blocks_pb2.ListStaffRequest(node=block, user=principal.subject, page_size=50),
            metadata=on_behalf_of(principal),
            timeout=5,
        )
    except grpc.aio.AioRpcError as exc:
        if exc.code() in (
            grpc.StatusCode.PERMISSION_DENIED,
            grpc.StatusCode.NOT_FOUND,
            grpc.StatusCode.INVALID_ARGUMENT,
        ):
            return frozenset()
        raise Unavailable(f"blocks service: {exc.code().name}") from None
    return frozenset(
        blocks_pb2.StaffRole.Name(a.role).removeprefix("STAFF_ROLE_").lower()
        for a in reply.assignments
        if a.block == block
    )
