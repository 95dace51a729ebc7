"""Who an audience is, and how to reach a person: read from the services that own the facts.

Every call is made as the notifications service account (govkit.auth.service_tokens), never with
anything from an event but ids. What no longer exists (a deleted household, a retired unit) is
nobody; any other failure is raised, so the event is retried rather than its audience lost.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from gov.blocks.v1 import blocks_pb2, blocks_pb2_grpc
from gov.identity.v1 import identity_pb2, identity_pb2_grpc
from gov.points.v1 import points_pb2, points_pb2_grpc
from gov.tickets.v1 import tickets_pb2, tickets_pb2_grpc
from govkit.auth.service_tokens import ServiceTokens
from govkit.errors import Unavailable
from govkit.protobuf import enum_value
from services.notifications.routing import Audience

_GONE = (grpc.StatusCode.NOT_FOUND,)
_PAGE = 200


class Directory:
    def __init__(
        self,
        tokens: ServiceTokens,
        identity: grpc.aio.Channel,
        blocks: grpc.aio.Channel,
        tickets: grpc.aio.Channel,
        points: grpc.aio.Channel,
    ) -> None:
        self.tokens = tokens
        self.identity = identity_pb2_grpc.IdentityServiceStub(identity)
        self.blocks = blocks_pb2_grpc.BlocksServiceStub(blocks)
        self.tickets = tickets_pb2_grpc.TicketsServiceStub(tickets)
        self.points = points_pb2_grpc.PointsServiceStub(points)

    async def _call(self, method: Callable[..., Awaitable[Any]], request: Any) -> Any | None:
        """One call as the service; None when the thing asked about does not exist."""
        for attempt in range(2):
            try:
                return await method(request, metadata=await self.tokens.metadata(), timeout=5)
            except grpc.aio.AioRpcError as exc:
                if exc.code() in _GONE:
                    return None
                if exc.code() == grpc.StatusCode.UNAUTHENTICATED and attempt == 0:
                    self.tokens.invalidate()  # revoked or signed with a retired key: fetch anew
                    continue
                raise Unavailable(f"directory lookup failed: {exc.code().name}") from None
        raise Unavailable("directory lookup failed: UNAUTHENTICATED")

    async def _pages(
        self, method: Callable[..., Awaitable[Any]], make: Callable[[str], Any]
    ) -> AsyncIterator[Any]:
        token = ""
        while True:
            page = await self._call(method, make(token))
            if page is None:
                return
            yield page
            token = page.next_page_token
            if not token:
                return

    async def people(self, audience: Audience) -> list[str]:
        """The accounts (`users/{id}`) an audience stands for."""
        kind, ref = audience.kind, audience.ref
        if kind == "person":
            return [ref]
        if kind == "household":
            return await self._household(ref)
        if kind == "unit":
            return [
                m.user
                async for page in self._pages(
                    self.tickets.ListUnitMembers,
                    lambda t: tickets_pb2.ListUnitMembersRequest(parent=ref, page_size=_PAGE, page_token=t),
                )
                for m in page.members
            ]
        if kind == "block_staff":
            role = blocks_pb2.StaffRole.Value(f"STAFF_ROLE_{audience.role.upper()}")
            return [
                a.user
                async for page in self._pages(
                    self.blocks.ListStaff,
                    lambda t: blocks_pb2.ListStaffRequest(node=ref, page_size=_PAGE, page_token=t),
                )
                for a in page.assignments
                if a.role == role and a.block == ref
            ]
        if kind == "node_role":
            return await self._role_holders(
                ref, enum_value(identity_pb2.Role, f"ROLE_{audience.role.upper()}")
            )
        if kind == "ranking":
            ranking = await self._call(self.points.GetRanking, points_pb2.GetRankingRequest(name=ref))
            found: list[str] = []
            for place in ranking.places if ranking is not None else ():
                found += (
                    await self._household(place.owner)
                    if place.owner.startswith("households/")
                    else [place.owner]
                )
            return found
        raise ValueError(f"unknown audience kind {kind!r}")

    async def _role_holders(self, node: str, role: identity_pb2.Role) -> list[str]:
        """Active accounts holding `role` at exactly `node` (a street's dispatcher, not a community's).

        ListUsers narrows to accounts administered at or below the node that hold the role anywhere;
        each one's bindings then say whether it holds it at the node itself."""
        candidates = [
            u.name
            async for page in self._pages(
                self.identity.ListUsers,
                lambda t: identity_pb2.ListUsersRequest(scope=node, role=role, page_size=_PAGE, page_token=t),
            )
            for u in page.users
            if u.state == identity_pb2.USER_STATE_ACTIVE
        ]
        slots = asyncio.Semaphore(8)

        async def holds(user: str) -> bool:
            async with slots:
                async for page in self._pages(
                    self.identity.ListRoleBindings,
                    lambda t: identity_pb2.ListRoleBindingsRequest(
                        parent=user, scope=node, page_size=_PAGE, page_token=t
                    ),
                ):
                    if any(b.role == role and b.scope == node for b in page.role_bindings):
                        return True
            return False

        found = await asyncio.gather(*(holds(u) for u in candidates))
        return [u for u, ok in zip(candidates, found, strict=True) if ok]

    async def _household(self, name: str) -> list[str]:
        household = await self._call(self.blocks.GetHousehold, blocks_pb2.GetHouseholdRequest(name=name))
        return [r.user for r in household.residents if r.user] if household is not None else []

    async def phone(self, user: str) -> str:
        """A person's mobile number, read from identity when the message is sent ('' if none)."""
        found = await self._call(self.identity.GetUser, identity_pb2.GetUserRequest(name=user))
        return str(found.phone) if found is not None else ""

    async def households(
        self, node: str, tag: int, page_token: str, page_size: int
    ) -> blocks_pb2.ListHouseholdsResponse | None:
        """One page of the households at or below `node` (with `tag` when set); None if the node is gone."""
        page = await self._call(
            self.blocks.ListHouseholds,
            blocks_pb2.ListHouseholdsRequest(
                node=node,
                tag=tag,  # type: ignore[arg-type]  # a stored enum value
                page_size=page_size,
                page_token=page_token,
            ),
        )
        return page
