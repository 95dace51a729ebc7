"""What every demo seeder shares: calls that retry a busy service, API keys kept in a file, the
lines it prints about the demo logins, and its command-line entry point."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from gov.identity.v1 import identity_pb2 as ipb
from gov.identity.v1.identity_pb2_grpc import IdentityServiceStub

Metadata = tuple[tuple[str, str], ...]
_RETRIED = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED)


async def call(method: Callable[..., Awaitable[Any]], request: Any, md: Metadata) -> Any:
    """One call, retried a few times when the service is busy or restarting."""
    for attempt in range(6):
        try:
            return await method(request, metadata=md, timeout=30)
        except grpc.aio.AioRpcError as exc:
            if exc.code() not in _RETRIED or attempt == 5:
                raise
            retry_after = dict(exc.trailing_metadata() or ()).get("retry-after", "")
            await asyncio.sleep(float(retry_after) if str(retry_after).isdigit() else 0.5 * 2**attempt)
    raise AssertionError("unreachable")


def read_key(path: Path) -> str:
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        return ""


def write_key(path: Path, key: str) -> None:
    """Only the owner may read it: the secret is shown once and stored nowhere else."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(key + "\n")
    path.chmod(0o600)


async def service_account_key(
    identity: IdentityServiceStub, key_file: Path, display_name: str, admin_md: Metadata
) -> tuple[str, str]:
    """(the key `<client_id>:<client_secret>`, its serviceAccounts/{id}): the one kept in key_file
    while it still works, else a new service account whose key is then kept there."""
    kept = read_key(key_file)
    if kept:
        client_id, _, secret = kept.partition(":")
        try:
            tokens = await call(
                identity.IssueServiceToken,
                ipb.IssueServiceTokenRequest(client_id=client_id, client_secret=secret),
                (),
            )
            caller = await call(
                identity.GetCaller,
                ipb.GetCallerRequest(),
                (("authorization", f"Bearer {tokens.access_token}"),),
            )
            return kept, caller.principal
        except grpc.aio.AioRpcError as exc:
            if exc.code() not in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.INVALID_ARGUMENT):
                raise
    reply = await call(
        identity.CreateServiceAccount,
        ipb.CreateServiceAccountRequest(service_account=ipb.ServiceAccount(display_name=display_name)),
        admin_md,
    )
    key = f"{reply.service_account.client_id}:{reply.client_secret}"
    write_key(key_file, key)
    return key, reply.service_account.name


def login_line(role: str, phone: str, name: str, where: str) -> str:
    """One demo login as the seeders print it: the phone number to log in with, who, where."""
    return f"    {role:<14} {phone.removeprefix('+86')}  ({name}, {where})"


@dataclass(frozen=True)
class DemoAccounts:
    """Who a seeder acts as: the first admin, and the password every demo staff account gets."""

    admin_login: str
    admin_password: str
    staff_password: str

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> DemoAccounts:
        """From ADMIN_LOGIN, ADMIN_PASSWORD and DEMO_STAFF_PASSWORD (KeyError naming a missing one)."""
        return cls(env["ADMIN_LOGIN"], env["ADMIN_PASSWORD"], env["DEMO_STAFF_PASSWORD"])


def run_seeder(
    name: str,
    seed: Callable[[Mapping[str, str]], Awaitable[str]],
    errors: tuple[type[Exception], ...] = (RuntimeError,),
) -> int:
    """A seeder's `main`: what it seeded on stdout; a missing setting is 2, a failure 1 (stderr)."""
    try:
        print(asyncio.run(seed(os.environ)))
    except KeyError as missing:
        sys.stderr.write(f"{name}: set {missing.args[0]}\n")
        return 2
    except errors as exc:
        sys.stderr.write(f"{name}: {exc}\n")
        return 1
    except grpc.aio.AioRpcError as exc:
        sys.stderr.write(f"{name}: {exc.code().name}: {exc.details()}\n")
        return 1
    return 0
