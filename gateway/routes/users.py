"""Users and their scoped role bindings.

Each route is one upstream call to the IdentityService, declared with gateway.rest (JSON shapes in
gateway.resources). Who may see or change whom is the service's decision: outside one's scope is a 403.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from google.protobuf import field_mask_pb2

from gateway.params import free_text
from gateway.problems import Problem
from gateway.resources import (
    NewRoleBinding,
    NewUser,
    PasswordReset,
    RoleBinding,
    RoleBindingPage,
    RoleName,
    User,
    UserPage,
    UserPatch,
    UserStateName,
)
from gateway.rest.resource import Resource
from gateway.rest.routes import PAGE, Endpoints, Param
from gateway.upstream import upstreams
from gov.identity.v1 import identity_pb2 as pb
from gov.identity.v1.identity_pb2_grpc import IdentityServiceStub

router = APIRouter(prefix="/api/v1", tags=["users"])

UserId = Annotated[str, Path(max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
BINDINGS = ["role bindings"]


def identity(request: Request) -> IdentityServiceStub:
    return upstreams(request).identity


api = Endpoints(router, identity, messages=pb)


# ----------------------------------------------------------------------------- users

users = Resource(api, "/users", pb.User, ("user_id", UserId), view=User, page=UserPage)
users.list(
    "List the users your scope covers",
    params={
        "scope": Param(
            Annotated[str, Query(max_length=300, description="Only users at this node or below")], ""
        ),
        "state": Param(UserStateName | None, None),
        "role": Param(RoleName | None, None),
        "q": Param(
            Annotated[str, free_text("q", max_length=64, description="Substring of phone, username or name")],
            "",
            field="query",
        ),
    },
)
users.create(
    "Create a user",
    body=NewUser,
    idempotent=True,
    message=lambda body, idempotency_key: pb.CreateUserRequest(
        user=body.to_pb(pb.User, skip={"password"}), password=body.password, request_id=idempotency_key or ""
    ),
)
users.get("Get a user")


def _update_user(user_id: str, body: UserPatch) -> pb.UpdateUserRequest:
    fields = body.model_dump(exclude_unset=True)
    if not fields:
        raise Problem(400, "name at least one field to change", slug="invalid-argument")
    if any(v is None for k, v in fields.items() if k != "username"):
        raise Problem(400, "only username may be set to null", slug="invalid-argument")
    values: dict[str, Any] = {k: (v or "") for k, v in fields.items()}
    user = pb.User(name=f"users/{user_id}", **values)
    return pb.UpdateUserRequest(user=user, update_mask=field_mask_pb2.FieldMask(paths=sorted(fields)))


users.update("Update a user (fields present are changed)", body=UserPatch, message=_update_user)
users.action(
    "POST",
    "/disable",
    "disable_user",
    "Disable an account and end its sessions (its tokens stop working within seconds)",
)
users.action("POST", "/enable", "enable_user", "Enable an account")
api.route(
    "POST",
    "/users/{user_id}/password",
    "reset_password",
    rpc="ResetPassword",
    view=None,
    status_code=204,
    summary="Set a new password for a user you manage",
    params={"user_id": UserId},
    body=PasswordReset,
    message=lambda user_id, body: body.to_pb(pb.ResetPasswordRequest, name=f"users/{user_id}"),
)


# ----------------------------------------------------------------------------- role bindings

bindings = Resource(
    api,
    "/role-bindings",
    pb.RoleBinding,
    ("binding_id", UserId),
    view=RoleBinding,
    page=RoleBindingPage,
    parent=users,
)
bindings.list("List User Bindings", name="list_user_bindings", tags=BINDINGS)
bindings.create(
    "Grant a role at a node of the region tree",
    body=NewRoleBinding,
    name="grant_role",
    tags=BINDINGS,
    description=(
        "Allowed as the delegation table says: an admin grants any role (only a global admin grants "
        "admin), a leader grants dispatcher, unit_staff and resident, a dispatcher grants unit_staff "
        "and resident, each at their own node or below. Block staff roles follow the blocks "
        "service's staffing (`/api/v1/nodes/{node}/staff`). Anything else is 403."
    ),
)
bindings.delete("Revoke a role", name="revoke_role", tags=BINDINGS)
api.get(
    "/role-bindings",
    "list_bindings",
    rpc="ListRoleBindings",
    view=RoleBindingPage,
    summary="List every role binding your scope covers",
    params={"scope": Param(Annotated[str, Query(max_length=300)], ""), **PAGE},
    tags=BINDINGS,
)
