"""Where group robots (per unit or block) and a person's e-mail are reached.

A robot's URL and secret are set by staff whose `notifications.manage` covers the unit's or the
block's node; a person sets their own e-mail address only. The secret is stored (signing needs it)
and never returned.
"""

from __future__ import annotations

import builtins
import re

import grpc
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from gov.notifications.v1 import notifications_pb2 as pb
from gov.tickets.v1 import tickets_pb2
from govkit import pagination
from govkit.auth.principal import Principal
from govkit.auth.roles import Permission
from govkit.auth.scopes import validate_path
from govkit.db import Database, new_id, utcnow
from govkit.errors import AlreadyExists, InvalidArgument, NotFound, PermissionDenied, Unavailable
from govkit.idempotency import Command, IdempotencyKeys
from services.notifications import convert
from services.notifications.directory import Directory
from services.notifications.models import Endpoint, platform

_EMAIL = re.compile(r"^[^@\s]{1,64}@[A-Za-z0-9.-]{1,190}\.[A-Za-z]{2,}$")
_URL = re.compile(r"^https?://[^\s]{3,490}$")
MIN_SECRET = 16


class Endpoints:
    def __init__(self, db: Database, directory: Directory) -> None:
        self.db = db
        self.directory = directory
        self.keys = IdempotencyKeys(db, platform.idempotency)

    async def _node_of(self, principal: Principal, owner: str) -> str:
        """The node an owner's endpoints are managed at, after checking the caller may manage them."""
        if owner.startswith("users/"):
            if principal.subject != owner:
                raise PermissionDenied("a person's e-mail address is set by that person only")
            return ""
        if owner.startswith("nodes/"):
            node = validate_path(owner.removeprefix("nodes/"), field="owner", allow_global=False)
        elif owner.startswith("units/") and owner.count("/") == 1:
            try:
                unit = await self.directory.tickets.GetUnit(
                    tickets_pb2.GetUnitRequest(name=owner),
                    metadata=await self.directory.tokens.metadata(),
                    timeout=5,
                )
            except grpc.aio.AioRpcError as exc:
                if exc.code() == grpc.StatusCode.NOT_FOUND:
                    raise InvalidArgument("no such unit", field="owner") from None
                raise Unavailable(f"tickets service: {exc.code().name}") from None
            node = str(unit.node)
        else:
            raise InvalidArgument("must be units/{code}, nodes/{path} or users/{id}", field="owner")
        principal.require(Permission.NOTIFICATIONS_MANAGE, node)
        return node

    async def create(self, principal: Principal, request: pb.CreateEndpointRequest) -> pb.Endpoint:
        """A retry with the same request_id answers what the first call did (AIP-155)."""
        command = Command.of("CreateEndpoint", principal.subject, request)
        if (earlier := await self.keys.recall(command, pb.Endpoint)) is not None:
            return earlier
        e = request.endpoint
        channel = convert.channel_name(e.channel, "endpoint.channel")
        owner, address, secret = e.owner, e.address, e.secret
        if channel == "webhook":
            if owner.startswith("users/"):
                raise InvalidArgument("group robots belong to units or blocks", field="endpoint.owner")
            if not _URL.match(address):
                raise InvalidArgument("must be an http(s) URL", field="endpoint.address")
            if len(secret) < MIN_SECRET or len(secret) > 200:
                raise InvalidArgument(f"{MIN_SECRET}-200 characters", field="endpoint.secret")
        elif channel == "email":
            if not owner.startswith("users/"):
                raise InvalidArgument("e-mail addresses belong to people", field="endpoint.owner")
            if not _EMAIL.match(address):
                raise InvalidArgument("is not an e-mail address", field="endpoint.address")
            secret = ""
        else:
            raise InvalidArgument("must be WEBHOOK or EMAIL", field="endpoint.channel")
        node = await self._node_of(principal, owner)
        row = Endpoint(
            id=new_id(),
            owner=owner,
            channel=channel,
            address=address,
            secret=secret,
            node=node,
            create_time=utcnow(),
        )
        try:
            async with self.db.transaction() as session:
                if (earlier := await self.keys.claim(session, command, pb.Endpoint)) is not None:
                    return earlier
                session.add(row)
                await session.flush()
                made = convert.endpoint(row)
                await self.keys.record(session, command, made, made.name)
        except IntegrityError:
            raise AlreadyExists("this endpoint exists already") from None
        return made

    async def list(
        self, principal: Principal, owner: str, *, page_size: int, page_token: str
    ) -> tuple[builtins.list[Endpoint], str]:
        await self._node_of(principal, owner)
        size = pagination.page_size(page_size)
        fp = pagination.fingerprint("endpoints", owner)
        cursor = pagination.decode_token(page_token, fp, id=str)
        query = select(Endpoint).where(Endpoint.owner == owner)
        if cursor is not None:
            query = query.where(Endpoint.id > cursor["id"])
        async with self.db.sessions() as session:
            rows = list((await session.scalars(query.order_by(Endpoint.id).limit(size + 1))).all())
        return pagination.cut(rows, size, fp, lambda r: {"id": r.id})

    async def delete(self, principal: Principal, name: str) -> Endpoint:
        endpoint_id = name.removeprefix("endpoints/")
        async with self.db.sessions() as session:
            row = await session.get(Endpoint, endpoint_id) if name.startswith("endpoints/") else None
        if row is None:
            raise NotFound(f"{name} not found")
        await self._node_of(principal, row.owner)
        async with self.db.transaction() as session:
            found = await session.get(Endpoint, endpoint_id)
            if found is not None:
                await session.delete(found)
        return row
