"""The tickets REST resources end to end: catalogue, units, the closed loop, timeline, cockpit, calendar."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid

import httpx
import pytest

from gateway.tickets_resources import PROTO_ENUMS, ActionName, TransitionActionName, from_pb, to_pb
from gov.blocks.v1.blocks_pb2_grpc import BlocksServiceStub
from tests.support.blocks import make_tree, point, square
from tests.support.gateway import (
    API,
    all_items,
    assert_json_enums_match_the_proto,
    auth,
    is_problem,
    ref,
)
from tests.support.identity import IdentityClient

SLA = {"acknowledge_within_seconds": 7200, "resolve_within_seconds": 57600, "clock": "working_hours"}


def _code(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def _unit(http: httpx.AsyncClient, token: str, node: str, kind: str = "rapid_response") -> dict:
    body = {"code": _code("rapid"), "display_name": "万楼街道快速处置中心", "kind": kind, "node": ref(node)}
    reply = await http.post(f"{API}/units", json=body, headers=auth(token))
    assert reply.status_code == 201, reply.text
    unit = reply.json()
    assert reply.headers["location"] == f"{API}/units/{unit['code']}"
    return unit


async def _category(http: httpx.AsyncClient, token: str, **extra: object) -> dict:
    body = {
        "code": _code("lift"),
        "display_name": "电梯故障",
        "group": f"物业与电梯-{uuid.uuid4().hex[:6]}",
        "keywords": ["电梯", "困人"],
        "default_center": "rapid_response",
        "priority": "high",
        "matter_class": "co_handled",
        "attributes": [
            {"code": "floor", "display_name": "楼层", "type": "number"},
            {
                "code": "severity",
                "display_name": "情况",
                "type": "single_value_list",
                "options": [
                    {"key": "stuck", "display_name": "困人"},
                    {"key": "noise", "display_name": "异响"},
                ],
            },
        ],
        "sla": SLA,
        **extra,
    }
    reply = await http.post(f"{API}/categories", json=body, headers=auth(token))
    assert reply.status_code == 201, reply.text
    assert reply.headers["location"] == f"{API}/categories/{body['code']}"
    return reply.json()


async def _report(
    http: httpx.AsyncClient, token: str, category: str, block: str, title: str, **headers: str
) -> httpx.Response:
    return await http.post(
        f"{API}/tickets",
        json={
            "category": category,
            "title": title,
            "description": "3栋2单元电梯停在7楼，有人被困",
            "location": {"address": "窑湾社区3栋2单元"},
            "node": ref(block),
            "attributes": [{"code": "floor", "values": ["7"]}, {"code": "severity", "values": ["stuck"]}],
        },
        headers={**auth(token), **headers},
    )


async def _act(http: httpx.AsyncClient, token: str, ticket_id: str, **body: object) -> httpx.Response:
    return await http.post(f"{API}/tickets/{ticket_id}/transitions", json=body, headers=auth(token))


def test_json_enums_match_the_proto() -> None:
    # Every action a client may take: all but the report itself, which only the timeline shows.
    assert_json_enums_match_the_proto(
        PROTO_ENUMS, from_pb, to_pb, left_out={TransitionActionName: {"submit"}}
    )
    assert to_pb(TransitionActionName.return_) == to_pb(ActionName.return_)


async def test_catalogue_and_units(
    http: httpx.AsyncClient, identity: IdentityClient, blocks: BlocksServiceStub
) -> None:
    admin = identity.admin_token
    street, community = await make_tree(blocks, admin, {"b01": None})
    _, _, dispatcher = await identity.make_user(street, [("dispatcher", street)])

    unit = await _unit(http, admin, street)
    assert unit["node"] == street and unit["node_ref"] == ref(street) and unit["kind"] == "rapid_response"
    assert unit["name"] == f"units/{unit['code']}" and unit["create_time"].endswith("Z")
    got = await http.get(f"{API}/units/{unit['code']}", headers=auth(dispatcher))
    assert got.status_code == 200 and got.json() == unit
    # Units serving a block's street show up for the block.
    below = await http.get(f"{API}/units", params={"node": ref(f"{community}/b01")}, headers=auth(admin))
    assert [u["code"] for u in below.json()["items"]] == [unit["code"]]
    again = await http.post(
        f"{API}/units",
        json={"code": unit["code"], "display_name": "x", "kind": "livelihood", "node": street},
        headers=auth(admin),
    )
    assert is_problem(again, 409)["type"] == "/problems/already-exists"
    is_problem(await http.get(f"{API}/units/{_code('nope')}", headers=auth(admin)), 404)

    category = await _category(http, admin, keywords=["电梯"])
    code = category["code"]
    assert category["name"] == f"categories/{code}" and category["active"] is True
    assert category["default_center"] == "rapid_response" and category["default_unit"] is None
    assert category["priority"] == "high" and category["matter_class"] == "co_handled"
    assert category["kind"] == "general"
    assert category["sla"] == {**SLA, "escalate_on_acknowledge_breach": False}
    assert [a["type"] for a in category["attributes"]] == ["number", "single_value_list"]
    assert category["attributes"][1]["options"] == [
        {"key": "stuck", "display_name": "困人"},
        {"key": "noise", "display_name": "异响"},
    ]
    # Configuring the catalogue is for admins and leaders, not dispatchers.
    denied = await http.post(
        f"{API}/categories",
        json={
            **{k: category[k] for k in ("display_name", "group", "priority", "matter_class")},
            "code": "x1",
            "sla": SLA,
        },
        headers=auth(dispatcher),
    )
    assert is_problem(denied, 403)["type"] == "/problems/permission-denied"

    # A PATCH changes only the fields present.
    patched = await http.patch(
        f"{API}/categories/{code}",
        json={
            "display_name": "电梯困人",
            "keywords": ["电梯", "困人", "停梯"],
            "default_center": None,
            "default_unit": unit["code"],
        },
        headers=auth(admin),
    )
    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert body["display_name"] == "电梯困人" and body["keywords"] == ["电梯", "困人", "停梯"]
    assert body["default_unit"] == unit["code"] and body["default_center"] is None
    assert body["group"] == category["group"] and body["sla"] == category["sla"]
    assert body["attributes"] == category["attributes"]
    is_problem(await http.patch(f"{API}/categories/{code}", json={}, headers=auth(admin)), 400)
    is_problem(
        await http.patch(f"{API}/categories/{code}", json={"display_name": None}, headers=auth(admin)), 400
    )
    got = await http.get(f"{API}/categories/{code}", headers=auth(dispatcher))
    assert got.status_code == 200 and got.json()["display_name"] == "电梯困人"

    # Filters: a group, text in a keyword; an inactive category only on request.
    other = await _category(http, admin, group=category["group"], keywords=["漏水"])
    listed = await http.get(
        f"{API}/categories", params={"group": category["group"]}, headers=auth(dispatcher)
    )
    assert sorted(c["code"] for c in listed.json()["items"]) == sorted([code, other["code"]])
    found = await http.get(
        f"{API}/categories", params={"group": category["group"], "q": "停梯"}, headers=auth(dispatcher)
    )
    assert [c["code"] for c in found.json()["items"]] == [code]
    first = await http.get(
        f"{API}/categories", params={"group": category["group"], "page_size": 1}, headers=auth(dispatcher)
    )
    assert len(first.json()["items"]) == 1 and first.json()["next_page_token"]
    second = await http.get(
        f"{API}/categories",
        params={"group": category["group"], "page_size": 1, "page_token": first.json()["next_page_token"]},
        headers=auth(dispatcher),
    )
    assert len(second.json()["items"]) == 1 and second.json()["next_page_token"] == ""
    assert {first.json()["items"][0]["code"], second.json()["items"][0]["code"]} == {code, other["code"]}
    retired = await http.patch(
        f"{API}/categories/{other['code']}", json={"active": False}, headers=auth(admin)
    )
    assert retired.status_code == 200 and retired.json()["active"] is False
    active = await http.get(f"{API}/categories", params={"group": category["group"]}, headers=auth(admin))
    assert [c["code"] for c in active.json()["items"]] == [code]
    everything = await http.get(
        f"{API}/categories",
        params={"group": category["group"], "include_inactive": "true"},
        headers=auth(admin),
    )
    assert len(everything.json()["items"]) == 2
    is_problem(await http.get(f"{API}/categories/{_code('nope')}", headers=auth(admin)), 404)


async def test_the_closed_loop_over_rest(
    http: httpx.AsyncClient, identity: IdentityClient, blocks: BlocksServiceStub
) -> None:
    admin = identity.admin_token
    street, community = await make_tree(blocks, admin, {"b01": None, "b02": None})
    other_street, _ = await make_tree(blocks, admin, {"b01": None})
    block = f"{community}/b01"
    _, _, dispatcher = await identity.make_user(street, [("dispatcher", street)])
    _, _, outsider = await identity.make_user(other_street, [("dispatcher", other_street)])
    worker, _, worker_token = await identity.make_user(street)
    resident, _, resident_token = await identity.make_user(block, [("resident", block)])
    unit = await _unit(http, admin, street)
    category = await _category(http, admin)

    # The street's dispatcher staffs the unit; its members see it, the resident does not.
    added = await http.post(
        f"{API}/units/{unit['code']}/members", json={"user": worker.id}, headers=auth(dispatcher)
    )
    assert added.status_code == 201, added.text
    member = added.json()
    assert member == {**member, "unit": unit["code"], "user": worker.name}
    assert member["name"] == f"units/{unit['code']}/members/{worker.id}"
    assert added.headers["location"] == f"{API}/units/{unit['code']}/members/{worker.id}"
    members = await http.get(f"{API}/units/{unit['code']}/members", headers=auth(worker_token))
    assert [m["user"] for m in members.json()["items"]] == [worker.name]
    is_problem(await http.get(f"{API}/units/{unit['code']}/members", headers=auth(resident_token)), 403)
    is_problem(
        await http.post(
            f"{API}/units/{unit['code']}/members", json={"user": worker.name}, headers=auth(dispatcher)
        ),
        409,
    )

    # A retried report with the same Idempotency-Key is one ticket.
    key = {"Idempotency-Key": uuid.uuid4().hex}
    first = await _report(http, resident_token, category["code"], block, "3栋电梯困人", **key)
    assert first.status_code == 201, first.text
    ticket = first.json()
    assert first.headers["location"] == f"{API}/tickets/{ticket['id']}"
    retried = await _report(http, resident_token, category["code"], block, "3栋电梯困人", **key)
    assert retried.status_code == 201 and retried.json()["id"] == ticket["id"]
    assert ticket["name"] == f"tickets/{ticket['id']}" and ticket["category"] == category["code"]
    assert ticket["state"] == "submitted" and ticket["source"] == "resident" and ticket["kind"] == "general"
    assert ticket["node"] == block and ticket["node_ref"] == ref(block)
    assert ticket["street"] == street and ticket["district"] == street.split("/")[0]
    assert ticket["reporter"] == resident.name and ticket["suggested_unit"] == unit["code"]
    assert ticket["priority"] == "high" and ticket["matter_class"] == "co_handled"
    assert ticket["location"] == {
        "latitude": None,
        "longitude": None,
        "household": None,
        "address": "窑湾社区3栋2单元",
    }
    assert {a["code"]: a["values"] for a in ticket["attributes"]} == {"floor": ["7"], "severity": ["stuck"]}
    assert ticket["lead_unit"] is None and ticket["units"] == [] and ticket["rating"] is None
    assert (
        ticket["acknowledge_deadline"] and ticket["resolve_deadline"] and ticket["create_time"].endswith("Z")
    )
    assert ticket["acknowledge_deadline"] <= ticket["resolve_deadline"]

    second = (await _report(http, resident_token, category["code"], block, "楼道灯不亮")).json()
    third = (await _report(http, resident_token, category["code"], block, "电梯异响")).json()
    newest_first = [third["id"], second["id"], ticket["id"]]

    # Lists: newest first, paged, filtered; each caller sees only their part.
    page = await http.get(
        f"{API}/tickets", params={"node": ref(street), "page_size": 2}, headers=auth(dispatcher)
    )
    assert page.status_code == 200, page.text
    assert [t["id"] for t in page.json()["items"]] == newest_first[:2] and page.json()["next_page_token"]
    rest = await http.get(
        f"{API}/tickets",
        params={"node": ref(street), "page_size": 2, "page_token": page.json()["next_page_token"]},
        headers=auth(dispatcher),
    )
    assert [t["id"] for t in rest.json()["items"]] == newest_first[2:]
    assert rest.json()["next_page_token"] == ""
    changed = await http.get(
        f"{API}/tickets",
        params={"node": ref(community), "page_size": 1, "page_token": page.json()["next_page_token"]},
        headers=auth(dispatcher),
    )
    is_problem(changed, 400)  # a page token is bound to its filters
    found = await http.get(
        f"{API}/tickets", params={"q": "楼道灯", "category": category["code"]}, headers=auth(dispatcher)
    )
    assert [t["id"] for t in found.json()["items"]] == [second["id"]]
    mine = await http.get(f"{API}/tickets", params={"mine": "true"}, headers=auth(resident_token))
    assert [t["id"] for t in mine.json()["items"]] == newest_first
    window = await http.get(
        f"{API}/tickets",
        params={
            "node": ref(street),
            "state": "submitted",
            "start_time": ticket["create_time"],
            "end_time": "2100-01-01T00:00:00Z",
            "overdue": "false",
        },
        headers=auth(dispatcher),
    )
    assert [t["id"] for t in window.json()["items"]] == newest_first
    later = await http.get(
        f"{API}/tickets",
        params={"node": ref(street), "updated_after": "2100-01-01T00:00:00+08:00"},
        headers=auth(dispatcher),
    )
    assert later.json()["items"] == []
    nothing = await http.get(f"{API}/tickets", params={"node": ref(street)}, headers=auth(outsider))
    assert nothing.status_code == 200 and nothing.json()["items"] == []

    # Who may see a ticket, and a 404 for none at all.
    assert (await http.get(f"{API}/tickets/{ticket['id']}", headers=auth(resident_token))).status_code == 200
    denied = is_problem(await http.get(f"{API}/tickets/{ticket['id']}", headers=auth(outsider)), 403)
    assert denied["type"] == "/problems/permission-denied"
    missing = is_problem(await http.get(f"{API}/tickets/{uuid.uuid4()}", headers=auth(admin)), 404)
    assert missing["type"] == "/problems/not-found"
    is_problem(await _act(http, outsider, ticket["id"], action="accept"), 403)

    # The loop: accept, dispatch ("the block whistles"), report in, start, resolve, rate, close.
    is_problem(await _act(http, resident_token, ticket["id"], action="accept"), 403)
    accepted = await _act(http, dispatcher, ticket["id"], action="accept", note="有效")
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["state"] == "accepted"
    twice = is_problem(await _act(http, dispatcher, ticket["id"], action="accept"), 409)
    assert twice["type"] == "/problems/failed-precondition"
    no_reason = is_problem(await _act(http, dispatcher, second["id"], action="reject"), 400)
    assert no_reason["errors"][0]["field"] == "reason"
    rejected = await _act(http, dispatcher, second["id"], action="reject", reason="重复反映")
    assert rejected.json()["state"] == "rejected" and rejected.json()["reject_reason"] == "重复反映"

    dispatched = await _act(http, dispatcher, ticket["id"], action="dispatch")
    assert dispatched.status_code == 200, dispatched.text
    assert dispatched.json()["state"] == "dispatched" and dispatched.json()["lead_unit"] == unit["code"]
    [assignment] = dispatched.json()["units"]
    assert assignment == {**assignment, "unit": unit["code"], "role": "lead", "status": "dispatched"}
    # The unit's staff now see the ticket because it was dispatched to their unit.
    by_unit = await http.get(f"{API}/tickets", params={"unit": unit["code"]}, headers=auth(worker_token))
    assert [t["id"] for t in by_unit.json()["items"]] == [ticket["id"]]
    is_problem(await _act(http, worker_token, ticket["id"], action="start"), 409)  # report in first
    acknowledged = await _act(http, worker_token, ticket["id"], action="acknowledge", unit=unit["code"])
    assert acknowledged.status_code == 200, acknowledged.text
    assert acknowledged.json()["units"][0]["status"] == "acknowledged"
    assert acknowledged.json()["acknowledge_time"] is not None
    started = await _act(http, worker_token, ticket["id"], action="start")
    assert started.json()["state"] == "in_progress"
    resolved = await _act(
        http,
        worker_token,
        ticket["id"],
        action="resolve",
        note="已解救被困人员，电梯恢复运行",
        media_uris=["https://media.example.org/t/1.jpg"],
    )
    assert resolved.status_code == 200, resolved.text
    assert (
        resolved.json()["state"] == "resolved"
        and resolved.json()["resolution"] == "已解救被困人员，电梯恢复运行"
    )
    assert resolved.json()["resolution_media_uris"] == ["https://media.example.org/t/1.jpg"]
    assert resolved.json()["resolve_time"] is not None
    is_problem(await _act(http, dispatcher, ticket["id"], action="close"), 409)  # rated first

    is_problem(
        await http.post(
            f"{API}/tickets/{ticket['id']}/rating", json={"score": 6}, headers=auth(resident_token)
        ),
        422,
    )
    is_problem(
        await http.post(f"{API}/tickets/{ticket['id']}/rating", json={"score": 5}, headers=auth(outsider)),
        403,
    )
    rated = await http.post(
        f"{API}/tickets/{ticket['id']}/rating",
        json={"score": 5, "comment": "处理很及时"},
        headers=auth(resident_token),
    )
    assert rated.status_code == 200, rated.text
    rating = rated.json()["rating"]
    assert rating == {**rating, "score": 5, "comment": "处理很及时", "recorded_by": resident.name}
    assert rating["time"] is not None and rated.json()["state"] == "resolved"
    closed = await _act(http, dispatcher, ticket["id"], action="close")
    assert closed.json()["state"] == "closed" and closed.json()["close_time"] is not None

    # The timeline, oldest first, in pages.
    entries = await all_items(
        http, f"{API}/tickets/{ticket['id']}/timeline", {"page_size": 3}, auth(resident_token)
    )
    assert [e["action"] for e in entries] == [
        "submit",
        "accept",
        "dispatch",
        "acknowledge",
        "start",
        "resolve",
        "rate",
        "close",
    ]
    assert [e["to_state"] for e in entries] == [
        "submitted",
        "accepted",
        "dispatched",
        "dispatched",
        "in_progress",
        "resolved",
        "resolved",
        "closed",
    ]
    assert entries[0]["from_state"] is None and entries[1]["from_state"] == "submitted"
    assert entries[1]["note"] == "有效" and entries[0]["actor"] == resident.name
    assert entries[3]["unit"] == unit["code"] and entries[3]["actor"] == worker.name
    assert entries[6]["details"]["score"] == "5"
    seqs = [e["seq"] for e in entries]
    assert seqs == sorted(seqs) and all(e["name"] == f"{ticket['name']}/timeline/{e['seq']}" for e in entries)
    is_problem(await http.get(f"{API}/tickets/{ticket['id']}/timeline", headers=auth(outsider)), 403)

    # The cockpit for the street: 3 reported, 1 rejected, 1 closed within its deadline, rated 5.
    stats = await http.get(
        f"{API}/statistics/tickets",
        params={"node": ref(street), "start_time": "2020-01-01T00:00:00+08:00"},
        headers=auth(dispatcher),
    )
    assert stats.status_code == 200, stats.text
    figures = stats.json()
    assert figures["node"] == street and figures["total"] == 3
    assert figures["by_state"] == {
        "submitted": 1,
        "accepted": 0,
        "rejected": 1,
        "merged": 0,
        "escalated": 0,
        "dispatched": 0,
        "in_progress": 0,
        "resolved": 0,
        "closed": 1,
    }
    assert figures["completed"] == 1 and figures["completion_rate"] == pytest.approx(0.5)
    assert figures["completed_on_time"] == 1 and figures["on_time_rate"] == pytest.approx(1.0)
    assert figures["rated"] == 1 and figures["satisfied"] == 1 and figures["satisfaction_rate"] == 1.0
    assert figures["disputes_mediated"] == 0 and figures["mediation_success_rate"] == 0.0
    assert figures["overdue"] == 0
    for name in ("median_time_to_acknowledge_seconds", "median_time_to_resolve_seconds"):
        assert isinstance(figures[name], float) and 0 <= figures[name] < 600, name
    by_unit_stats = await http.get(
        f"{API}/statistics/tickets",
        params={"node": ref(street), "unit": unit["code"], "category": category["code"]},
        headers=auth(dispatcher),
    )
    assert by_unit_stats.json()["total"] == 1
    is_problem(
        await http.get(f"{API}/statistics/tickets", params={"node": ref(street)}, headers=auth(outsider)),
        403,
    )

    # Taken off the unit: the very next call with the same token no longer sees its tickets.
    removed = await http.delete(f"{API}/units/{unit['code']}/members/{worker.id}", headers=auth(dispatcher))
    assert removed.status_code == 204
    is_problem(await http.get(f"{API}/tickets/{ticket['id']}", headers=auth(worker_token)), 403)
    is_problem(
        await http.delete(f"{API}/units/{unit['code']}/members/{worker.id}", headers=auth(dispatcher)), 404
    )


async def test_a_point_report_lands_in_its_block(
    http: httpx.AsyncClient, identity: IdentityClient, blocks: BlocksServiceStub
) -> None:
    admin = identity.admin_token
    col, row = -20_000 - (uuid.uuid4().int % 1000) * 4, 80
    _, community = await make_tree(blocks, admin, {"b01": square(col, row), "b02": square(col + 1, row)})
    category = await _category(http, admin, attributes=[])
    lat, lng = point(col + 1.5, row + 0.5)
    reply = await http.post(
        f"{API}/tickets",
        json={
            "category": f"categories/{category['code']}",
            "source": "patrol",
            "description": "井盖缺失",
            "location": {"latitude": lat, "longitude": lng},
            "contact": {"display_name": "王先生", "phone": "138 1234 5678"},
            "media_uris": ["https://media.example.org/p/2.jpg"],
        },
        headers=auth(admin),
    )
    assert reply.status_code == 201, reply.text
    ticket = reply.json()
    assert ticket["node"] == f"{community}/b02" and ticket["source"] == "patrol"
    assert ticket["location"]["latitude"] == pytest.approx(lat)
    assert ticket["location"]["longitude"] == pytest.approx(lng)
    assert ticket["title"] == category["display_name"]  # no title: the category's name
    assert ticket["contact"] == {"display_name": "王先生", "phone": "+8613812345678"}
    assert ticket["media_uris"] == ["https://media.example.org/p/2.jpg"]
    # Nowhere near a block: the service names the field.
    far = await http.post(
        f"{API}/tickets",
        json={"category": category["code"], "location": {"latitude": -45.0, "longitude": -120.0}},
        headers=auth(admin),
    )
    assert is_problem(far, 400)["errors"][0]["field"].startswith("ticket.location")


async def test_overdue_filter_finds_a_breached_ticket(
    http: httpx.AsyncClient, identity: IdentityClient, blocks: BlocksServiceStub
) -> None:
    admin = identity.admin_token
    street, community = await make_tree(blocks, admin, {"b01": None})
    _, _, dispatcher = await identity.make_user(street, [("dispatcher", street)])
    tight = {"acknowledge_within_seconds": 1, "resolve_within_seconds": 2, "clock": "calendar"}
    category = await _category(http, admin, sla=tight)
    assert category["sla"]["resolve_within_seconds"] == 2.0
    reported = await _report(http, dispatcher, category["code"], f"{community}/b01", "路灯不亮")
    assert reported.status_code == 201, reported.text
    ticket = reported.json()
    # The service's sweeper marks breached deadlines; the list filter finds them.
    for _ in range(60):
        overdue = await http.get(
            f"{API}/tickets", params={"node": ref(street), "overdue": "true"}, headers=auth(dispatcher)
        )
        assert overdue.status_code == 200, overdue.text
        if overdue.json()["items"]:
            break
        await asyncio.sleep(0.25)
    [found] = overdue.json()["items"]
    assert found["id"] == ticket["id"] and found["acknowledge_overdue"] is True
    figures = await http.get(
        f"{API}/statistics/tickets", params={"node": ref(street)}, headers=auth(dispatcher)
    )
    assert figures.json()["overdue"] == 1 and figures.json()["total"] == 1


async def test_working_calendar(
    http: httpx.AsyncClient, identity: IdentityClient, blocks: BlocksServiceStub
) -> None:
    admin = auth(identity.admin_token)
    street, _ = await make_tree(blocks, identity.admin_token, {})
    _, _, dispatcher = await identity.make_user(street, [("dispatcher", street)])
    saturday = next(d for d in (dt.date(2031, 1, 1) + dt.timedelta(n) for n in range(7)) if d.weekday() == 5)
    days = [
        {"date": "2031-01-22", "kind": "holiday", "name": "春节"},
        {"date": saturday.isoformat(), "kind": "workday", "name": "春节调休"},
    ]
    loaded = await http.put(f"{API}/calendar/2031", json={"days": days}, headers=admin)
    assert loaded.status_code == 200, loaded.text
    body = loaded.json()
    assert body["name"] == "calendarYears/2031" and body["year"] == 2031 and body["update_time"]
    assert sorted(body["days"], key=lambda d: d["date"]) == sorted(days, key=lambda d: d["date"])
    got = await http.get(f"{API}/calendar/2031", headers=auth(dispatcher))
    assert got.status_code == 200 and got.json()["days"] == body["days"]
    is_problem(await http.put(f"{API}/calendar/2031", json={"days": []}, headers=auth(dispatcher)), 403)
    wrong_year = is_problem(
        await http.put(
            f"{API}/calendar/2031", json={"days": [{"date": "2030-10-01", "kind": "holiday"}]}, headers=admin
        ),
        400,
    )
    assert "days" in wrong_year["errors"][0]["field"]
    is_problem(await http.get(f"{API}/calendar/2099", headers=admin), 404)


async def test_bad_input_is_a_422_problem_naming_the_field(
    http: httpx.AsyncClient, identity: IdentityClient
) -> None:
    admin = auth(identity.admin_token)
    paths = (await http.get("/openapi.json")).json()["paths"]
    assert {
        "/api/v1/categories/{code}",
        "/api/v1/units/{code}/members/{user_id}",
        "/api/v1/tickets/{ticket_id}/transitions",
        "/api/v1/statistics/tickets",
        "/api/v1/calendar/{year}",
    } <= paths.keys()

    good = {"category": "lift", "location": {"address": "x"}, "node": "a.b.c"}
    for payload, field in (
        ({**good, "category": "Lift Failure"}, "category"),
        ({**good, "category": "units/lift"}, "category"),
        ({**good, "title": "x" * 201}, "title"),
        ({**good, "source": "pigeon"}, "source"),
        ({**good, "node": "a..b"}, "node"),
        ({**good, "location": {"latitude": 27.8}}, "location"),
        ({**good, "location": {"latitude": 91, "longitude": 0}}, "location.latitude"),
        ({**good, "media_uris": ["ftp://x/y.jpg"]}, "media_uris.0"),
        ({**good, "media_uris": ["https://x/y.jpg"] * 11}, "media_uris"),
        ({**good, "attributes": [{"code": "Floor", "values": ["7"]}]}, "attributes.0.code"),
        ({k: v for k, v in good.items() if k != "category"}, "category"),
    ):
        body = is_problem(await http.post(f"{API}/tickets", json=payload, headers=admin), 422)
        assert body["type"] == "/problems/validation-failed"
        assert any(e["field"] == field for e in body["errors"]), (payload, body)

    for params, field in (
        ({"state": "open"}, "state"),
        ({"node": "Yuhu"}, "node"),
        ({"unit": "a/b"}, "unit"),
        ({"page_size": 0}, "page_size"),
        ({"start_time": "last tuesday"}, "start_time"),
        ({"overdue": "maybe"}, "overdue"),
    ):
        body = is_problem(await http.get(f"{API}/tickets", params=params, headers=admin), 422)
        assert body["errors"][0]["field"] == field, params
    is_problem(await http.get(f"{API}/tickets/a%20b", headers=admin), 422)
    is_problem(await http.get(f"{API}/statistics/tickets", headers=admin), 422)
    is_problem(await http.get(f"{API}/categories/Lift", headers=admin), 422)
    is_problem(await http.get(f"{API}/calendar/1999", headers=admin), 422)

    for payload, field in (
        ({"action": "fly"}, "action"),
        ({"action": "submit"}, "action"),
        ({"action": "rate", "score": 0}, "score"),
        ({"action": "dispatch", "assisting_units": ["Bad Unit"]}, "assisting_units.0"),
        ({"action": "merge", "original": "tickets/a/b"}, "original"),
        ({"action": "reject", "reason": "x" * 501}, "reason"),
    ):
        body = is_problem(await _act(http, identity.admin_token, "t1", **payload), 422)
        assert body["errors"][0]["field"] == field, payload

    category = {
        "code": "lift",
        "display_name": "电梯",
        "group": "g",
        "priority": "high",
        "matter_class": "public",
        "sla": SLA,
    }
    for payload, field in (
        ({**category, "code": "lift_failure"}, "code"),
        ({k: v for k, v in category.items() if k != "sla"}, "sla"),
        ({**category, "sla": {**SLA, "clock": "lunar"}}, "sla.clock"),
        ({**category, "sla": {**SLA, "resolve_within_seconds": 0}}, "sla.resolve_within_seconds"),
        ({**category, "sla": {**SLA, "acknowledge_within_seconds": 10**6}}, "sla"),
        ({**category, "priority": "whenever"}, "priority"),
        ({**category, "default_center": "police"}, "default_center"),
        (
            {**category, "attributes": [{"code": "a", "display_name": "x", "type": "colour"}]},
            "attributes.0.type",
        ),
        ({**category, "keywords": ["k"] * 31}, "keywords"),
    ):
        body = is_problem(await http.post(f"{API}/categories", json=payload, headers=admin), 422)
        assert any(e["field"].startswith(field) for e in body["errors"]), (payload, body)
    for payload in ({"kind": "police", "code": "u", "display_name": "x", "node": "a"}, {"code": "u"}):
        is_problem(await http.post(f"{API}/units", json=payload, headers=admin), 422)
    is_problem(await http.post(f"{API}/units/u1/members", json={"user": "users/a/b"}, headers=admin), 422)
    is_problem(
        await http.put(
            f"{API}/calendar/2031", json={"days": [{"date": "2031-02-30", "kind": "holiday"}]}, headers=admin
        ),
        422,
    )
    is_problem(
        await http.post(
            f"{API}/tickets", content=b"{not json", headers={**admin, "Content-Type": "application/json"}
        ),
        422,
    )
    # Without a token nothing reaches the service.
    is_problem(await http.get(f"{API}/tickets"), 401)
    is_problem(await http.post(f"{API}/tickets/t1/rating", json={"score": 5}), 401)
