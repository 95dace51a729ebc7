"""Hostile input at the gateway, end to end: forged page tokens, oversized bodies, control characters
in search text; and the headers every response carries, the docs switch."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
import httpx
import pytest
import pytest_asyncio

from gov.blocks.v1.blocks_pb2_grpc import BlocksServiceStub
from gov.tickets.v1 import tickets_pb2 as tpb
from gov.tickets.v1.tickets_pb2_grpc import TicketsServiceStub
from govkit.devstack import Stack
from tests.support.gateway import API, PROBLEM, auth, ref
from tests.support.identity import ADMIN_LOGIN, ADMIN_PASSWORD, IdentityClient, md
from tests.support.tickets import World, make_category, make_world, new_ticket

MIB = 1024 * 1024


def is_problem(reply: httpx.Response, status: int) -> dict:
    assert reply.status_code == status, reply.text
    assert reply.headers["content-type"] == PROBLEM
    body = reply.json()
    assert body["status"] == status
    return body


@dataclass
class Setting:
    world: World
    admin: dict[str, str]
    household: str
    ticket: str


@pytest.fixture
async def http(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=60) as client:
        yield client


@pytest_asyncio.fixture(scope="session")
async def setting(stack: Stack, blocks: BlocksServiceStub, identity: IdentityClient) -> Setting:
    """Two or more of everything each list endpoint lists, so that page 1 of size 1 has a token."""
    channel = grpc.aio.insecure_channel(stack.addrs["tickets"])
    tickets = TicketsServiceStub(channel)
    world = await make_world(blocks, tickets, identity)
    await make_category(tickets, identity.admin_token)
    reported = [
        await tickets.CreateTicket(
            tpb.CreateTicketRequest(ticket=new_ticket(world)), metadata=world.staff["resident"].md
        )
        for _ in range(2)
    ]
    # A second entry on the first one's timeline.
    await tickets.TransitionTicket(
        tpb.TransitionTicketRequest(name=reported[0].name, action=tpb.ACTION_ACCEPT),
        metadata=world.staff["dispatcher"].md,
    )
    second, _, _ = await identity.make_user(world.street, [("unit_staff", world.street)])
    await tickets.AddUnitMember(
        tpb.AddUnitMemberRequest(parent=f"units/{world.units['lead']}", user=second.name),
        metadata=md(identity.admin_token),
    )
    await channel.close()
    admin = auth(identity.admin_token)
    block = ref(world.blocks[0])
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=60) as http:

        async def made(path: str, body: dict) -> dict:
            reply = await http.post(f"{API}{path}", json=body, headers=admin)
            assert reply.status_code == 201, reply.text
            return reply.json()

        for code in ("1", "2"):
            await made(f"/nodes/{block}/buildings", {"code": code, "display_name": f"{code}栋"})
        households = [
            await made("/households", {"code": f"H-{uuid.uuid4().hex[:8]}", "block": block, "address": "3栋"})
            for _ in range(2)
        ]
        for _ in range(2):
            await made(f"/households/{households[0]['id']}/visits", {"notes": "走访"})
        await made(f"/nodes/{block}/staff", {"user": world.staff["governor"].name, "role": "governor"})
        await made(f"/nodes/{block}/staff", {"user": world.staff["supervisor"].name, "role": "supervisor"})
        for _ in range(2):
            await made("/service-accounts", {"display_name": "open311 bridge"})
    return Setting(world, admin, households[0]["id"], reported[0].name.removeprefix("tickets/"))


def lists(s: Setting) -> dict[str, tuple[str, dict[str, str]]]:
    """Every list endpoint that pages, with the filters that make its page 1 hold more than one."""
    w = s.world
    return {
        "users": (f"{API}/users", {}),
        "role-bindings": (f"{API}/role-bindings", {}),
        "households": (f"{API}/nodes/{ref(w.street)}/households", {}),
        "staff": (f"{API}/nodes/{ref(w.street)}/staff", {}),
        "buildings": (f"{API}/nodes/{ref(w.blocks[0])}/buildings", {}),
        "visits of a node": (f"{API}/nodes/{ref(w.street)}/visits", {}),
        "visits of a household": (f"{API}/households/{s.household}/visits", {}),
        "tickets": (f"{API}/tickets", {}),
        "a ticket's timeline": (f"{API}/tickets/{s.ticket}/timeline", {}),
        "categories": (f"{API}/categories", {}),
        "units": (f"{API}/units", {}),
        "unit members": (f"{API}/units/{w.units['lead']}/members", {}),
        "nodes": (f"{API}/nodes", {"parent": ref(w.blocks[0].rsplit("/", 1)[0])}),
        "service accounts": (f"{API}/service-accounts", {}),
    }


def decoded(token: str) -> dict:
    return json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))


def encoded(data: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def forgeries(token: str) -> list[str]:
    """The issued token with each cursor value replaced by wrong types, a key dropped, one added."""
    data = decoded(token)
    cursor: dict = data["c"]
    forged = []
    for key in cursor:
        for value in (123, [1], None, {"a": 1}, True, "a\x00b", "\ud800", 2**70):
            if value == 123 and type(cursor[key]) is int:
                continue  # a position that could be real
            forged.append(encoded({**data, "c": {**cursor, key: value}}))
        forged.append(encoded({**data, "c": {k: v for k, v in cursor.items() if k != key}}))
    forged.append(encoded({**data, "c": {**cursor, "extra": 1}}))
    forged.append(encoded({**data, "c": list(cursor.values())}))
    forged.append(encoded({"c": cursor}))
    return forged


@pytest.mark.parametrize(
    "name",
    [
        "users",
        "role-bindings",
        "households",
        "staff",
        "buildings",
        "visits of a node",
        "visits of a household",
        "tickets",
        "a ticket's timeline",
        "categories",
        "units",
        "unit members",
        "nodes",
        "service accounts",
    ],
)
async def test_forged_page_tokens_are_400_on_every_list(
    http: httpx.AsyncClient, setting: Setting, name: str
) -> None:
    path, filters = lists(setting)[name]
    first = await http.get(path, params={**filters, "page_size": 1}, headers=setting.admin)
    assert first.status_code == 200, first.text
    token = first.json()["next_page_token"]
    assert token, f"{name}: page 1 of size 1 has no next page; the setting needs two of them"
    # The issued token still works: every list decodes what it encodes.
    second = await http.get(
        path, params={**filters, "page_size": 1, "page_token": token}, headers=setting.admin
    )
    assert second.status_code == 200, second.text
    assert second.json()["items"] != first.json()["items"]
    for forged in forgeries(token):
        reply = await http.get(
            path, params={**filters, "page_size": 1, "page_token": forged}, headers=setting.admin
        )
        body = is_problem(reply, 400)
        assert [e["field"] for e in body["errors"]] == ["page_token"], (name, decoded(forged), body)


async def test_a_big_body_is_413_before_it_is_parsed(http: httpx.AsyncClient, setting: Setting) -> None:
    # 10 MB that is not even JSON: parsed, it would be a 422; refused unread, it is a 413.
    not_json = b"{" + b" " * (10 * 1000 * 1000)
    for path in (f"{API}/auth/refresh", f"{API}/tickets", f"{API}/households"):
        started = time.monotonic()
        reply = await http.post(
            path, content=not_json, headers={**setting.admin, "Content-Type": "application/json"}
        )
        body = is_problem(reply, 413)
        assert body["type"] == "/problems/content-too-large" and "1048576 bytes" in body["detail"]
        assert body["request_id"] == reply.headers["x-request-id"]
        assert time.monotonic() - started < 20

    # Without a Content-Length (chunked), counted as it arrives.
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(40):
            yield b" " * 100_000

    reply = await http.post(
        f"{API}/auth/refresh", content=chunks(), headers={"Content-Type": "application/json"}
    )
    is_problem(reply, 413)
    # Just under the limit, the same body is parsed, and answered as the bad JSON it is.
    reply = await http.post(
        f"{API}/auth/refresh", content=b"{" + b" " * (MIB - 10), headers={"Content-Type": "application/json"}
    )
    assert is_problem(reply, 422)["type"] == "/problems/validation-failed"


async def test_a_route_declares_a_larger_limit(http: httpx.AsyncClient, setting: Setting) -> None:
    """Node writes take a large boundary (4 MiB); the same 2 MiB body elsewhere is refused."""
    street = setting.world.street
    code = f"n{uuid.uuid4().hex[:6]}"
    node = {"code": code, "parent": street, "kind": "community", "display_name": "荷塘社区"}
    created = await http.post(
        f"{API}/nodes",
        content=padded(node, 2 * MIB),
        headers={**setting.admin, "Content-Type": "application/json"},
    )
    assert created.status_code == 201, created.text[:500]
    household = {"code": f"H-{code}", "block": setting.world.blocks[0], "address": "3栋"}
    refused = await http.post(
        f"{API}/households",
        content=padded(household, 2 * MIB),
        headers={**setting.admin, "Content-Type": "application/json"},
    )
    is_problem(refused, 413)


def padded(body: dict, whitespace: int) -> bytes:
    """Valid JSON with `whitespace` bytes of insignificant white space (a pretty-printer's, say)."""
    return b"{" + b" " * whitespace + json.dumps(body, ensure_ascii=False).encode()[1:]


@pytest.mark.parametrize("bad", ["\x00", "a\x00b", "\t", "x\x7f", "\x1b[31m", "\u0085"])
async def test_control_characters_in_search_text_are_400_naming_the_parameter(
    http: httpx.AsyncClient, setting: Setting, bad: str
) -> None:
    w = setting.world
    searches = [
        (f"{API}/users", "q"),
        (f"{API}/nodes/{ref(w.street)}/households", "q"),
        (f"{API}/tickets", "q"),
        (f"{API}/categories", "q"),
        (f"{API}/categories", "group"),
    ]
    for path, param in searches:
        reply = await http.get(path, params={param: bad}, headers=setting.admin)
        body = is_problem(reply, 400)
        assert body["errors"] == [{"field": param, "message": "must not contain control characters"}], path
        # Ordinary text, Chinese included, is searched as before.
        fine = await http.get(path, params={param: "电梯 3栋"}, headers=setting.admin)
        assert fine.status_code == 200, (path, fine.text)


async def test_every_response_carries_the_security_headers(http: httpx.AsyncClient, setting: Setting) -> None:
    samples = [
        await http.get("/healthz"),
        await http.get(f"{API}/me", headers=setting.admin),
        await http.get(f"{API}/users", params={"page_size": 1}, headers=setting.admin),
        await http.get(f"{API}/nodes/{ref(setting.world.blocks[0])}/households", headers=setting.admin),
        await http.get(f"{API}/me"),  # 401
        await http.get(f"{API}/nope"),  # 404
        await http.post(f"{API}/auth/token", data={"username": "nobody", "password": "wrong-password"}),
        await http.get("/openapi.json"),
        await http.get("/.well-known/jwks.json"),
    ]
    for reply in samples:
        assert reply.headers["x-content-type-options"] == "nosniff", reply.url
        assert reply.headers["x-frame-options"] == "DENY", reply.url
        assert "frame-ancestors 'none'" in reply.headers["content-security-policy"], reply.url
    for reply in samples[:-1]:
        assert reply.headers["cache-control"] == "no-store", reply.url
        assert reply.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
    # Public keys are meant to be cached: the route says so, and that stands.
    assert samples[-1].headers["cache-control"] == "public, max-age=60"


async def test_the_token_endpoint_is_never_cached(http: httpx.AsyncClient) -> None:
    reply = await http.post(f"{API}/auth/token", data={"username": ADMIN_LOGIN, "password": ADMIN_PASSWORD})
    assert reply.status_code == 200 and reply.json()["access_token"]
    # RFC 6749 §5.1
    assert reply.headers["cache-control"] == "no-store" and reply.headers["pragma"] == "no-cache"
    refreshed = await http.post(f"{API}/auth/refresh", json={"refresh_token": reply.json()["refresh_token"]})
    assert refreshed.status_code == 200 and refreshed.headers["cache-control"] == "no-store"


async def test_swagger_ui_is_served_from_here_under_a_nonce_policy(http: httpx.AsyncClient) -> None:
    page = await http.get("/docs")
    assert page.status_code == 200 and "SwaggerUIBundle" in page.text
    policy = page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy and "default-src 'none'" in policy
    nonce = policy.split("'nonce-", 1)[1].split("'", 1)[0]
    assert page.text.count(f'<script nonce="{nonce}">') == 1 and "<script>" not in page.text
    assert "http://" not in page.text and "https://" not in page.text  # nothing from a CDN
    assert (await http.get("/docs")).headers["content-security-policy"] != policy  # a nonce per response
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "favicon.png"):
        assert f"/docs/assets/{asset}" in page.text
        served = await http.get(f"/docs/assets/{asset}")
        assert served.status_code == 200 and len(served.content) > 1000, asset
        assert served.headers["x-content-type-options"] == "nosniff"
    redirect = await http.get("/docs/oauth2-redirect")
    assert redirect.status_code == 200 and "'nonce-" in redirect.headers["content-security-policy"]
    assert (await http.get("/redoc")).status_code == 404  # FastAPI's page loads from a CDN: off


def test_docs_switched_off_by_a_setting(stack: Stack) -> None:
    serving, metrics = stack.gateway_url, stack.metrics_urls.get("gateway", "")
    proc = stack.start_gateway(env={"GOV_DOCS_ENABLED": "false"})
    try:
        off = stack.gateway_url
        for path in ("/docs", "/docs/oauth2-redirect", "/docs/assets/swagger-ui-bundle.js"):
            reply = httpx.get(f"{off}{path}", timeout=10)
            assert reply.status_code == 404 and reply.headers["content-type"] == PROBLEM, path
        # The API and its description stay.
        assert httpx.get(f"{off}/openapi.json", timeout=10).status_code == 200
        assert httpx.get(f"{off}/healthz", timeout=10).status_code == 200
    finally:
        stack.stop_proc(proc)
        # The session's gateway stays the one later tests talk to and scrape.
        stack.gateway_url, stack.metrics_urls["gateway"] = serving, metrics
