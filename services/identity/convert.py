"""Rows to protobuf messages (used by the gRPC adapter and the event payloads)."""

from __future__ import annotations

from gov.identity.v1 import events_pb2
from gov.identity.v1 import identity_pb2 as pb
from govkit.auth.roles import Role
from govkit.protobuf import enum_value
from govkit.protobuf import timestamp as ts
from services.identity import models

_ROLE_TO_PB = {role: enum_value(pb.Role, f"ROLE_{role.name}") for role in Role}
_PB_TO_ROLE: dict[int, Role] = {v: k for k, v in _ROLE_TO_PB.items()}
_STATE_TO_PB = {"active": pb.USER_STATE_ACTIVE, "disabled": pb.USER_STATE_DISABLED}
_PB_TO_STATE: dict[int, str] = {v: k for k, v in _STATE_TO_PB.items()}


def role_to_pb(role: Role) -> pb.Role:
    return _ROLE_TO_PB[role]


def role_from_pb(value: int) -> Role | None:
    return _PB_TO_ROLE.get(value)


def state_from_pb(value: int) -> str | None:
    return _PB_TO_STATE.get(value)


def user(row: models.User) -> pb.User:
    return pb.User(
        name=f"users/{row.id}",
        id=row.id,
        phone=row.phone,
        username=row.username or "",
        display_name=row.display_name,
        scope=row.scope,
        state=_STATE_TO_PB[row.state],
        create_time=ts(row.create_time),
        update_time=ts(row.update_time),
    )


def user_fact(row: models.User) -> pb.User:
    """A user as events carry it: ids and facts, no contact data (the phone is left out)."""
    message = user(row)
    message.ClearField("phone")
    return message


def role_binding(row: models.RoleBinding) -> pb.RoleBinding:
    return pb.RoleBinding(
        name=f"{row.principal}/roleBindings/{row.id}",
        principal=row.principal,
        role=_ROLE_TO_PB[Role(row.role)],
        scope=row.scope,
        granted_by=row.granted_by,
        create_time=ts(row.create_time),
    )


def service_account(row: models.ServiceAccount) -> pb.ServiceAccount:
    return pb.ServiceAccount(
        name=f"serviceAccounts/{row.id}",
        client_id=row.client_id,
        display_name=row.display_name,
        disabled=row.disabled,
        create_time=ts(row.create_time),
    )


def user_summary(row: models.User) -> events_pb2.UserSummary:
    """An account as events carry it: no phone, username or display name."""
    return events_pb2.UserSummary(
        name=f"users/{row.id}",
        id=row.id,
        scope=row.scope,
        state=_STATE_TO_PB[row.state],
        create_time=ts(row.create_time),
        update_time=ts(row.update_time),
    )
