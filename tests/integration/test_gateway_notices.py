"""Targeted notices through the real gateway: create with Idempotency-Key replays, progress, read
receipts with page tokens, cancel of a finished notice, scope and bad input as problem+json."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest

from gateway.notices_resources import PROTO_ENUMS, from_pb, to_pb
from gov.blocks.v1 import blocks_pb2
from gov.blocks.v1.blocks_pb2_grpc import BlocksServiceStub
from govkit.devstack import Stack
from tests.support.identity import IdentityClient, md
from tests.support.points import Village, make_village
from tests.support.tickets import Person

PROBLEM = "application/problem+json"
API = "/api/v1/notifications"


@pytest.fixture
async def http(stack: Stack):  # type: ignore[no-untyped-def]
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=30) as client:
        yield client


@pytest.fixture
async def village(blocks: BlocksServiceStub, identity: IdentityClient) -> Village:
    v = await make_village(blocks, identity, residents=3)
    for person in v.residents:
        household = blocks_pb2.Household(
            code=f"h-{uuid.uuid4().hex[:12]}",
            block=v.block,
            address="万楼社区2栋",
            residents=[
                blocks_pb2.Resident(display_name="居民", relation=blocks_pb2.RELATION_HEAD, user=person.name)
            ],
        )
        await blocks.CreateHousehold(
            blocks_pb2.CreateHouseholdRequest(household=household), metadata=md(identity.admin_token)
        )
    return v


def _auth(person: Person, key: str | None = None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {person.token}"}
    if key is not None:
        headers["Idempotency-Key"] = key
    return headers


def _is_problem(reply: httpx.Response, status: int) -> dict:
    assert reply.status_code == status, reply.text
    assert reply.headers["content-type"] == PROBLEM
    body = reply.json()
    assert body["status"] == status and body["instance"] == reply.request.url.path
    return body


def _ok(reply: httpx.Response, status: int = 200) -> Any:
    assert reply.status_code == status, reply.text
    return reply.json()


def test_every_proto_enum_value_has_a_json_name() -> None:
    for cls, (enum, _prefix) in PROTO_ENUMS.items():
        for number in enum.values():
            if number:
                assert to_pb(from_pb(cls, number)) == number


async def test_notices_through_the_gateway(http: httpx.AsyncClient, village: Village) -> None:
    governor = village.staff["governor"]
    body = {
        "node": village.block,
        "title": "燃气安全提醒",
        "body": "请检查燃气阀门,离家关闭。",
        "category": "safety",
        "urgent": True,
    }
    key = f"k-{uuid.uuid4().hex}"
    reply = await http.post(f"{API}/notices", json=body, headers=_auth(governor, key))
    made = _ok(reply, 201)
    assert reply.headers["location"] == f"{API}/notices/{made['id']}"
    assert made["state"] == "sending" and made["node_ref"] == village.block.replace("/", ".")
    assert made["household_tag"] is None
    # The same key again: the same notice.
    again = _ok(await http.post(f"{API}/notices", json=body, headers=_auth(governor, key)), 201)
    assert again["id"] == made["id"]

    for _ in range(150):
        got = _ok(await http.get(f"{API}/notices/{made['id']}", headers=_auth(governor)))
        if got["state"] == "completed":
            break
        await asyncio.sleep(0.2)
    assert got["state"] == "completed" and got["recipients_total"] == 3 and got["read_count"] == 0

    # Read receipts page by page: one recipient a page, every one once.
    seen: list[str] = []
    token = ""
    while True:
        page = _ok(
            await http.get(
                f"{API}/notices/{made['id']}/recipients",
                params={"read": "unread", "page_size": 1, "page_token": token},
                headers=_auth(governor),
            )
        )
        seen += [r["user"] for r in page["items"]]
        assert all(r["read_time"] is None for r in page["items"])
        token = page["next_page_token"]
        if not token:
            break
    assert sorted(seen) == sorted(p.name for p in village.residents)
    # A token is bound to its query.
    first = _ok(
        await http.get(
            f"{API}/notices/{made['id']}/recipients", params={"page_size": 1}, headers=_auth(governor)
        )
    )
    _is_problem(
        await http.get(
            f"{API}/notices/{made['id']}/recipients",
            params={"read": "read", "page_size": 1, "page_token": first["next_page_token"]},
            headers=_auth(governor),
        ),
        400,
    )

    listed = _ok(
        await http.get(
            f"{API}/notices", params={"node": village.block.replace("/", ".")}, headers=_auth(governor)
        )
    )
    assert [n["id"] for n in listed["items"]] == [made["id"]]

    # A finished notice is not cancelled.
    _is_problem(await http.post(f"{API}/notices/{made['id']}:cancel", headers=_auth(governor)), 409)
    # Outside one's scope: a resident (and so anyone without the right) is refused.
    _is_problem(await http.post(f"{API}/notices", json=body, headers=_auth(village.residents[0])), 403)
    _is_problem(await http.get(f"{API}/notices/{made['id']}", headers=_auth(village.residents[0])), 403)
    # Bad bodies (422, naming the field) and unknown notices.
    problem = _is_problem(
        await http.post(f"{API}/notices", json={**body, "title": ""}, headers=_auth(governor)), 422
    )
    assert any("title" in e["field"] for e in problem["errors"])
    _is_problem(
        await http.post(f"{API}/notices", json={**body, "household_tag": "rich"}, headers=_auth(governor)),
        422,
    )
    _is_problem(await http.get(f"{API}/notices/{uuid.uuid4()}", headers=_auth(governor)), 404)
    _is_problem(await http.get(f"{API}/notices/{made['id']}"), 401)


async def test_preferences_through_the_gateway(http: httpx.AsyncClient, village: Village) -> None:
    me = village.residents[0]
    got = _ok(await http.get(f"{API}/preferences", headers=_auth(me)))
    assert got["name"] == f"{me.name}/preferences" and got["channels"] == []
    # (the test stack sets an empty default window; production: 22:00-07:00)
    assert got["quiet_hours"]["time_zone"] == "Asia/Shanghai" and got["update_time"] is None
    body = {
        "channels": [
            {
                "kind": "ticket.accepted",
                "channel": "sms",
                "enabled": False,
            },
            {
                "kind": "ticket.overdue",
                "channel": "email",
                "enabled": True,
                "digest": "daily",
                "digest_time": "08:30",
            },
        ],
        "quiet_hours": {"start": "21:30", "end": "06:45", "time_zone": "Asia/Shanghai"},
    }
    put = _ok(await http.put(f"{API}/preferences", json=body, headers=_auth(me)))
    assert put["channels"] == [
        {**body["channels"][0], "digest": None, "digest_time": None},
        body["channels"][1],
    ]
    assert put["quiet_hours"]["start"] == "21:30"
    assert _ok(await http.get(f"{API}/preferences", headers=_auth(me))) == put
    # Someone else's are not theirs to see: each reads their own.
    other = _ok(await http.get(f"{API}/preferences", headers=_auth(village.residents[1])))
    assert other["channels"] == []
    # The inbox cannot be switched off; a bad zone names its field.
    off = {"channels": [{"kind": "*", "channel": "inbox", "enabled": False}]}
    problem = _is_problem(await http.put(f"{API}/preferences", json=off, headers=_auth(me)), 400)
    assert problem["errors"][0]["field"] == "preferences.channels[0].enabled"
    zone = {"quiet_hours": {"time_zone": "Mars/Base"}}
    problem = _is_problem(await http.put(f"{API}/preferences", json=zone, headers=_auth(me)), 400)
    assert problem["errors"][0]["field"] == "preferences.quiet_hours.time_zone"
    _is_problem(
        await http.put(f"{API}/preferences", json={"quiet_hours": {"start": "9pm"}}, headers=_auth(me)), 422
    )
    _is_problem(await http.get(f"{API}/preferences"), 401)
