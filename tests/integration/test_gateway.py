"""The REST gateway end to end: OAuth2 password flow, problem+json, scopes, OpenAPI, CORS."""

from __future__ import annotations

import uuid

import httpx
import jwt
import pytest

from govkit.devstack import Stack
from tests.conftest import CORS_ORIGIN
from tests.support.gateway import PROBLEM, all_items, auth
from tests.support.identity import ADMIN_LOGIN, ADMIN_PASSWORD, PASSWORD, IdentityClient, random_phone


@pytest.fixture
async def http(stack: Stack):  # type: ignore[no-untyped-def]
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=10) as client:
        yield client


async def _token(http: httpx.AsyncClient, login: str, password: str) -> str:
    reply = await http.post("/api/v1/auth/token", data={"username": login, "password": password})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] > 0 and body["refresh_token"]
    return body["access_token"]


async def test_password_login_then_me(http: httpx.AsyncClient) -> None:
    token = await _token(http, ADMIN_LOGIN, ADMIN_PASSWORD)
    me = await http.get("/api/v1/me", headers=auth(token))
    assert me.status_code == 200
    body = me.json()
    assert body["user"]["username"] == "admin"
    assert {"role": "admin", "scope": "*"}.items() <= body["role_bindings"][0].items()


async def test_wrong_password_is_401_problem(http: httpx.AsyncClient) -> None:
    reply = await http.post("/api/v1/auth/token", data={"username": random_phone(), "password": "nope-nope"})
    assert reply.status_code == 401
    assert reply.headers["content-type"] == PROBLEM
    body = reply.json()
    assert body["status"] == 401 and body["type"] == "/problems/unauthenticated"
    assert body["detail"] == "wrong login or password" and body["instance"] == "/api/v1/auth/token"
    assert body["request_id"] == reply.headers["x-request-id"]


async def test_refresh_and_logout(http: httpx.AsyncClient) -> None:
    pair = (
        await http.post("/api/v1/auth/token", data={"username": ADMIN_LOGIN, "password": ADMIN_PASSWORD})
    ).json()
    renewed = await http.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert renewed.status_code == 200
    out = await http.post("/api/v1/auth/logout", json={"refresh_token": renewed.json()["refresh_token"]})
    assert out.status_code == 204
    again = await http.post(
        "/api/v1/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": renewed.json()["refresh_token"]},
    )
    assert again.status_code == 401


async def test_missing_bad_and_forged_tokens(http: httpx.AsyncClient) -> None:
    for headers in (
        {},
        {"Authorization": "Bearer garbage"},
        {"Authorization": "Basic YWRtaW46YWRtaW4="},
        {"X-User-Id": "admin"},
    ):
        reply = await http.get("/api/v1/me", headers=headers)
        assert reply.status_code == 401, headers
        assert reply.headers["content-type"] == PROBLEM
        assert reply.headers["www-authenticate"].startswith("Bearer")


async def test_resident_gets_403_problem_on_user_list(
    http: httpx.AsyncClient, identity: IdentityClient
) -> None:
    _, _, token = await identity.make_user(
        "yuhu/wanlou/taoyuan/b07", [("resident", "yuhu/wanlou/taoyuan/b07")]
    )
    reply = await http.get("/api/v1/users", headers=auth(token))
    assert reply.status_code == 403
    assert reply.json()["type"] == "/problems/permission-denied"


async def test_dispatcher_cannot_grant_outside_street_over_rest(
    http: httpx.AsyncClient, identity: IdentityClient
) -> None:
    street = f"yuhu/s{uuid.uuid4().hex[:6]}"
    _, _, dispatcher = await identity.make_user(street, [("dispatcher", street)])
    target, _, _ = await identity.make_user(f"{street}/c1")
    inside = await http.post(
        f"/api/v1/users/{target.id}/role-bindings",
        json={"role": "resident", "scope": f"{street}/c1/b01"},
        headers=auth(dispatcher),
    )
    assert inside.status_code == 201 and inside.headers["location"].endswith(inside.json()["id"])
    outside = await http.post(
        f"/api/v1/users/{target.id}/role-bindings",
        json={"role": "resident", "scope": "yuhu/other/c1/b01"},
        headers=auth(dispatcher),
    )
    assert outside.status_code == 403 and outside.headers["content-type"] == PROBLEM


async def test_user_crud_and_validation_over_rest(http: httpx.AsyncClient, identity: IdentityClient) -> None:
    admin = auth(identity.admin_token)
    phone = random_phone()
    body = {"phone": phone, "display_name": "赵六", "scope": "yuhu/wanlou", "password": PASSWORD}
    key = {"Idempotency-Key": str(uuid.uuid4())}
    created = await http.post("/api/v1/users", json=body, headers={**admin, **key})
    assert created.status_code == 201, created.text
    user = created.json()
    assert user["phone"] == "+86" + phone and created.headers["location"] == f"/api/v1/users/{user['id']}"
    retried = await http.post("/api/v1/users", json=body, headers={**admin, **key})
    assert retried.json()["id"] == user["id"]
    dup = await http.post("/api/v1/users", json=body, headers=admin)
    assert dup.status_code == 409 and dup.json()["errors"] == [
        {"field": "phone", "message": "a user with this phone already exists"}
    ]
    patched = await http.patch(f"/api/v1/users/{user['id']}", json={"display_name": "赵六六"}, headers=admin)
    assert patched.status_code == 200 and patched.json()["display_name"] == "赵六六"
    assert (await http.get(f"/api/v1/users/{uuid.uuid4()}", headers=admin)).status_code == 404
    # Malformed phone: the service's rule, named field, 400.
    bad = await http.post("/api/v1/users", json={**body, "phone": "110"}, headers=admin)
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "phone"
    # Wrong types, oversized strings and missing fields: 422 naming each field, never 500.
    for payload, field in (
        ({**body, "phone": 13812345678}, "phone"),
        ({**body, "display_name": "x" * 10_000}, "display_name"),
        ({k: v for k, v in body.items() if k != "scope"}, "scope"),
        ({**body, "password": ["a"]}, "password"),
    ):
        reply = await http.post("/api/v1/users", json=payload, headers=admin)
        assert reply.status_code == 422, payload
        assert reply.headers["content-type"] == PROBLEM
        assert field in [e["field"] for e in reply.json()["errors"]]
    not_json = await http.post(
        "/api/v1/users", content=b"{not json", headers={**admin, "Content-Type": "application/json"}
    )
    assert not_json.status_code == 422
    assert (await http.get("/api/v1/users?page_size=0", headers=admin)).status_code == 422
    assert (await http.get("/api/v1/users?page_token=%%%", headers=admin)).status_code == 400


async def test_list_users_pages_over_rest(http: httpx.AsyncClient, identity: IdentityClient) -> None:
    street = f"yuhu/s{uuid.uuid4().hex[:6]}"
    for i in range(3):
        await identity.make_user(f"{street}/c{i}")
    users = await all_items(
        http, "/api/v1/users", {"scope": street, "page_size": 2}, auth(identity.admin_token)
    )
    ids = [u["id"] for u in users]
    assert len(ids) == len(set(ids)) == 3


async def test_openapi_swagger_and_jwks(http: httpx.AsyncClient) -> None:
    spec = (await http.get("/openapi.json")).json()
    flows = spec["components"]["securitySchemes"]["OAuth2PasswordBearer"]["flows"]
    assert flows["password"]["tokenUrl"] == "/api/v1/auth/token"
    assert "/api/v1/users" in spec["paths"] and "/api/v1/me" in spec["paths"]
    docs = await http.get("/docs")
    assert docs.status_code == 200 and "swagger-ui" in docs.text
    jwks = (await http.get("/.well-known/jwks.json")).json()
    token = await _token(http, ADMIN_LOGIN, ADMIN_PASSWORD)
    assert jwt.get_unverified_header(token)["kid"] in {k["kid"] for k in jwks["keys"]}
    assert (await http.get("/healthz")).json() == {"status": "ok"}
    ready = await http.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"]["identity"] == "SERVING"


async def test_gateway_picks_up_a_rotated_key(http: httpx.AsyncClient, identity: IdentityClient) -> None:
    admin = auth(identity.admin_token)
    rotated = await http.post("/api/v1/signing-keys/rotate", headers=admin)
    assert rotated.status_code == 200
    token = await _token(http, ADMIN_LOGIN, ADMIN_PASSWORD)
    assert jwt.get_unverified_header(token)["kid"] == rotated.json()["kid"]
    # The gateway has never seen this kid: it refetches the JWKS and accepts the token.
    assert (await http.get("/api/v1/me", headers=auth(token))).status_code == 200
    # The token signed before the rotation keeps working until it expires.
    assert (await http.get("/api/v1/me", headers=admin)).status_code == 200
    identity.admin_token = token


async def test_cors_and_request_id(http: httpx.AsyncClient) -> None:
    preflight = await http.options(
        "/api/v1/me",
        headers={
            "Origin": CORS_ORIGIN,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == CORS_ORIGIN
    denied = await http.options(
        "/api/v1/me", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"}
    )
    assert "access-control-allow-origin" not in denied.headers
    echoed = await http.get("/healthz", headers={"X-Request-ID": "trace-me-123"})
    assert echoed.headers["x-request-id"] == "trace-me-123"
