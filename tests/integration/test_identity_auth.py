"""Authentication against the real identity service: who is calling is proven, never claimed."""

from __future__ import annotations

import asyncio
import base64
import json
import time

import grpc
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from gov.identity.v1 import identity_pb2 as pb
from tests.support.identity import PASSWORD, IdentityClient, md, random_phone

SERVICE = "gov.identity.v1.IdentityService"


async def test_health_is_serving_and_reflection_lists_services(identity: IdentityClient) -> None:
    health = health_pb2_grpc.HealthStub(identity.channel)
    for service in ("", SERVICE, "liveness"):
        reply = await health.Check(health_pb2.HealthCheckRequest(service=service))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    stub = reflection_pb2_grpc.ServerReflectionStub(identity.channel)

    async def requests():  # type: ignore[no-untyped-def]
        yield reflection_pb2.ServerReflectionRequest(list_services="")

    names = set()
    async for reply in stub.ServerReflectionInfo(requests()):
        names |= {s.name for s in reply.list_services_response.service}
    assert {SERVICE, "grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"} <= names


async def _code(call) -> grpc.StatusCode:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call
    return err.value.code()


async def test_call_without_credentials_is_refused(identity: IdentityClient) -> None:
    assert await _code(identity.stub.GetCaller(pb.GetCallerRequest())) == grpc.StatusCode.UNAUTHENTICATED
    assert await _code(identity.stub.ListUsers(pb.ListUsersRequest())) == grpc.StatusCode.UNAUTHENTICATED


async def test_forged_identity_metadata_is_refused(identity: IdentityClient) -> None:
    admin = await identity.stub.GetCaller(pb.GetCallerRequest(), metadata=md(identity.admin_token))
    forged = (
        ("x-user-id", admin.user.id),
        ("x-gov-principal", admin.principal),
        ("x-roles", "admin:*"),
    )
    code = await _code(identity.stub.ListUsers(pb.ListUsersRequest(), metadata=forged))
    assert code == grpc.StatusCode.UNAUTHENTICATED
    # An unsigned token ("alg": "none") claiming to be the admin.
    header = base64.urlsafe_b64encode(json.dumps({"alg": "none", "typ": "JWT"}).encode()).rstrip(b"=")
    claims = {"sub": admin.principal, "roles": [["admin", "*"]], "typ": "access", "exp": time.time() + 60}
    body = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=")
    unsigned = (header + b"." + body + b".").decode()
    assert await _code(identity.stub.ListUsers(pb.ListUsersRequest(), metadata=md(unsigned))) == (
        grpc.StatusCode.UNAUTHENTICATED
    )


async def test_token_from_unknown_key_or_tampered_is_refused(identity: IdentityClient) -> None:
    good = identity.admin_token
    header = jwt.get_unverified_header(good)
    claims = jwt.decode(good, options={"verify_signature": False})
    stranger = ec.generate_private_key(ec.SECP256R1())
    # Same claims, signed by a key the platform never published, under an unknown kid ...
    unknown_kid = jwt.encode(claims, stranger, algorithm="ES256", headers={"kid": "not-ours"})
    # ... and under the real kid (the signature cannot match the published key).
    borrowed_kid = jwt.encode(claims, stranger, algorithm="ES256", headers={"kid": header["kid"]})
    # A real token whose payload was edited to claim more.
    h, p, s = good.split(".")
    payload = json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))
    payload["sub"] = "users/someone-else"
    edited = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()
    tampered = f"{h}.{edited}.{s}"
    for token in (unknown_kid, borrowed_kid, tampered, "not-a-jwt", good[:-4] + "AAAA"):
        code = await _code(identity.stub.GetCaller(pb.GetCallerRequest(), metadata=md(token)))
        assert code == grpc.StatusCode.UNAUTHENTICATED, token
    # The genuine token still works.
    caller = await identity.stub.GetCaller(pb.GetCallerRequest(), metadata=md(good))
    assert caller.principal.startswith("users/")


async def test_lockout_after_repeated_failures_reveals_nothing(identity: IdentityClient) -> None:
    _, phone, _ = await identity.make_user("yuhu/wanlou")
    unknown = random_phone()
    results: dict[str, list[tuple[grpc.StatusCode, str]]] = {}
    for login in (phone, unknown):
        seen = []
        for _ in range(3):
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await identity.login(login, "wrong-password")
            seen.append((err.value.code(), err.value.details()))
        # Locked now: even the right password is refused, with a Retry-After.
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await identity.login(login, PASSWORD)
        seen.append((err.value.code(), err.value.details().split(";")[0]))
        retry_after = dict(err.value.trailing_metadata() or ()).get("retry-after")
        assert retry_after is not None and 1 <= int(retry_after) <= 3
        results[login] = seen
    # An existing and a non-existing account answer identically.
    assert results[phone] == results[unknown]
    assert [c for c, _ in results[phone]] == [grpc.StatusCode.UNAUTHENTICATED] * 3 + [
        grpc.StatusCode.RESOURCE_EXHAUSTED
    ]
    await asyncio.sleep(3.2)
    assert (await identity.login(phone, PASSWORD)).access_token


async def test_refresh_token_rotation_and_reuse_detection(identity: IdentityClient) -> None:
    _, phone, _ = await identity.make_user("yuhu/wanlou")
    first = await identity.login(phone, PASSWORD)
    second = await identity.stub.RefreshToken(pb.RefreshTokenRequest(refresh_token=first.refresh_token))
    assert second.refresh_token != first.refresh_token and second.access_token
    # The spent token comes back: someone copied it. The whole family is revoked ...
    code = await _code(identity.stub.RefreshToken(pb.RefreshTokenRequest(refresh_token=first.refresh_token)))
    assert code == grpc.StatusCode.UNAUTHENTICATED
    # ... including the newest token, which had not been used yet.
    code = await _code(identity.stub.RefreshToken(pb.RefreshTokenRequest(refresh_token=second.refresh_token)))
    assert code == grpc.StatusCode.UNAUTHENTICATED
    # Another session of the same user is untouched.
    other = await identity.login(phone, PASSWORD)
    assert (
        await identity.stub.RefreshToken(pb.RefreshTokenRequest(refresh_token=other.refresh_token))
    ).access_token


async def test_logout_revokes_the_session(identity: IdentityClient) -> None:
    _, phone, _ = await identity.make_user("yuhu/wanlou")
    pair = await identity.login(phone, PASSWORD)
    await identity.stub.Logout(pb.LogoutRequest(refresh_token=pair.refresh_token))
    code = await _code(identity.stub.RefreshToken(pb.RefreshTokenRequest(refresh_token=pair.refresh_token)))
    assert code == grpc.StatusCode.UNAUTHENTICATED


async def test_disabled_user_cannot_log_in_or_refresh(identity: IdentityClient) -> None:
    user, phone, _ = await identity.make_user("yuhu/wanlou")
    pair = await identity.login(phone, PASSWORD)
    await identity.stub.DisableUser(pb.DisableUserRequest(name=user.name), metadata=md(identity.admin_token))
    assert await _code(identity.login(phone, PASSWORD)) == grpc.StatusCode.UNAUTHENTICATED
    code = await _code(identity.stub.RefreshToken(pb.RefreshTokenRequest(refresh_token=pair.refresh_token)))
    assert code == grpc.StatusCode.UNAUTHENTICATED
    await identity.stub.EnableUser(pb.EnableUserRequest(name=user.name), metadata=md(identity.admin_token))
    assert (await identity.login(phone, PASSWORD)).access_token


async def test_key_rotation_keeps_old_tokens_valid(identity: IdentityClient) -> None:
    old_token = identity.admin_token
    old_kid = jwt.get_unverified_header(old_token)["kid"]
    key = await identity.stub.RotateSigningKey(pb.RotateSigningKeyRequest(), metadata=md(old_token))
    assert key.kid != old_kid
    jwks = json.loads((await identity.stub.GetJwks(pb.GetJwksRequest())).json)
    assert {old_kid, key.kid} <= {k["kid"] for k in jwks["keys"]}
    # A token signed before the rotation is still accepted until it expires.
    assert (await identity.stub.GetCaller(pb.GetCallerRequest(), metadata=md(old_token))).principal
    new_token = (await identity.login("admin", "admin-test-password")).access_token
    assert jwt.get_unverified_header(new_token)["kid"] == key.kid
    assert (await identity.stub.GetCaller(pb.GetCallerRequest(), metadata=md(new_token))).principal
    identity.admin_token = new_token


async def test_service_account_client_credentials(identity: IdentityClient) -> None:
    created = await identity.stub.CreateServiceAccount(
        pb.CreateServiceAccountRequest(service_account=pb.ServiceAccount(display_name="12345 hotline")),
        metadata=md(identity.admin_token),
    )
    assert created.client_secret
    await identity.stub.CreateRoleBinding(
        pb.CreateRoleBindingRequest(
            parent=created.service_account.name,
            role_binding=pb.RoleBinding(role=pb.ROLE_DISPATCHER, scope="yuhu"),
        ),
        metadata=md(identity.admin_token),
    )
    tokens = await identity.stub.IssueServiceToken(
        pb.IssueServiceTokenRequest(
            client_id=created.service_account.client_id, client_secret=created.client_secret
        )
    )
    assert tokens.refresh_token == ""
    caller = await identity.stub.GetCaller(pb.GetCallerRequest(), metadata=md(tokens.access_token))
    assert caller.principal == created.service_account.name
    assert [(b.role, b.scope) for b in caller.role_bindings] == [(pb.ROLE_DISPATCHER, "yuhu")]
    code = await _code(
        identity.stub.IssueServiceToken(
            pb.IssueServiceTokenRequest(client_id=created.service_account.client_id, client_secret="wrong")
        )
    )
    assert code == grpc.StatusCode.UNAUTHENTICATED
