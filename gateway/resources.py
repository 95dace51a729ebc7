"""JSON shapes of the REST API and their conversion from protobuf messages."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Annotated

from google.protobuf import timestamp_pb2
from pydantic import BaseModel, Field, StringConstraints

from gov.identity.v1 import identity_pb2 as pb
from govkit.protobuf import enum_value


class RoleName(StrEnum):
    admin = "admin"
    leader = "leader"
    dispatcher = "dispatcher"
    unit_staff = "unit_staff"
    governor = "governor"
    assistant = "assistant"
    supervisor = "supervisor"
    resident = "resident"


class UserStateName(StrEnum):
    active = "active"
    disabled = "disabled"


def role_to_pb(role: RoleName) -> pb.Role:
    return enum_value(pb.Role, f"ROLE_{role.value.upper()}")


def role_from_pb(value: int) -> RoleName:
    return RoleName(pb.Role.Name(value).removeprefix("ROLE_").lower())


def state_to_pb(state: UserStateName) -> pb.UserState:
    return enum_value(pb.UserState, f"USER_STATE_{state.value.upper()}")


def time(value: timestamp_pb2.Timestamp) -> dt.datetime | None:
    if not value.seconds and not value.nanos:
        return None
    return value.ToDatetime(tzinfo=dt.UTC)


Scope = Annotated[str, StringConstraints(max_length=300)]
Phone = Annotated[str, StringConstraints(max_length=32)]
Password = Annotated[str, StringConstraints(max_length=128)]


class User(BaseModel):
    id: str
    name: str = Field(description="Resource name, `users/{id}`")
    phone: str = Field(description="E.164, e.g. +8613812345678")
    username: str | None
    display_name: str
    scope: str = Field(description="Region-tree path the account is administered under, e.g. `yuhu/wanlou`")
    state: UserStateName
    create_time: dt.datetime | None
    update_time: dt.datetime | None

    @classmethod
    def of(cls, u: pb.User) -> User:
        return cls(
            id=u.id,
            name=u.name,
            phone=u.phone,
            username=u.username or None,
            display_name=u.display_name,
            scope=u.scope,
            state=UserStateName(pb.UserState.Name(u.state).removeprefix("USER_STATE_").lower()),
            create_time=time(u.create_time),
            update_time=time(u.update_time),
        )


class RoleBinding(BaseModel):
    id: str
    name: str
    principal: str
    role: RoleName
    scope: str
    granted_by: str
    create_time: dt.datetime | None

    @classmethod
    def of(cls, b: pb.RoleBinding) -> RoleBinding:
        return cls(
            id=b.name.rsplit("/", 1)[-1],
            name=b.name,
            principal=b.principal,
            role=role_from_pb(b.role),
            scope=b.scope,
            granted_by=b.granted_by,
            create_time=time(b.create_time),
        )


class Me(BaseModel):
    principal: str
    user: User | None
    role_bindings: list[RoleBinding]


class UserPage(BaseModel):
    items: list[User]
    next_page_token: str = Field("", description="Pass as `page_token` for the next page; empty on the last")


class RoleBindingPage(BaseModel):
    items: list[RoleBinding]
    next_page_token: str = ""


class NewUser(BaseModel):
    phone: Phone = Field(examples=["13812345678"])
    username: Annotated[str, StringConstraints(max_length=32)] | None = Field(None, examples=["zhang.san"])
    display_name: Annotated[str, StringConstraints(max_length=64)] = Field(examples=["张三"])
    scope: Scope = Field(examples=["yuhu/wanlou"])
    password: Password = Field(min_length=1)


class UserPatch(BaseModel):
    """Only the fields present are changed."""

    phone: Phone | None = None
    username: Annotated[str, StringConstraints(max_length=32)] | None = None
    display_name: Annotated[str, StringConstraints(max_length=64)] | None = None
    scope: Scope | None = None


class NewRoleBinding(BaseModel):
    role: RoleName
    scope: Scope = Field(examples=["yuhu/wanlou/taoyuan/b07"])


class PasswordChange(BaseModel):
    current_password: Password
    new_password: Password


class PasswordReset(BaseModel):
    new_password: Password


class TokenResponse(BaseModel):
    """RFC 6749 section 5.1."""

    access_token: str
    token_type: str = "Bearer"  # noqa: S105 - a token type, not a secret
    expires_in: int
    refresh_token: str | None = None

    @classmethod
    def of(cls, t: pb.TokenPair) -> TokenResponse:
        return cls(
            access_token=t.access_token,
            token_type=t.token_type,
            expires_in=t.expires_in,
            refresh_token=t.refresh_token or None,
        )


class RefreshRequest(BaseModel):
    refresh_token: Annotated[str, StringConstraints(max_length=200)]


class ServiceAccount(BaseModel):
    id: str
    name: str
    client_id: str
    display_name: str
    disabled: bool
    create_time: dt.datetime | None

    @classmethod
    def of(cls, a: pb.ServiceAccount) -> ServiceAccount:
        return cls(
            id=a.name.removeprefix("serviceAccounts/"),
            name=a.name,
            client_id=a.client_id,
            display_name=a.display_name,
            disabled=a.disabled,
            create_time=time(a.create_time),
        )


class NewServiceAccount(BaseModel):
    display_name: Annotated[str, StringConstraints(max_length=64)] = Field(examples=["12345 hotline"])


class CreatedServiceAccount(BaseModel):
    service_account: ServiceAccount
    client_secret: str = Field(description="Shown once; store it now")


class ServiceAccountPage(BaseModel):
    items: list[ServiceAccount]
    next_page_token: str = ""


class SigningKey(BaseModel):
    kid: str
    algorithm: str
    create_time: dt.datetime | None
