"""Service accounts for internal systems, and signing-key rotation (global admins only)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response

from gateway.params import PageSize, PageToken
from gateway.resources import (
    CreatedServiceAccount,
    NewRoleBinding,
    NewServiceAccount,
    RoleBinding,
    ServiceAccount,
    ServiceAccountPage,
    SigningKey,
    time,
)
from gateway.routes.users import create_role_binding
from gateway.upstream import CallerDep, call, upstreams
from gov.identity.v1 import identity_pb2 as pb

router = APIRouter(prefix="/api/v1", tags=["administration"])

AccountId = Annotated[str, Path(max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


@router.get("/service-accounts", response_model=ServiceAccountPage)
async def list_service_accounts(
    request: Request,
    caller: CallerDep,
    page_size: PageSize = 50,
    page_token: PageToken = "",
) -> ServiceAccountPage:
    reply = await call(
        request,
        upstreams(request).identity.ListServiceAccounts,
        pb.ListServiceAccountsRequest(page_size=page_size, page_token=page_token),
        caller,
    )
    return ServiceAccountPage(
        items=[ServiceAccount.of(a) for a in reply.service_accounts], next_page_token=reply.next_page_token
    )


@router.post(
    "/service-accounts",
    response_model=CreatedServiceAccount,
    status_code=201,
    summary="Create a service account; its secret is returned once",
)
async def create_service_account(
    request: Request, response: Response, body: NewServiceAccount, caller: CallerDep
) -> CreatedServiceAccount:
    reply = await call(
        request,
        upstreams(request).identity.CreateServiceAccount,
        pb.CreateServiceAccountRequest(service_account=pb.ServiceAccount(display_name=body.display_name)),
        caller,
    )
    account = ServiceAccount.of(reply.service_account)
    response.headers["Location"] = f"/api/v1/service-accounts/{account.id}"
    response.headers["Cache-Control"] = "no-store"
    return CreatedServiceAccount(service_account=account, client_secret=reply.client_secret)


@router.post("/service-accounts/{account_id}/role-bindings", response_model=RoleBinding, status_code=201)
async def grant_service_account_role(
    request: Request, account_id: AccountId, body: NewRoleBinding, caller: CallerDep
) -> RoleBinding:
    return await create_role_binding(request, caller, f"serviceAccounts/{account_id}", body)


@router.post(
    "/signing-keys/rotate",
    response_model=SigningKey,
    summary="Sign new tokens with a fresh key; tokens signed by the old one stay valid until they expire",
)
async def rotate_signing_key(request: Request, caller: CallerDep) -> SigningKey:
    reply = await call(
        request, upstreams(request).identity.RotateSigningKey, pb.RotateSigningKeyRequest(), caller
    )
    return SigningKey(kid=reply.kid, algorithm=reply.algorithm, create_time=time(reply.create_time))
