"""Tokens: OAuth2 password, refresh-token and client-credentials grants; logout; the caller."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response

from gateway.problems import Problem
from gateway.resources import Me, PasswordChange, RefreshRequest, RoleBinding, TokenResponse, User
from gateway.upstream import CallerDep, call, upstreams
from gov.identity.v1 import identity_pb2 as pb

router = APIRouter(prefix="/api/v1", tags=["auth"])

_Field = Annotated[str, Form(max_length=200)]


@router.post(
    "/auth/token",
    response_model=TokenResponse,
    summary="Get tokens (OAuth2 token endpoint)",
    description=(
        "`grant_type=password` with `username` (phone number or username) and `password` — the flow "
        "Swagger UI's Authorize button uses; `grant_type=refresh_token` with `refresh_token`; "
        "`grant_type=client_credentials` with `client_id` and `client_secret` for service accounts. "
        "Repeated failed logins lock the login for a while (429 with Retry-After)."
    ),
)
async def token(
    request: Request,
    grant_type: Annotated[str, Form(pattern="^(password|refresh_token|client_credentials)$")] = "password",
    username: _Field = "",
    password: Annotated[str, Form(max_length=128)] = "",
    refresh_token: _Field = "",
    client_id: _Field = "",
    client_secret: _Field = "",
) -> TokenResponse:
    identity = upstreams(request).identity
    if grant_type == "password":
        if not username or not password:
            raise Problem(400, "username and password are required", slug="invalid-request")
        reply = await call(request, identity.Login, pb.LoginRequest(login=username, password=password))
    elif grant_type == "refresh_token":
        reply = await call(
            request, identity.RefreshToken, pb.RefreshTokenRequest(refresh_token=refresh_token)
        )
    else:
        reply = await call(
            request,
            identity.IssueServiceToken,
            pb.IssueServiceTokenRequest(client_id=client_id, client_secret=client_secret),
        )
    return TokenResponse.of(reply)


@router.post("/auth/refresh", response_model=TokenResponse, summary="Exchange a refresh token for new tokens")
async def refresh(request: Request, body: RefreshRequest) -> TokenResponse:
    identity = upstreams(request).identity
    reply = await call(
        request, identity.RefreshToken, pb.RefreshTokenRequest(refresh_token=body.refresh_token)
    )
    return TokenResponse.of(reply)


@router.post("/auth/logout", status_code=204, summary="Revoke the session a refresh token belongs to")
async def logout(request: Request, body: RefreshRequest) -> Response:
    await call(
        request, upstreams(request).identity.Logout, pb.LogoutRequest(refresh_token=body.refresh_token)
    )
    return Response(status_code=204)


@router.get("/me", response_model=Me, summary="The caller, with their role bindings")
async def me(request: Request, caller: CallerDep) -> Me:
    reply = await call(request, upstreams(request).identity.GetCaller, pb.GetCallerRequest(), caller)
    return Me(
        principal=reply.principal,
        user=User.of(reply.user) if reply.HasField("user") else None,
        role_bindings=[RoleBinding.of(b) for b in reply.role_bindings],
    )


@router.post("/me/password", status_code=204, summary="Change your own password (ends your other sessions)")
async def change_password(request: Request, body: PasswordChange, caller: CallerDep) -> Response:
    await call(
        request,
        upstreams(request).identity.ChangePassword,
        pb.ChangePasswordRequest(current_password=body.current_password, new_password=body.new_password),
        caller,
    )
    return Response(status_code=204)
