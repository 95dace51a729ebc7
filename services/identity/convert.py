"""Rows to protobuf messages (used by the gRPC adapter and the event payloads)."""

from __future__ import annotations

from gov.identity.v1 import events_pb2
from gov.identity.v1 import identity_pb2 as pb
from govkit.auth.roles import Role
from govkit.protobuf import enum_value, timestamp
from govkit.rowmap import RowMap, fmt
from services.identity import models

ts = timestamp  # the flows and the servicer call convert.ts
_ROLE_TO_PB = {role: enum_value(pb.Role, f"ROLE_{role.name}") for role in Role}
_PB_TO_ROLE: dict[int, Role] = {v: k for k, v in _ROLE_TO_PB.items()}
_PB_TO_STATE: dict[int, str] = {pb.USER_STATE_ACTIVE: "active", pb.USER_STATE_DISABLED: "disabled"}


def role_to_pb(role: Role) -> pb.Role:
    return _ROLE_TO_PB[role]


def role_from_pb(value: int) -> Role | None:
    return _PB_TO_ROLE.get(value)


def state_from_pb(value: int) -> str | None:
    return _PB_TO_STATE.get(value)


user = RowMap(pb.User, models.User, name=fmt("users/{id}"))
# A user as events carry it: ids and facts, no contact data (the phone is left out).
user_fact = RowMap(pb.User, models.User, name=fmt("users/{id}"), phone=None)
role_binding = RowMap(pb.RoleBinding, models.RoleBinding, name=fmt("{principal}/roleBindings/{id}"))
service_account = RowMap(pb.ServiceAccount, models.ServiceAccount, name=fmt("serviceAccounts/{id}"))
# An account as events carry it: no phone, username or display name.
user_summary = RowMap(events_pb2.UserSummary, models.User, name=fmt("users/{id}"))
