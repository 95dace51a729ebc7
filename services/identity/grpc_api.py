"""Thin gRPC adapter: requests in, flows called, messages out. No business rules here."""

from __future__ import annotations

import json

from google.protobuf import empty_pb2

from gov.identity.v1 import identity_pb2 as pb
from gov.identity.v1 import identity_pb2_grpc
from govkit.auth.logins import CLIENT_ADDRESS_KEY, address_key
from govkit.auth.principal import current_principal
from govkit.errors import InvalidArgument
from govkit.grpc_server import ServicerContext
from govkit.idempotency import Command
from govkit.validation import resource_id
from services.identity import convert
from services.identity.flows import IdentityFlows, Tokens

SERVICE = "gov.identity.v1.IdentityService"
PUBLIC_METHODS = tuple(
    f"/{SERVICE}/{m}" for m in ("Login", "RefreshToken", "Logout", "IssueServiceToken", "GetJwks")
)


def _token_pair(tokens: Tokens) -> pb.TokenPair:
    return pb.TokenPair(
        access_token=tokens.access_token,
        token_type="Bearer",  # noqa: S106 - a token type, not a secret
        expires_in=tokens.expires_in,
        refresh_token=tokens.refresh_token,
        refresh_expire_time=convert.ts(tokens.refresh_expire_time),
    )


def client_address(context: ServicerContext) -> str:
    """Who is logging in: the address the gateway forwards, else the gRPC peer's.

    Advisory only: it chooses which failure counter an attempt goes to, never whether a password
    is checked, so identity's port must be reachable only from inside the platform.
    """
    for key, value in context.invocation_metadata() or ():
        if key == CLIENT_ADDRESS_KEY and isinstance(value, str) and address_key(value):
            return value
    peer = context.peer() or ""  # "ipv4:10.0.0.5:51234", "ipv6:[::1]:51234", "unix:..."
    kind, _, rest = peer.partition(":")
    if kind == "ipv4":
        return rest.rpartition(":")[0]
    if kind == "ipv6":
        return rest.rpartition(":")[0].strip("[]")
    return ""


def _user_id(name: str) -> str:
    return resource_id(name, "users")


class IdentityServicer(identity_pb2_grpc.IdentityServiceServicer):
    def __init__(self, flows: IdentityFlows) -> None:
        self.flows = flows

    async def Login(self, request: pb.LoginRequest, context: ServicerContext) -> pb.TokenPair:
        client = client_address(context)
        return _token_pair(await self.flows.tokens.login(request.login, request.password, client))

    async def RefreshToken(self, request: pb.RefreshTokenRequest, context: ServicerContext) -> pb.TokenPair:
        return _token_pair(await self.flows.tokens.refresh(request.refresh_token))

    async def Logout(self, request: pb.LogoutRequest, context: ServicerContext) -> empty_pb2.Empty:
        await self.flows.tokens.logout(request.refresh_token)
        return empty_pb2.Empty()

    async def IssueServiceToken(
        self, request: pb.IssueServiceTokenRequest, context: ServicerContext
    ) -> pb.TokenPair:
        return _token_pair(await self.flows.tokens.service_token(request.client_id, request.client_secret))

    async def GetJwks(self, request: pb.GetJwksRequest, context: ServicerContext) -> pb.Jwks:
        return pb.Jwks(json=json.dumps(self.flows.keys.jwks()))

    async def GetCaller(self, request: pb.GetCallerRequest, context: ServicerContext) -> pb.Caller:
        principal = current_principal()
        user, bindings = await self.flows.users.caller(principal)
        return pb.Caller(
            principal=principal.subject,
            user=convert.user(user) if user else None,
            role_bindings=[convert.role_binding(b) for b in bindings],
        )

    async def CreateUser(self, request: pb.CreateUserRequest, context: ServicerContext) -> pb.User:
        u = request.user
        principal = current_principal()
        return await self.flows.users.create_user(
            principal,
            phone=u.phone,
            username=u.username,
            display_name=u.display_name,
            scope=u.scope,
            password=request.password,
            command=Command.of("CreateUser", principal.subject, request),
        )

    async def GetUser(self, request: pb.GetUserRequest, context: ServicerContext) -> pb.User:
        return convert.user(await self.flows.users.get_user(current_principal(), _user_id(request.name)))

    async def ListUsers(self, request: pb.ListUsersRequest, context: ServicerContext) -> pb.ListUsersResponse:
        rows, token = await self.flows.users.list_users(
            current_principal(),
            page_size=request.page_size,
            page_token=request.page_token,
            scope=request.scope,
            state=request.state,
            role=request.role,
            query=request.query,
        )
        return pb.ListUsersResponse(users=[convert.user(r) for r in rows], next_page_token=token)

    async def UpdateUser(self, request: pb.UpdateUserRequest, context: ServicerContext) -> pb.User:
        paths = list(request.update_mask.paths)
        if not paths:
            raise InvalidArgument("is required (e.g. 'display_name')", field="update_mask")
        changes = {}
        for path in paths:
            if path not in ("display_name", "username", "scope", "phone"):
                raise InvalidArgument(f"'{path}' cannot be updated", field="update_mask")
            changes[path] = getattr(request.user, path)
        row = await self.flows.users.update_user(current_principal(), _user_id(request.user.name), changes)
        return convert.user(row)

    async def DisableUser(self, request: pb.DisableUserRequest, context: ServicerContext) -> pb.User:
        return convert.user(
            await self.flows.users.set_disabled(current_principal(), _user_id(request.name), True)
        )

    async def EnableUser(self, request: pb.EnableUserRequest, context: ServicerContext) -> pb.User:
        return convert.user(
            await self.flows.users.set_disabled(current_principal(), _user_id(request.name), False)
        )

    async def ChangePassword(
        self, request: pb.ChangePasswordRequest, context: ServicerContext
    ) -> empty_pb2.Empty:
        await self.flows.users.change_password(
            current_principal(), request.current_password, request.new_password
        )
        return empty_pb2.Empty()

    async def ResetPassword(
        self, request: pb.ResetPasswordRequest, context: ServicerContext
    ) -> empty_pb2.Empty:
        await self.flows.users.reset_password(
            current_principal(), _user_id(request.name), request.new_password
        )
        return empty_pb2.Empty()

    async def CreateRoleBinding(
        self, request: pb.CreateRoleBindingRequest, context: ServicerContext
    ) -> pb.RoleBinding:
        row = await self.flows.role_bindings.grant(
            current_principal(), request.parent, request.role_binding.role, request.role_binding.scope
        )
        return convert.role_binding(row)

    async def ListRoleBindings(
        self, request: pb.ListRoleBindingsRequest, context: ServicerContext
    ) -> pb.ListRoleBindingsResponse:
        rows, token = await self.flows.role_bindings.list_bindings(
            current_principal(),
            parent=request.parent,
            scope=request.scope,
            page_size=request.page_size,
            page_token=request.page_token,
        )
        return pb.ListRoleBindingsResponse(
            role_bindings=[convert.role_binding(r) for r in rows], next_page_token=token
        )

    async def DeleteRoleBinding(
        self, request: pb.DeleteRoleBindingRequest, context: ServicerContext
    ) -> empty_pb2.Empty:
        # `users/{uid}/roleBindings/{id}`, `serviceAccounts/{sid}/roleBindings/{id}` or the bare id.
        owner, _, binding_id = request.name.rpartition("/roleBindings/")
        binding_id = binding_id or request.name
        if not binding_id or "/" in binding_id or len(binding_id) > 64:
            raise InvalidArgument("must name a role binding", field="name")
        await self.flows.role_bindings.revoke(current_principal(), binding_id, owner or None)
        return empty_pb2.Empty()

    async def CreateServiceAccount(
        self, request: pb.CreateServiceAccountRequest, context: ServicerContext
    ) -> pb.CreateServiceAccountResponse:
        account, secret = await self.flows.service_accounts.create_service_account(
            current_principal(), request.service_account.display_name
        )
        return pb.CreateServiceAccountResponse(
            service_account=convert.service_account(account), client_secret=secret
        )

    async def ListServiceAccounts(
        self, request: pb.ListServiceAccountsRequest, context: ServicerContext
    ) -> pb.ListServiceAccountsResponse:
        rows, token = await self.flows.service_accounts.list_service_accounts(
            current_principal(), page_size=request.page_size, page_token=request.page_token
        )
        return pb.ListServiceAccountsResponse(
            service_accounts=[convert.service_account(r) for r in rows], next_page_token=token
        )

    async def RotateSigningKey(
        self, request: pb.RotateSigningKeyRequest, context: ServicerContext
    ) -> pb.SigningKey:
        key = await self.flows.tokens.rotate_signing_key(current_principal())
        return pb.SigningKey(kid=key.kid, algorithm="ES256", create_time=convert.ts(key.create_time))
