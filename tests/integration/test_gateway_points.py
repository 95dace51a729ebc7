"""The points REST resources end to end, through the real gateway: indicators, awards and their
approval, accounts and statements with the service's scoping, the love bank with Idempotency-Key
replays, consent and the credit-query audit, rankings, pagination, problems and the OpenAPI document."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import httpx

from gateway.points_resources import PROTO_ENUMS, from_pb, to_pb
from gov.blocks.v1.blocks_pb2_grpc import BlocksServiceStub
from tests.support.gateway import all_items, auth, idempotency_key, is_problem, ok, ref
from tests.support.identity import IdentityClient
from tests.support.points import Village, make_village

API = "/api/v1/points"


async def _indicator(http: httpx.AsyncClient, village: Village, **fields: object) -> dict:
    body = {
        "node": ref(village.district),
        "code": f"i-{uuid.uuid4().hex[:10]}",
        "display_name": "保持楼道畅通",
        "kind": "reward",
        "points": 10,
        **fields,
    }
    reply = await http.post(f"{API}/indicators", json=body, headers=auth(village.staff["leader"]))
    made = ok(reply, 201)
    assert reply.headers["location"] == f"{API}/indicators/{made['id']}"
    return made


async def _award(
    http: httpx.AsyncClient, village: Village, indicator: str, resident: int = 0, key: str | None = None
) -> httpx.Response:
    body = {"recipient": village.residents[resident].name, "indicator": indicator, "node": village.block}
    return await http.post(
        f"{API}/awards", json=body, headers=auth(village.staff["governor"], key or idempotency_key())
    )


def test_json_enums_match_the_proto() -> None:
    for cls, (enum, prefix) in PROTO_ENUMS.items():
        names = {
            n.removeprefix(f"{prefix}_").lower()
            for n in enum.DESCRIPTOR.values_by_name
            if not n.endswith("UNSPECIFIED")
        }
        assert {m.value for m in cls} == names, cls
        for member in cls:
            assert from_pb(cls, to_pb(member)) == member


async def test_an_approved_award_shows_in_the_residents_balance_and_only_they_and_staff_see_it(
    http: httpx.AsyncClient, village: Village, blocks: BlocksServiceStub, identity: IdentityClient
) -> None:
    indicator = await _indicator(
        http, village, approval_required=True, points=12, cap_count=5, cap_period="month"
    )
    assert (indicator["kind"], indicator["cap_period"], indicator["version"]) == ("reward", "month", 1)
    assert indicator["node"] == village.district and indicator["node_ref"] == ref(village.district)
    resident, other = village.residents[0], village.residents[1]
    key = idempotency_key()
    reply = await _award(http, village, indicator["id"], key=key)
    created = ok(reply, 201)
    assert reply.headers["location"] == f"{API}/awards/{key}"
    assert (created["id"], created["state"], created["points"], created["kind"]) == (
        key,
        "pending_approval",
        12,
        "reward",
    )
    assert created["account"] == f"u-{resident.name.removeprefix('users/')}"
    account_id = created["account"]
    mine = ok(await http.get(f"{API}/me/account", headers=auth(resident)))
    assert (mine["id"], mine["balance"], mine["pending_credits"]) == (account_id, 0, 12)

    # The governor who recorded it may not approve it; a resident neither.
    is_problem(
        await http.post(f"{API}/awards/{key}/approve", json={}, headers=auth(village.staff["governor"])), 403
    )
    is_problem(await http.post(f"{API}/awards/{key}/approve", json={}, headers=auth(resident)), 403)
    approved = ok(
        await http.post(
            f"{API}/awards/{key}/approve", json={"note": "属实"}, headers=auth(village.staff["supervisor"])
        )
    )
    assert approved["state"] == "posted" and approved["decided_by"] == village.staff["supervisor"].name
    # Decided once: a second decision is a conflict of state.
    again = await http.post(
        f"{API}/awards/{key}/reject", json={"note": "重复"}, headers=auth(village.staff["supervisor"])
    )
    assert is_problem(again, 409)["type"] == "/problems/failed-precondition"

    mine = ok(await http.get(f"{API}/me/account", headers=auth(resident)))
    assert (mine["balance"], mine["available"], mine["pending_credits"], mine["owner"]) == (
        12,
        12,
        0,
        resident.name,
    )
    assert ok(await http.get(f"{API}/accounts/{account_id}", headers=auth(resident))) == mine
    # Staff whose scope covers the block see it; another resident, or a leader elsewhere, does not.
    assert (
        ok(await http.get(f"{API}/accounts/{account_id}", headers=auth(village.staff["leader"])))["balance"]
        == 12
    )
    is_problem(await http.get(f"{API}/accounts/{account_id}", headers=auth(other)), 404)
    elsewhere = await make_village(blocks, identity, residents=0)
    is_problem(await http.get(f"{API}/accounts/{account_id}", headers=auth(elsewhere.staff["leader"])), 404)
    is_problem(await http.get(f"{API}/accounts/{account_id}/entries", headers=auth(other)), 404)

    statement = ok(await http.get(f"{API}/me/entries", headers=auth(resident)))["items"]
    assert [(e["kind"], e["phase"], e["amount"]) for e in statement] == [
        ("award", "post", 12),
        ("award", "pending", 12),
    ]
    assert all(e["credit_account"] == account_id for e in statement)
    assert (
        ok(await http.get(f"{API}/accounts/{account_id}/entries", headers=auth(village.staff["leader"])))[
            "items"
        ]
        == statement
    )
    entry = statement[0]
    assert ok(await http.get(f"{API}/entries/{entry['id']}", headers=auth(resident))) == entry
    is_problem(await http.get(f"{API}/entries/{entry['id']}", headers=auth(other)), 404)
    award = ok(await http.get(f"{API}/awards/{key}", headers=auth(resident)))
    assert award["state"] == "posted" and award["entry"]
    # Another resident's own list holds none of it.
    theirs = ok(await http.get(f"{API}/awards", headers=auth(other)))["items"]
    assert key not in {a["id"] for a in theirs}

    # A penalty, appealed and reversed by the supervisor: the balance is back.
    penalty = await _indicator(http, village, kind="penalty", points=5)
    taken = ok(await _award(http, village, penalty["id"]), 201)
    assert taken["state"] == "posted" and taken["applied_points"] == 5
    appealed = ok(
        await http.post(
            f"{API}/awards/{taken['id']}/appeal", json={"reason": "当天我不在家"}, headers=auth(resident)
        )
    )
    assert appealed["appeal_state"] == "open"
    is_problem(
        await http.post(f"{API}/awards/{taken['id']}/appeal", json={"reason": ""}, headers=auth(resident)),
        422,
    )
    decided = ok(
        await http.post(
            f"{API}/awards/{taken['id']}/appeal/decision",
            json={"reverse": True, "answer": "经核实，撤销扣分"},
            headers=auth(village.staff["supervisor"], idempotency_key()),
        )
    )
    assert (decided["appeal_state"], decided["state"]) == ("reversed", "reversed")
    assert ok(await http.get(f"{API}/me/account", headers=auth(resident)))["balance"] == 12


async def test_a_redemption_replays_under_its_idempotency_key_and_the_counter_fulfils_it(
    http: httpx.AsyncClient, village: Village
) -> None:
    leader, assistant, resident = village.staff["leader"], village.staff["assistant"], village.residents[0]
    indicator = await _indicator(http, village, points=50)
    ok(await _award(http, village, indicator["id"]), 201)
    reply = await http.post(
        f"{API}/exchange-points",
        json={
            "node": ref(village.block),
            "display_name": "爱心超市",
            "address": "3栋1楼",
            "staff": [assistant.name],
        },
        headers=auth(leader),
    )
    point = ok(reply, 201)
    assert reply.headers["location"] == f"{API}/exchange-points/{point['id']}" and point["staff"] == [
        assistant.name
    ]
    is_problem(
        await http.post(
            f"{API}/exchange-points",
            json={"node": ref(village.block), "display_name": "爱心超市"},
            headers=auth(resident),
        ),
        403,
    )
    reply = await http.post(
        f"{API}/exchange-points/{point['id']}/items",
        json={"display_name": "洗衣液 2kg", "kind": "goods", "price": 15, "stock": 3},
        headers=auth(leader),
    )
    item = ok(reply, 201)
    assert reply.headers["location"] == f"{API}/exchange-points/{point['id']}/items/{item['id']}"
    assert (item["exchange_point"], item["kind"], item["stock"]) == (point["id"], "goods", 3)
    shelf = ok(await http.get(f"{API}/exchange-points/{point['id']}/items", headers=auth(resident)))["items"]
    assert [i["id"] for i in shelf] == [item["id"]]
    # An update mask from the fields present: only the price changes.
    patched = ok(
        await http.patch(
            f"{API}/exchange-points/{point['id']}/items/{item['id']}",
            json={"price": 20},
            headers=auth(leader),
        )
    )
    assert (patched["price"], patched["stock"], patched["display_name"]) == (20, 3, "洗衣液 2kg")
    is_problem(
        await http.patch(
            f"{API}/exchange-points/{point['id']}/items/{item['id']}", json={}, headers=auth(leader)
        ),
        400,
    )

    key = idempotency_key()
    body = {"exchange_point": point["id"], "item": item["id"], "quantity": 2}
    first = await http.post(f"{API}/redemptions", json=body, headers=auth(resident, key))
    redemption = ok(first, 201)
    assert first.headers["location"] == f"{API}/redemptions/{key}"
    assert (redemption["id"], redemption["state"], redemption["points"]) == (key, "reserved", 40)
    replay = await http.post(f"{API}/redemptions", json=body, headers=auth(resident, key))
    assert ok(replay, 201) == redemption
    # The same key for another request changes nothing.
    other = await http.post(f"{API}/redemptions", json={**body, "quantity": 1}, headers=auth(resident, key))
    assert is_problem(other, 422)["type"] == "/problems/idempotency-key-reused"
    account = ok(await http.get(f"{API}/me/account", headers=auth(resident)))
    assert (account["balance"], account["reserved"], account["available"]) == (50, 40, 10)
    stock = ok(
        await http.get(f"{API}/exchange-points/{point['id']}/items/{item['id']}", headers=auth(resident))
    )
    assert stock["stock"] == 1
    # Not enough points (or stock) left: a conflict with the account's state.
    short = await http.post(
        f"{API}/redemptions", json={**body, "quantity": 1}, headers=auth(resident, idempotency_key())
    )
    assert is_problem(short, 409)["type"] == "/problems/failed-precondition"
    is_problem(
        await http.post(f"{API}/redemptions", json={**body, "quantity": 0}, headers=auth(resident)), 422
    )
    bad_key = await http.post(f"{API}/redemptions", json=body, headers=auth(resident, "no spaces allowed"))
    assert is_problem(bad_key, 400)["errors"][0]["field"] == "Idempotency-Key"

    mine = ok(await http.get(f"{API}/redemptions", headers=auth(resident)))["items"]
    assert [r["id"] for r in mine] == [key]
    is_problem(await http.get(f"{API}/redemptions/{key}", headers=auth(village.residents[1])), 404)
    is_problem(await http.post(f"{API}/redemptions/{key}/fulfil", headers=auth(resident)), 403)
    counter = ok(
        await http.get(
            f"{API}/redemptions",
            params={"exchange_point": point["id"], "state": "reserved"},
            headers=auth(assistant),
        )
    )["items"]
    assert [r["id"] for r in counter] == [key]
    done = ok(await http.post(f"{API}/redemptions/{key}/fulfil", headers=auth(assistant)))
    assert (done["state"], done["fulfilled_by"]) == ("fulfilled", assistant.name)
    is_problem(await http.post(f"{API}/redemptions/{key}/cancel", json={}, headers=auth(resident)), 409)
    account = ok(await http.get(f"{API}/me/account", headers=auth(resident)))
    assert (account["balance"], account["reserved"], account["available"]) == (10, 0, 10)
    kinds = [
        (e["kind"], e["phase"])
        for e in ok(await http.get(f"{API}/me/entries", headers=auth(resident)))["items"]
    ]
    assert kinds[:2] == [("redemption", "post"), ("redemption", "pending")]


async def test_consent_is_granted_and_revoked_over_rest_and_the_resident_reads_every_query(
    http: httpx.AsyncClient, village: Village, identity: IdentityClient
) -> None:
    leader, resident = village.staff["leader"], village.residents[0]
    district = village.district
    policy = {
        "window_months": 12,
        "tiers": [
            {"display_name": "二级信用户", "min_points": 10, "credit_amount": 30_000},
            {"display_name": "一级信用户", "min_points": 20, "clean_months": 6, "credit_amount": 100_000},
        ],
    }
    is_problem(await http.put(f"{API}/credit-policies/{district}", json=policy, headers=auth(resident)), 403)
    stored = ok(await http.put(f"{API}/credit-policies/{district}", json=policy, headers=auth(leader)))
    assert stored["district"] == district and [t["display_name"] for t in stored["tiers"]]
    assert ok(await http.get(f"{API}/credit-policies/{district}", headers=auth(resident))) == stored
    is_problem(
        await http.put(
            f"{API}/credit-policies/{district}", json={**policy, "tiers": []}, headers=auth(leader)
        ),
        422,
    )
    indicator = await _indicator(http, village, points=25)
    ok(await _award(http, village, indicator["id"]), 201)

    created = await identity.make_service_account("合作银行")
    bank_id = created.service_account.name.removeprefix("serviceAccounts/")
    bank = await identity.service_token(created)
    resident_id = resident.name.removeprefix("users/")
    tier_url = f"{API}/residents/{resident_id}/credit-tier"

    is_problem(await http.get(tier_url, headers=auth(bank)), 403)
    granted = ok(await http.put(f"{API}/me/credit-consents/{bank_id}", headers=auth(resident)))
    assert (granted["bank"], granted["granted"], granted["revoke_time"]) == (
        created.service_account.name,
        True,
        None,
    )
    answer = ok(await http.get(tier_url, headers=auth(bank)))
    assert (answer["tier"]["display_name"], answer["tier"]["credit_amount"], answer["net_points"]) == (
        "一级信用户",
        100_000,
        25,
    )
    revoked = ok(await http.delete(f"{API}/me/credit-consents/{bank_id}", headers=auth(resident)))
    assert revoked["granted"] is False and revoked["revoke_time"] is not None
    is_problem(await http.get(tier_url, headers=auth(bank)), 403)
    consents = ok(await http.get(f"{API}/me/credit-consents", headers=auth(resident)))["items"]
    assert [(c["bank"], c["granted"]) for c in consents] == [(created.service_account.name, False)]

    audit = ok(await http.get(f"{API}/me/credit-queries", headers=auth(resident)))["items"]
    assert [(q["caller"], q["answered"], q["tier"]) for q in reversed(audit)] == [
        (created.service_account.name, False, None),
        (created.service_account.name, True, "一级信用户"),
        (created.service_account.name, False, None),
    ]
    assert all(q["refusal"] for q in audit if not q["answered"])
    # The log is the resident's alone: another resident reads their own (empty) one.
    assert ok(await http.get(f"{API}/me/credit-queries", headers=auth(village.residents[1])))["items"] == []
    # A service account has no "me".
    is_problem(await http.get(f"{API}/me/credit-queries", headers=auth(bank)), 403)


async def test_lists_page_with_tokens_and_a_forged_token_is_a_400(
    http: httpx.AsyncClient, village: Village
) -> None:
    resident = village.residents[0]
    indicator = await _indicator(http, village, points=1)
    for _ in range(3):
        ok(await _award(http, village, indicator["id"]), 201)
    first = ok(await http.get(f"{API}/me/entries", params={"page_size": 2}, headers=auth(resident)))
    assert len(first["items"]) == 2 and first["next_page_token"]
    second = ok(
        await http.get(
            f"{API}/me/entries",
            params={"page_size": 2, "page_token": first["next_page_token"]},
            headers=auth(resident),
        )
    )
    assert len(second["items"]) == 1 and second["next_page_token"] == ""
    assert len({e["id"] for e in first["items"] + second["items"]}) == 3
    is_problem(
        await http.get(f"{API}/me/entries", params={"page_token": "forged"}, headers=auth(resident)), 400
    )
    is_problem(await http.get(f"{API}/me/entries", params={"page_size": 0}, headers=auth(resident)), 422)

    staff = auth(village.staff["leader"])
    awards = await all_items(
        http, f"{API}/awards", {"node": ref(village.block), "state": "posted", "page_size": 2}, staff
    )
    seen = [a["id"] for a in awards]
    assert len(seen) == 3 == len(set(seen))
    is_problem(await http.get(f"{API}/awards", params={"state": "lost"}, headers=staff), 422)


async def test_indicators_change_by_update_mask_and_switch_off_below_a_node(
    http: httpx.AsyncClient, village: Village
) -> None:
    leader = auth(village.staff["leader"])
    indicator = await _indicator(http, village, description="楼道不堆放杂物")
    url = f"{API}/indicators/{indicator['id']}"
    changed = ok(await http.patch(url, json={"points": 15}, headers=leader))
    assert (changed["points"], changed["version"], changed["description"]) == (15, 2, "楼道不堆放杂物")
    assert ok(await http.get(url, params={"version": 1}, headers=leader))["points"] == 10
    is_problem(await http.patch(url, json={"points": None}, headers=leader), 400)
    is_problem(await http.patch(url, json={"points": 0}, headers=leader), 422)
    is_problem(await http.patch(url, json={"points": 20}, headers=auth(village.residents[0])), 403)
    is_problem(await http.get(f"{API}/indicators/{uuid.uuid4().hex}", headers=leader), 404)
    duplicate = await http.post(
        f"{API}/indicators",
        json={
            "node": village.district,
            "code": indicator["code"],
            "display_name": "x",
            "kind": "reward",
            "points": 1,
        },
        headers=leader,
    )
    is_problem(duplicate, 409)
    is_problem(
        await http.post(
            f"{API}/indicators",
            json={
                "node": village.district,
                "code": "Bad Code",
                "display_name": "x",
                "kind": "reward",
                "points": 1,
            },
            headers=leader,
        ),
        422,
    )

    in_force = ok(await http.get(f"{API}/indicators", params={"node": ref(village.block)}, headers=leader))
    assert indicator["id"] in {i["id"] for i in in_force["items"]}
    off = ok(
        await http.put(f"{url}/availability/{ref(village.block)}", json={"disabled": True}, headers=leader)
    )
    assert (off["indicator"], off["node"], off["disabled"]) == (indicator["id"], village.block, True)
    in_force = ok(await http.get(f"{API}/indicators", params={"node": ref(village.block)}, headers=leader))
    assert indicator["id"] not in {i["id"] for i in in_force["items"]}
    refused = await _award(http, village, indicator["id"])
    assert refused.status_code in (400, 409), refused.text
    is_problem(await http.get(f"{API}/indicators", headers=leader), 422)  # node is required


async def test_rankings_are_computed_and_published_once_per_key(
    http: httpx.AsyncClient, village: Village
) -> None:
    leader = village.staff["leader"]
    indicator = await _indicator(http, village, points=7)
    ok(await _award(http, village, indicator["id"], 0), 201)
    now = dt.datetime.now(dt.UTC)
    spec = {
        "node": ref(village.block),
        "kind": "red",
        "subject": "residents",
        "start_time": (now - dt.timedelta(days=1)).isoformat(),
        "end_time": (now + dt.timedelta(days=1)).isoformat(),
    }
    draft = ok(await http.post(f"{API}/rankings/drafts", json=spec, headers=auth(leader)))
    assert draft["id"] is None and draft["kind"] == "red" and draft["subject"] == "residents"
    assert [(p["rank"], p["owner"], p["points"]) for p in draft["places"]] == [
        (1, village.residents[0].name, 7)
    ]
    is_problem(await http.post(f"{API}/rankings/drafts", json=spec, headers=auth(village.residents[0])), 403)
    is_problem(
        await http.post(
            f"{API}/rankings/drafts", json={**spec, "end_time": spec["start_time"]}, headers=auth(leader)
        ),
        422,
    )
    key = idempotency_key()
    published = await http.post(
        f"{API}/rankings", json={**spec, "title": "本周红榜"}, headers=auth(leader, key)
    )
    ranking = ok(published, 201)
    assert ranking["id"] == key and published.headers["location"] == f"{API}/rankings/{key}"
    assert (
        ok(
            await http.post(f"{API}/rankings", json={**spec, "title": "本周红榜"}, headers=auth(leader, key)),
            201,
        )["id"]
        == key
    )
    assert (
        ok(await http.get(f"{API}/rankings/{key}", headers=auth(village.residents[1])))["title"] == "本周红榜"
    )
    listed = ok(await http.get(f"{API}/rankings", params={"node": ref(village.block)}, headers=auth(leader)))
    assert [r["id"] for r in listed["items"]] == [key]


async def test_party_members_check_in_and_out_of_activities_and_earning_rules_over_rest(
    http: httpx.AsyncClient, village: Village
) -> None:
    leader, governor = village.staff["leader"], village.staff["governor"]
    member, other = village.residents[0], village.residents[1]
    community = village.block.rsplit("/", 1)[0]
    reply = await http.post(
        f"{API}/party-members",
        json={"community": ref(community), "work_unit": "区人社局"},
        headers=auth(member),
    )
    registered = ok(reply, 201)
    member_id = member.name.removeprefix("users/")
    assert (registered["user"], registered["community"]) == (member.name, community)
    assert reply.headers["location"] == f"{API}/party-members/{member_id}"
    assert ok(await http.get(f"{API}/party-members/{member_id}", headers=auth(member))) == registered
    is_problem(await http.get(f"{API}/party-members/{member_id}", headers=auth(other)), 404)

    now = dt.datetime.now(dt.UTC)
    body = {
        "block": village.block,
        "display_name": "楼道清洁志愿服务",
        "place": "3栋楼下",
        "start_time": (now - dt.timedelta(minutes=10)).isoformat(),
        "end_time": (now + dt.timedelta(hours=2)).isoformat(),
        "capacity": 2,
        "points": 5,
    }
    is_problem(
        await http.post(
            f"{API}/activities", json={**body, "end_time": body["start_time"]}, headers=auth(leader)
        ),
        422,
    )
    reply = await http.post(f"{API}/activities", json=body, headers=auth(leader))
    activity = ok(reply, 201)
    assert reply.headers["location"] == f"{API}/activities/{activity['id']}"
    listed = ok(await http.get(f"{API}/activities", params={"node": ref(community)}, headers=auth(member)))
    assert activity["id"] in {a["id"] for a in listed["items"]}
    url = f"{API}/activities/{activity['id']}"
    away = {"latitude": village.next_door[0], "longitude": village.next_door[1]}
    is_problem(await http.post(f"{url}/check-in", json=away, headers=auth(member)), 409)
    is_problem(await http.post(f"{url}/check-in", json={"latitude": 27.8}, headers=auth(member)), 422)
    here = {"latitude": village.inside[0], "longitude": village.inside[1]}
    checked = ok(await http.post(f"{url}/check-in", json=here, headers=auth(member)))
    assert (checked["member"], checked["offline"], checked["award"]) == (member.name, False, None)
    is_problem(await http.post(f"{url}/check-in", json=here, headers=auth(member)), 409)  # twice
    out = ok(await http.post(f"{url}/check-out", json={}, headers=auth(member)))
    assert out["award"] and out["check_out_time"]
    assert ok(await http.get(f"{API}/me/account", headers=auth(member)))["balance"] == 5
    # Offline check-ins are the block's staff's: a resident cannot check someone else in.
    is_problem(await http.post(f"{url}/check-in", json={"member": member.name}, headers=auth(other)), 403)
    assert ok(await http.get(url, headers=auth(member)))["checked_in"] == 1

    reward = await _indicator(http, village, points=3)
    reply = await http.post(
        f"{API}/earning-rules",
        json={"node": ref(community), "trigger": "visit_issue_resolved", "indicator": reward["id"]},
        headers=auth(leader),
    )
    rule = ok(reply, 201)
    assert (rule["trigger"], rule["indicator"], rule["active"]) == (
        "visit_issue_resolved",
        reward["id"],
        True,
    )
    assert reply.headers["location"] == f"{API}/earning-rules/{rule['id']}"
    is_problem(
        await http.post(
            f"{API}/earning-rules",
            json={"node": community, "trigger": "ticket_rated", "indicator": reward["id"]},
            headers=auth(governor),
        ),
        403,
    )
    off = ok(
        await http.patch(f"{API}/earning-rules/{rule['id']}", json={"active": False}, headers=auth(leader))
    )
    assert off["active"] is False and off["indicator"] == reward["id"]
    rules = ok(
        await http.get(f"{API}/earning-rules", params={"node": ref(village.block)}, headers=auth(leader))
    )
    assert [r["active"] for r in rules["items"] if r["id"] == rule["id"]] == [False]


async def test_the_openapi_document_declares_the_points_paths_with_enum_schemas(
    http: httpx.AsyncClient,
) -> None:
    document = ok(await http.get("/openapi.json"))
    paths = {p for p in document["paths"] if p.startswith(API)}
    for expected in (
        "/indicators",
        "/indicators/{indicator_id}",
        "/awards",
        "/awards/{award_id}/approve",
        "/accounts/{account_id}",
        "/accounts/{account_id}/entries",
        "/me/account",
        "/me/credit-queries",
        "/me/credit-consents/{bank_id}",
        "/redemptions",
        "/redemptions/{redemption_id}/fulfil",
        "/exchange-points/{exchange_point_id}/items",
        "/earning-rules",
        "/activities/{activity_id}/check-in",
        "/rankings",
    ):
        assert API + expected in paths, expected
    create = document["paths"][f"{API}/redemptions"]["post"]
    assert "idempotency-key" in {p["name"].lower() for p in create["parameters"] if p["in"] == "header"}
    schemas = document["components"]["schemas"]
    assert schemas["AwardStateName"]["enum"] == [
        "pending_approval",
        "posted",
        "rejected",
        "expired",
        "reversed",
    ]
    assert schemas["Award"]["properties"]["state"]["anyOf"][0] == {
        "$ref": "#/components/schemas/AwardStateName"
    }
    assert schemas["NewIndicator"]["properties"]["kind"] == {"$ref": "#/components/schemas/IndicatorKindName"}

    # Every schema the points paths reach is typed all the way down: no bare objects.
    reached: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            target = node.get("$ref", "")
            if target.startswith("#/components/schemas/"):
                name = target.rsplit("/", 1)[-1]
                if name not in reached:
                    reached.add(name)
                    walk(schemas[name])
            if node.get("type") == "object":
                assert node.get("properties") or node.get("additionalProperties"), node
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for path in paths:
        for operation in document["paths"][path].values():
            # FastAPI's own 422 schema aside: the problem documents replace it at run time.
            walk([operation.get("parameters"), operation.get("requestBody")])
            walk([r for code, r in operation["responses"].items() if code.startswith("2")])
    assert {"Account", "Entry", "Redemption", "CreditQuery", "RedemptionStateName"} <= reached
    for name in reached:
        for field, prop in schemas[name].get("properties", {}).items():
            assert any(k in prop for k in ("type", "$ref", "anyOf", "allOf", "enum")), (name, field)
