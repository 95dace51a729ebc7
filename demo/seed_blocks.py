"""Seed the demo street (万楼街道, Wanlou) into a running system, for `make run`.

Imports the street's files (demo/wanlou/: nodes, boundaries, buildings, households, residents)
through the blocks service's import, then creates an account for every demo staff member of
staff.csv in identity and assigns them to their blocks — all over gRPC, like any ops tool would.
Safe to run again: what exists is left as it is.

    python -m demo.seed_blocks    (GOV_IDENTITY_ADDR, GOV_BLOCKS_ADDR,
                                   ADMIN_LOGIN, ADMIN_PASSWORD, DEMO_STAFF_PASSWORD)
"""

from __future__ import annotations

import asyncio

import grpc

from demo.seeding import DemoAccounts, login_line, run_seeder
from demo.street import load_street
from gov.blocks.v1 import blocks_pb2 as pb
from gov.blocks.v1.blocks_pb2_grpc import BlocksServiceStub
from gov.identity.v1 import identity_pb2 as ipb
from gov.identity.v1.identity_pb2_grpc import IdentityServiceStub
from services.blocks import importfiles

_BLOCK_ROLES = {
    "governor": pb.STAFF_ROLE_GOVERNOR,
    "assistant": pb.STAFF_ROLE_ASSISTANT,
    "supervisor": pb.STAFF_ROLE_SUPERVISOR,
    "area_head": pb.STAFF_ROLE_AREA_HEAD,
    "group_leader": pb.STAFF_ROLE_GROUP_LEADER,
    "neighbour_head": pb.STAFF_ROLE_NEIGHBOUR_HEAD,
}
_SCOPED_ROLES = {"dispatcher": ipb.ROLE_DISPATCHER, "leader": ipb.ROLE_LEADER}


async def _user(identity: IdentityServiceStub, md, row: importfiles.StaffRow, password: str) -> str:  # type: ignore[no-untyped-def]
    """The account for a staff row, created if missing. Returns `users/{id}`."""
    try:
        user = await identity.CreateUser(
            ipb.CreateUserRequest(
                user=ipb.User(phone=row.phone, display_name=row.name, scope=row.path),
                password=password,
                request_id=f"demo-staff-{row.phone}",
            ),
            metadata=md,
        )
        return user.name
    except grpc.aio.AioRpcError as exc:
        if exc.code() != grpc.StatusCode.ALREADY_EXISTS:
            raise
    found = await identity.ListUsers(
        ipb.ListUsersRequest(query=row.phone.removeprefix("+86"), page_size=2), metadata=md
    )
    return found.users[0].name


async def _assign(identity: IdentityServiceStub, blocks: BlocksServiceStub, md, row, user: str) -> None:  # type: ignore[no-untyped-def]
    try:
        if row.role in _SCOPED_ROLES:
            await identity.CreateRoleBinding(
                ipb.CreateRoleBindingRequest(
                    parent=user, role_binding=ipb.RoleBinding(role=_SCOPED_ROLES[row.role], scope=row.path)
                ),
                metadata=md,
            )
            return
        kind = pb.AssistantKind.Value(f"ASSISTANT_KIND_{row.kind.upper()}") if row.kind else 0
        await blocks.AssignStaff(
            pb.AssignStaffRequest(
                assignment=pb.StaffAssignment(
                    block=row.path, user=user, role=_BLOCK_ROLES[row.role], assistant_kind=kind
                )
            ),
            metadata=md,
        )
    except grpc.aio.AioRpcError as exc:
        # Seeded on an earlier run; any other refusal is a real problem with the demo data.
        if exc.code() != grpc.StatusCode.ALREADY_EXISTS and "already" not in (exc.details() or ""):
            raise


async def seed(identity_addr: str, blocks_addr: str, accounts: DemoAccounts) -> str:
    files = load_street()
    async with grpc.aio.insecure_channel(identity_addr) as ich, grpc.aio.insecure_channel(blocks_addr) as bch:
        identity, blocks = IdentityServiceStub(ich), BlocksServiceStub(bch)
        token = (
            await identity.Login(
                ipb.LoginRequest(login=accounts.admin_login, password=accounts.admin_password)
            )
        ).access_token
        md = (("authorization", f"Bearer {token}"),)
        summary = []
        for kind, content in (
            (pb.IMPORT_KIND_NODES, files.nodes_csv),
            (pb.IMPORT_KIND_BOUNDARIES, files.boundaries_geojson),
            (pb.IMPORT_KIND_BUILDINGS, files.buildings_csv),
            (pb.IMPORT_KIND_HOUSEHOLDS, files.households_csv),
            (pb.IMPORT_KIND_RESIDENTS, files.residents_csv),
        ):
            reply = await blocks.ImportFile(
                pb.ImportFileRequest(kind=kind, content=content.encode()), metadata=md
            )
            summary.append(f"{pb.ImportKind.Name(kind).removeprefix('IMPORT_KIND_').lower()} {reply.rows}")
        # Staffing is kept per block; three-heads rows above block level stay in the demo file only.
        staff = [
            row
            for row in importfiles.parse_staff(files.staff_csv)
            if row.role in _SCOPED_ROLES or row.path.count("/") == 3
        ]
        # Accounts in small parallel batches: each one costs an argon2 hash.
        users: list[str] = []
        for i in range(0, len(staff), 8):
            users += await asyncio.gather(
                *(_user(identity, md, row, accounts.staff_password) for row in staff[i : i + 8])
            )
        # Governors and supervisors before the rest, one block at a time, as the 1+N+1 rule expects.
        for row, user in sorted(
            zip(staff, users, strict=True), key=lambda p: (p[0].path, p[0].role != "governor")
        ):
            await _assign(identity, blocks, md, row, user)
        samples = {}
        for row in staff:
            samples.setdefault(row.role, row)
        logins = "\n".join(
            login_line(role, row.phone, row.name, row.path)
            for role, row in samples.items()
            if role in ("leader", "dispatcher", "governor", "assistant", "supervisor")
        )
        return f"demo street yuhu/wanlou: {', '.join(summary)}; {len(staff)} staff accounts\n{logins}"


def main() -> int:
    return run_seeder(
        "demo.seed_blocks",
        lambda env: seed(
            env["GOV_IDENTITY_ADDR"],
            env["GOV_BLOCKS_ADDR"],
            DemoAccounts.from_env(env),
        ),
        errors=(),
    )


if __name__ == "__main__":
    raise SystemExit(main())
