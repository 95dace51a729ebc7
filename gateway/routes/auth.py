"""Tokens: OAuth2 password, refresh-token and client-credentials grants; logout; the caller."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response

from gateway.problems import Problem
from gateway.ratelimit import check_credential_rate, client_metadata
from gateway.resources import Me, PasswordChange, RefreshRequest, TokenResponse
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
        "Repeated failed logins from one address make further attempts from there wait, longer each "
        "time; too many requests per address or per login are refused too (429 with Retry-After)."
    ),
    responses={429: {"description": "Too many attempts; see Retry-After"}},
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
    client = client_metadata(request)
    if grant_type == "password":
        if not username or not password:
            raise Problem(400, "username and password are required", slug="invalid-request")
        _limit(request, login=username)
        reply = await call(
            request, identity.Login, pb.LoginRequest(login=username, password=password), extra_metadata=client
        )
    elif grant_type == "refresh_token":
        _limit(request)
        reply = await call(
            request,
            identity.RefreshToken,
            pb.RefreshTokenRequest(refresh_token=refresh_token),
            extra_metadata=client,
        )
    else:
        _limit(request, client_id=client_id)
        reply = await call(
            request,
            identity.IssueServiceToken,
            pb.IssueServiceTokenRequest(client_id=client_id, client_secret=client_secret),
            extra_metadata=client,
        )
    return TokenResponse.of(reply)


def _limit(request: Request, *, login: str = "", client_id: str = "") -> None:
    retry_after = check_credential_rate(request, login=login, client_id=client_id)
    if retry_after is not None:
        raise Problem(
            429,
            f"too many attempts; try again in {retry_after} seconds",
            slug="rate-limited",
            headers={"Retry-After": str(retry_after)},
        )


@router.post(
    "/auth/refresh",
    response_model=TokenResponse,
    summary="Exchange a refresh token for new tokens",
    responses={429: {"description": "Too many attempts from this address; see Retry-After"}},
)
async def refresh(request: Request, body: RefreshRequest) -> TokenResponse:
    _limit(request)
    identity = upstreams(request).identity
    reply = await call(
        request,
        identity.RefreshToken,
        pb.RefreshTokenRequest(refresh_token=body.refresh_token),
        extra_metadata=client_metadata(request),
    )
    return TokenResponse.of(reply)


@router.post(
    "/auth/logout",
    status_code=204,
    summary="End the session a refresh token belongs to; its access tokens stop working within seconds",
)
async def logout(request: Request, body: RefreshRequest) -> Response:
    await call(
        request, upstreams(request).identity.Logout, pb.LogoutRequest(refresh_token=body.refresh_token)
    )
    return Response(status_code=204)


@router.get("/me", response_model=Me, summary="The caller, with their role bindings")
async def me(request: Request, caller: CallerDep) -> Response:
    reply = await call(request, upstreams(request).identity.GetCaller, pb.GetCallerRequest(), caller)
    return Response(Me.json_of(reply), media_type="application/json")


@router.post(
    "/me/password",
    status_code=204,
    summary="Change your own password (ends all your sessions, this one included: log in again)",
)
async def change_password(request: Request, body: PasswordChange, caller: CallerDep) -> Response:
    await call(
        request,
        upstreams(request).identity.ChangePassword,
        pb.ChangePasswordRequest(current_password=body.current_password, new_password=body.new_password),
        caller,
    )
    return Response(status_code=204)
