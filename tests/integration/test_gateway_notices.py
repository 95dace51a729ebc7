"""Targeted notices through the real gateway: create with Idempotency-Key replays, progress, read
receipts with page tokens, cancel of a finished notice, scope and bad input as problem+json."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest

from gateway.notices_resources import PROTO_ENUMS, from_pb, to_pb
from gov.blocks.v1 import blocks_pb2
from gov.blocks.v1.blocks_pb2_grpc import BlocksServiceStub
from tests.support.gateway import all_items, auth, is_problem, ok
from tests.support.identity import IdentityClient, md
from tests.support.points import Village, make_village

API = "/api/v1/notifications"


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
    reply = await http.post(f"{API}/notices", json=body, headers=auth(governor, key))
    made = ok(reply, 201)
    assert reply.headers["location"] == f"{API}/notices/{made['id']}"
    assert made["state"] == "sending" and made["node_ref"] == village.block.replace("/", ".")
    assert made["household_tag"] is None
    # The same key again: the same notice.
    again = ok(await http.post(f"{API}/notices", json=body, headers=auth(governor, key)), 201)
    assert again["id"] == made["id"]

    for _ in range(150):
        got = ok(await http.get(f"{API}/notices/{made['id']}", headers=auth(governor)))
        if got["state"] == "completed":
            break
        await asyncio.sleep(0.2)
    assert got["state"] == "completed" and got["recipients_total"] == 3 and got["read_count"] == 0

    # Read receipts page by page: one recipient a page, every one once.
    recipients = await all_items(
        http, f"{API}/notices/{made['id']}/recipients", {"read": "unread", "page_size": 1}, auth(governor)
    )
    assert all(r["read_time"] is None for r in recipients)
    seen = [r["user"] for r in recipients]
    assert sorted(seen) == sorted(p.name for p in village.residents)
    # A token is bound to its query.
    first = ok(
        await http.get(
            f"{API}/notices/{made['id']}/recipients", params={"page_size": 1}, headers=auth(governor)
        )
    )
    is_problem(
        await http.get(
            f"{API}/notices/{made['id']}/recipients",
            params={"read": "read", "page_size": 1, "page_token": first["next_page_token"]},
            headers=auth(governor),
        ),
        400,
    )

    listed = ok(
        await http.get(
            f"{API}/notices", params={"node": village.block.replace("/", ".")}, headers=auth(governor)
        )
    )
    assert [n["id"] for n in listed["items"]] == [made["id"]]

    # A finished notice is not cancelled.
    is_problem(await http.post(f"{API}/notices/{made['id']}:cancel", headers=auth(governor)), 409)
    # Outside one's scope: a resident (and so anyone without the right) is refused.
    is_problem(await http.post(f"{API}/notices", json=body, headers=auth(village.residents[0])), 403)
    is_problem(await http.get(f"{API}/notices/{made['id']}", headers=auth(village.residents[0])), 403)
    # Bad bodies (422, naming the field) and unknown notices.
    problem = is_problem(
        await http.post(f"{API}/notices", json={**body, "title": ""}, headers=auth(governor)), 422
    )
    assert any("title" in e["field"] for e in problem["errors"])
    is_problem(
        await http.post(f"{API}/notices", json={**body, "household_tag": "rich"}, headers=auth(governor)),
        422,
    )
    is_problem(await http.get(f"{API}/notices/{uuid.uuid4()}", headers=auth(governor)), 404)
    is_problem(await http.get(f"{API}/notices/{made['id']}"), 401)


async def test_preferences_through_the_gateway(http: httpx.AsyncClient, village: Village) -> None:
    me = village.residents[0]
    got = ok(await http.get(f"{API}/preferences", headers=auth(me)))
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
    put = ok(await http.put(f"{API}/preferences", json=body, headers=auth(me)))
    assert put["channels"] == [
        {**body["channels"][0], "digest": None, "digest_time": None},
        body["channels"][1],
    ]
    assert put["quiet_hours"]["start"] == "21:30"
    assert ok(await http.get(f"{API}/preferences", headers=auth(me))) == put
    # Someone else's are not theirs to see: each reads their own.
    other = ok(await http.get(f"{API}/preferences", headers=auth(village.residents[1])))
    assert other["channels"] == []
    # The inbox cannot be switched off; a bad zone names its field.
    off = {"channels": [{"kind": "*", "channel": "inbox", "enabled": False}]}
    problem = is_problem(await http.put(f"{API}/preferences", json=off, headers=auth(me)), 400)
    assert problem["errors"][0]["field"] == "preferences.channels[0].enabled"
    zone = {"quiet_hours": {"time_zone": "Mars/Base"}}
    problem = is_problem(await http.put(f"{API}/preferences", json=zone, headers=auth(me)), 400)
    assert problem["errors"][0]["field"] == "preferences.quiet_hours.time_zone"
    is_problem(
        await http.put(f"{API}/preferences", json={"quiet_hours": {"start": "9pm"}}, headers=auth(me)), 422
    )
    is_problem(await http.get(f"{API}/preferences"), 401)
