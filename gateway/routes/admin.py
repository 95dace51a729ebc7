"""Service accounts for internal systems, and signing-key rotation (global admins only)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response

from gateway.resources import (
    CreatedServiceAccount,
    NewRoleBinding,
    NewServiceAccount,
    RoleBinding,
    ServiceAccount,
    ServiceAccountPage,
    SigningKey,
)
from gateway.rest.resource import Resource
from gateway.rest.routes import Endpoints
from gateway.routes.users import identity
from gateway.upstream import CallerDep, call
from gov.identity.v1 import identity_pb2 as pb

router = APIRouter(prefix="/api/v1", tags=["administration"])

AccountId = Annotated[str, Path(max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]

api = Endpoints(router, identity, messages=pb)
accounts = Resource(
    api,
    "/service-accounts",
    pb.ServiceAccount,
    ("account_id", AccountId),
    view=ServiceAccount,
    page=ServiceAccountPage,
)
accounts.list("List Service Accounts")


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
        identity(request).CreateServiceAccount,
        pb.CreateServiceAccountRequest(service_account=pb.ServiceAccount(display_name=body.display_name)),
        caller,
    )
    account = ServiceAccount.of(reply.service_account)
    response.headers["Location"] = f"/api/v1/service-accounts/{account.id}"
    response.headers["Cache-Control"] = "no-store"
    return CreatedServiceAccount(service_account=account, client_secret=reply.client_secret)


bindings = Resource(
    api, "/role-bindings", pb.RoleBinding, ("binding_id", AccountId), view=RoleBinding, parent=accounts
)
bindings.create(
    "Grant Service Account Role", body=NewRoleBinding, name="grant_service_account_role", location=None
)
api.post(
    "/signing-keys/rotate",
    "rotate_signing_key",
    rpc="RotateSigningKey",
    view=SigningKey,
    summary="Sign new tokens with a fresh key; tokens signed by the old one stay valid until they expire",
)
