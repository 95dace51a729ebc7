"""Users and their scoped role bindings."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from google.protobuf import field_mask_pb2

from gateway.params import IdempotencyKey, PageSize, PageToken, free_text
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
    role_to_pb,
    state_to_pb,
)
from gateway.upstream import Caller, CallerDep, call, upstreams
from gov.identity.v1 import identity_pb2 as pb

router = APIRouter(prefix="/api/v1", tags=["users"])


async def create_role_binding(
    request: Request, caller: Caller, parent: str, body: NewRoleBinding
) -> RoleBinding:
    """Grant `body`'s role to `parent` (users/{id} or serviceAccounts/{id})."""
    reply = await call(
        request,
        upstreams(request).identity.CreateRoleBinding,
        pb.CreateRoleBindingRequest(
            parent=parent, role_binding=pb.RoleBinding(role=role_to_pb(body.role), scope=body.scope)
        ),
        caller,
    )
    return RoleBinding.of(reply)


UserId = Annotated[str, Path(max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


@router.get("/users", response_model=UserPage, summary="List the users your scope covers")
async def list_users(
    request: Request,
    caller: CallerDep,
    scope: Annotated[str, Query(max_length=300, description="Only users at this node or below")] = "",
    state: UserStateName | None = None,
    role: RoleName | None = None,
    q: Annotated[str, free_text("q", max_length=64, description="Substring of phone, username or name")] = "",
    page_size: PageSize = 50,
    page_token: PageToken = "",
) -> UserPage:
    reply = await call(
        request,
        upstreams(request).identity.ListUsers,
        pb.ListUsersRequest(
            scope=scope,
            state=state_to_pb(state) if state else None,
            role=role_to_pb(role) if role else None,
            query=q,
            page_size=page_size,
            page_token=page_token,
        ),
        caller,
    )
    return UserPage(items=[User.of(u) for u in reply.users], next_page_token=reply.next_page_token)


@router.post("/users", response_model=User, status_code=201, summary="Create a user")
async def create_user(
    request: Request,
    response: Response,
    body: NewUser,
    caller: CallerDep,
    idempotency_key: IdempotencyKey = None,
) -> User:
    reply = await call(
        request,
        upstreams(request).identity.CreateUser,
        pb.CreateUserRequest(
            user=pb.User(
                phone=body.phone,
                username=body.username or "",
                display_name=body.display_name,
                scope=body.scope,
            ),
            password=body.password,
            request_id=idempotency_key or "",
        ),
        caller,
    )
    response.headers["Location"] = f"/api/v1/users/{reply.id}"
    return User.of(reply)


@router.get("/users/{user_id}", response_model=User, summary="Get a user")
async def get_user(request: Request, user_id: UserId, caller: CallerDep) -> User:
    reply = await call(
        request, upstreams(request).identity.GetUser, pb.GetUserRequest(name=f"users/{user_id}"), caller
    )
    return User.of(reply)


@router.patch("/users/{user_id}", response_model=User, summary="Update a user (fields present are changed)")
async def update_user(request: Request, user_id: UserId, body: UserPatch, caller: CallerDep) -> User:
    fields = body.model_dump(exclude_unset=True)
    if not fields:
        raise Problem(400, "name at least one field to change", slug="invalid-argument")
    if any(v is None for k, v in fields.items() if k != "username"):
        raise Problem(400, "only username may be set to null", slug="invalid-argument")
    values: dict[str, Any] = {k: (v or "") for k, v in fields.items()}
    user = pb.User(name=f"users/{user_id}", **values)
    reply = await call(
        request,
        upstreams(request).identity.UpdateUser,
        pb.UpdateUserRequest(user=user, update_mask=field_mask_pb2.FieldMask(paths=sorted(fields))),
        caller,
    )
    return User.of(reply)


@router.post(
    "/users/{user_id}/disable",
    response_model=User,
    summary="Disable an account and end its sessions (its tokens stop working within seconds)",
)
async def disable_user(request: Request, user_id: UserId, caller: CallerDep) -> User:
    reply = await call(
        request,
        upstreams(request).identity.DisableUser,
        pb.DisableUserRequest(name=f"users/{user_id}"),
        caller,
    )
    return User.of(reply)


@router.post("/users/{user_id}/enable", response_model=User, summary="Enable an account")
async def enable_user(request: Request, user_id: UserId, caller: CallerDep) -> User:
    reply = await call(
        request, upstreams(request).identity.EnableUser, pb.EnableUserRequest(name=f"users/{user_id}"), caller
    )
    return User.of(reply)


@router.post("/users/{user_id}/password", status_code=204, summary="Set a new password for a user you manage")
async def reset_password(
    request: Request, user_id: UserId, body: PasswordReset, caller: CallerDep
) -> Response:
    await call(
        request,
        upstreams(request).identity.ResetPassword,
        pb.ResetPasswordRequest(name=f"users/{user_id}", new_password=body.new_password),
        caller,
    )
    return Response(status_code=204)


@router.get("/users/{user_id}/role-bindings", response_model=RoleBindingPage, tags=["role bindings"])
async def list_user_bindings(
    request: Request,
    user_id: UserId,
    caller: CallerDep,
    page_size: PageSize = 50,
    page_token: PageToken = "",
) -> RoleBindingPage:
    reply = await call(
        request,
        upstreams(request).identity.ListRoleBindings,
        pb.ListRoleBindingsRequest(parent=f"users/{user_id}", page_size=page_size, page_token=page_token),
        caller,
    )
    return RoleBindingPage(
        items=[RoleBinding.of(b) for b in reply.role_bindings], next_page_token=reply.next_page_token
    )


@router.post(
    "/users/{user_id}/role-bindings",
    response_model=RoleBinding,
    status_code=201,
    tags=["role bindings"],
    summary="Grant a role at a node of the region tree",
    description=(
        "Allowed as the delegation table says: an admin grants any role (only a global admin grants "
        "admin), a leader grants dispatcher, unit_staff and resident, a dispatcher grants unit_staff "
        "and resident, each at their own node or below. Block staff roles follow the blocks "
        "service's staffing (`/api/v1/nodes/{node}/staff`). Anything else is 403."
    ),
)
async def grant_role(
    request: Request,
    response: Response,
    user_id: UserId,
    body: NewRoleBinding,
    caller: CallerDep,
) -> RoleBinding:
    binding = await create_role_binding(request, caller, f"users/{user_id}", body)
    response.headers["Location"] = f"/api/v1/users/{user_id}/role-bindings/{binding.id}"
    return binding


@router.delete(
    "/users/{user_id}/role-bindings/{binding_id}",
    status_code=204,
    tags=["role bindings"],
    summary="Revoke a role",
)
async def revoke_role(request: Request, user_id: UserId, binding_id: UserId, caller: CallerDep) -> Response:
    await call(
        request,
        upstreams(request).identity.DeleteRoleBinding,
        pb.DeleteRoleBindingRequest(name=f"users/{user_id}/roleBindings/{binding_id}"),
        caller,
    )
    return Response(status_code=204)


@router.get(
    "/role-bindings",
    response_model=RoleBindingPage,
    tags=["role bindings"],
    summary="List every role binding your scope covers",
)
async def list_bindings(
    request: Request,
    caller: CallerDep,
    scope: Annotated[str, Query(max_length=300)] = "",
    page_size: PageSize = 50,
    page_token: PageToken = "",
) -> RoleBindingPage:
    reply = await call(
        request,
        upstreams(request).identity.ListRoleBindings,
        pb.ListRoleBindingsRequest(scope=scope, page_size=page_size, page_token=page_token),
        caller,
    )
    return RoleBindingPage(
        items=[RoleBinding.of(b) for b in reply.role_bindings], next_page_token=reply.next_page_token
    )
