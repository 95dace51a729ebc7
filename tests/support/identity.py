"""A test-side client for the identity service: log in, make users with roles, call with tokens."""

from __future__ import annotations

import asyncio
import datetime as dt
import random

import grpc
import nats
import nats.errors
from nats.js.api import ConsumerConfig, DeliverPolicy

from gov.common.v1 import event_pb2
from gov.identity.v1 import identity_pb2 as pb
from gov.identity.v1 import identity_pb2_grpc
from govkit.events import parse_event

ADMIN_LOGIN = "admin"
ADMIN_PASSWORD = "admin-test-password"
PASSWORD = "correct-horse-battery"


def random_phone() -> str:
    return f"139{random.randrange(10**8):08d}"


def md(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


def role(name: str) -> int:
    return pb.Role.Value(f"ROLE_{name.upper()}")


class IdentityClient:
    def __init__(self, addr: str) -> None:
        self.addr = addr
        self.channel = grpc.aio.insecure_channel(addr)
        self.stub = identity_pb2_grpc.IdentityServiceStub(self.channel)
        self.admin_token = ""

    async def start(self) -> IdentityClient:
        self.admin_token = (await self.login(ADMIN_LOGIN, ADMIN_PASSWORD)).access_token
        return self

    async def close(self) -> None:
        await self.channel.close()

    async def login(self, login: str, password: str) -> pb.TokenPair:
        return await self.stub.Login(pb.LoginRequest(login=login, password=password))

    async def make_user(
        self, scope: str, roles: list[tuple[str, str]] = (), *, by: str | None = None, name: str = "测试用户"
    ) -> tuple[pb.User, str, str]:
        """Create a user (as admin unless `by`), grant roles, log in. Returns (user, phone, access token)."""
        phone = random_phone()
        user = await self.stub.CreateUser(
            pb.CreateUserRequest(
                user=pb.User(phone=phone, display_name=name, scope=scope), password=PASSWORD
            ),
            metadata=md(by or self.admin_token),
        )
        for role_name, role_scope in roles:
            await self.stub.CreateRoleBinding(
                pb.CreateRoleBindingRequest(
                    parent=user.name, role_binding=pb.RoleBinding(role=role(role_name), scope=role_scope)
                ),
                metadata=md(self.admin_token),
            )
        token = (await self.login(phone, PASSWORD)).access_token
        return user, phone, token

    async def make_service_account(self, display_name: str) -> pb.CreateServiceAccountResponse:
        """A new service account (as admin): the account and its client secret, shown this once."""
        return await self.stub.CreateServiceAccount(
            pb.CreateServiceAccountRequest(service_account=pb.ServiceAccount(display_name=display_name)),
            metadata=md(self.admin_token),
        )

    async def service_token(self, created: pb.CreateServiceAccountResponse) -> str:
        """An access token of the service account, by its client credentials."""
        pair = await self.stub.IssueServiceToken(
            pb.IssueServiceTokenRequest(
                client_id=created.service_account.client_id, client_secret=created.client_secret
            )
        )
        return pair.access_token


def client_credentials(created: pb.CreateServiceAccountResponse) -> str:
    """The service account's `client_id:client_secret`, as the Open311 API takes it."""
    return f"{created.service_account.client_id}:{created.client_secret}"


def from_address(address: str) -> tuple[tuple[str, str], ...]:
    """Metadata with which the gateway tells identity whose login attempt it forwards."""
    return (("x-client-address", address),)


async def find_event(nats_url: str, subject: str, resource: str, since: dt.datetime) -> event_pb2.Event:
    """The first event on `subject` about `resource` published since `since` (waits up to 10 s)."""
    nc = await nats.connect(nats_url)
    try:
        config = ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_TIME, opt_start_time=since)
        sub = await nc.jetstream().subscribe(subject, ordered_consumer=True, config=config)
        async with asyncio.timeout(10):
            while True:
                try:
                    msg = await sub.next_msg(timeout=1)
                except nats.errors.TimeoutError:
                    continue
                event = parse_event(msg.data)
                if event.resource == resource:
                    return event
    finally:
        await nc.close()
