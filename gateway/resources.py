"""JSON shapes of the identity REST resources (users, role bindings, service accounts, tokens), declared
over the protobuf messages (gateway.rest) where they show one."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints

from gateway.rest import Body, Out, ProtoEnum, View, last_segment, proto_enums
from gov.identity.v1 import identity_pb2 as pb


class RoleName(ProtoEnum, proto=pb.Role): ...


class UserStateName(ProtoEnum, proto=pb.UserState): ...


PROTO_ENUMS = proto_enums(RoleName, UserStateName)


Scope = Annotated[str, StringConstraints(max_length=300)]
Phone = Annotated[str, StringConstraints(max_length=32)]
Password = Annotated[str, StringConstraints(max_length=128)]


class User(
    View,
    message=pb.User,
    fields={
        "id": None,
        "name": "Resource name, `users/{id}`",
        "phone": "E.164, e.g. +8613812345678",
        "username": Out(nullable=True),
        "display_name": None,
        "scope": "Region-tree path the account is administered under, e.g. `yuhu/wanlou`",
        "state": Out(annotation=UserStateName),
        "create_time": None,
        "update_time": None,
    },
): ...


class RoleBinding(
    View,
    message=pb.RoleBinding,
    fields={
        "id": Out("name", convert=last_segment),
        "name": None,
        "principal": None,
        "role": Out(annotation=RoleName),
        "scope": None,
        "granted_by": None,
        "create_time": None,
    },
): ...


class Me(
    View, message=pb.Caller, fields={"principal": None, "user": Out(nullable=True), "role_bindings": None}
): ...


class UserPage(View, item=User, source="users"):
    next_page_token: str = Field("", description="Pass as `page_token` for the next page; empty on the last")


class RoleBindingPage(View, item=RoleBinding, source="role_bindings"): ...


class NewUser(Body):
    phone: Phone = Field(examples=["13812345678"])
    username: Annotated[str, StringConstraints(max_length=32)] | None = Field(None, examples=["zhang.san"])
    display_name: Annotated[str, StringConstraints(max_length=64)] = Field(examples=["张三"])
    scope: Scope = Field(examples=["yuhu/wanlou"])
    password: Password = Field(min_length=1)


class UserPatch(Body):
    """Only the fields present are changed."""

    phone: Phone | None = None
    username: Annotated[str, StringConstraints(max_length=32)] | None = None
    display_name: Annotated[str, StringConstraints(max_length=64)] | None = None
    scope: Scope | None = None


class NewRoleBinding(Body):
    role: RoleName
    scope: Scope = Field(examples=["yuhu/wanlou/taoyuan/b07"])


class PasswordChange(BaseModel):
    current_password: Password
    new_password: Password


class PasswordReset(Body):
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


class ServiceAccount(
    View,
    message=pb.ServiceAccount,
    fields={
        "id": Out("name", convert=lambda name: name.removeprefix("serviceAccounts/")),
        "name": None,
        "client_id": None,
        "display_name": None,
        "disabled": None,
        "create_time": None,
    },
): ...


class NewServiceAccount(BaseModel):
    display_name: Annotated[str, StringConstraints(max_length=64)] = Field(examples=["12345 hotline"])


class CreatedServiceAccount(BaseModel):
    service_account: ServiceAccount
    client_secret: str = Field(description="Shown once; store it now")


class ServiceAccountPage(View, item=ServiceAccount, source="service_accounts"): ...


class SigningKey(
    View, message=pb.SigningKey, fields={"kid": None, "algorithm": None, "create_time": None}
): ...
