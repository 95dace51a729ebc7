"""The blocks REST resources end to end: tree and location, scopes, 1+N+1, households, visits, imports."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest

from gateway.blocks_resources import PROTO_ENUMS, from_pb, to_pb
from tests.support.blocks import point, square
from tests.support.gateway import (
    API,
    assert_json_enums_match_the_proto,
    auth,
    is_problem,
    ref,
)
from tests.support.identity import IdentityClient


def geometry(text: str) -> dict:
    return json.loads(text)


async def _node(http: httpx.AsyncClient, token: str, **body: object) -> dict:
    reply = await http.post(f"{API}/nodes", json=body, headers=auth(token))
    assert reply.status_code == 201, reply.text
    node = reply.json()
    assert reply.headers["location"] == f"{API}/nodes/{node['ref']}"
    return node


async def _tree(
    http: httpx.AsyncClient,
    token: str,
    blocks: dict[str, dict | None],
    street_boundary: dict | None = None,
) -> tuple[str, str]:
    """A new district/street/community with the given blocks {code: boundary}. Returns (street, community)."""
    district = f"d{uuid.uuid4().hex[:8]}"
    await _node(http, token, code=district, kind="district", display_name="雨湖区")
    # Parents in bodies take either separator.
    street = await _node(
        http,
        token,
        code="wanlou",
        parent=district,
        kind="street",
        display_name="万楼街道",
        boundary=street_boundary,
    )
    community = await _node(
        http, token, code="yaowan", parent=street["ref"], kind="community", display_name="窑湾社区"
    )
    for code, boundary in blocks.items():
        await _node(
            http,
            token,
            code=code,
            parent=community["path"],
            kind="block",
            display_name=f"区块{code}",
            boundary=boundary,
        )
    return street["path"], community["path"]


async def _household(http: httpx.AsyncClient, token: str, block: str, **extra: object) -> dict:
    body = {"code": f"h{uuid.uuid4().hex[:10]}", "block": block, "address": "窑湾社区3栋401", **extra}
    reply = await http.post(f"{API}/households", json=body, headers=auth(token))
    assert reply.status_code == 201, reply.text
    assert reply.headers["location"] == f"{API}/households/{reply.json()['id']}"
    return reply.json()


def test_json_enums_match_the_proto() -> None:
    assert_json_enums_match_the_proto(PROTO_ENUMS, from_pb, to_pb)


async def test_admin_builds_a_tree_and_locate_finds_the_block(
    http: httpx.AsyncClient, identity: IdentityClient
) -> None:
    admin = identity.admin_token
    # Cells far from other tests' cells, so the shared block index has no rivals here.
    col, row = 10_000 + (uuid.uuid4().int % 1000) * 4, 40
    street, community = await _tree(
        http,
        admin,
        {"b01": geometry(square(col, row)), "b02": geometry(square(col + 1, row))},
        street_boundary=geometry(square(col, row, cols=3)),
    )
    block = (await http.get(f"{API}/nodes/{ref(community)}.b01", headers=auth(admin))).json()
    assert block["path"] == f"{community}/b01" and block["ref"] == ref(block["path"])
    assert block["parent"] == community and block["kind"] == "block" and block["state"] == "active"
    assert block["boundary"]["type"] == "Polygon" and len(block["boundary"]["coordinates"][0]) == 5
    assert block["create_time"].endswith("Z") or "+00:00" in block["create_time"]
    children = await http.get(f"{API}/nodes", params={"parent": ref(community)}, headers=auth(admin))
    assert [n["code"] for n in children.json()["items"]] == ["b01", "b02"]
    assert children.json()["next_page_token"] == ""

    async def locate(c: float, r: float) -> httpx.Response:
        lat, lng = point(c, r)
        return await http.get(f"{API}/locate", params={"lat": lat, "lng": lng}, headers=auth(admin))

    found = await locate(col + 0.5, row + 0.5)
    assert found.status_code == 200 and found.json()["path"] == f"{community}/b01"
    assert (await locate(col + 1.5, row + 0.5)).json()["ref"] == ref(f"{community}/b02")
    is_problem(await locate(col + 2.5, row + 0.5), 404)
    is_problem(await http.get(f"{API}/locate?lat=91&lng=0", headers=auth(admin)), 422)

    # The third cell of the street is bare: a gap, as a GeoJSON object.
    report = await http.get(f"{API}/nodes/{ref(street)}/coverage", headers=auth(admin))
    assert report.status_code == 200, report.text
    coverage = report.json()
    assert coverage["node"] == street and coverage["blocks"] == 2 and not coverage["complete"]
    assert coverage["overlaps"] == []
    [gap] = coverage["gaps"]
    assert gap["geometry"]["type"] in ("Polygon", "MultiPolygon")
    assert gap["area_m2"] == pytest.approx(coverage["parent_area_m2"] / 3, rel=0.05)


async def test_rename_reboundary_move_and_retire(http: httpx.AsyncClient, identity: IdentityClient) -> None:
    admin = auth(identity.admin_token)
    street, community = await _tree(http, identity.admin_token, {"b01": geometry(square(-9000, 0))})
    block = f"{community}/b01"
    renamed = await http.patch(f"{API}/nodes/{ref(block)}", json={"display_name": "桃园区块"}, headers=admin)
    assert renamed.status_code == 200 and renamed.json()["display_name"] == "桃园区块"
    assert renamed.json()["boundary"] is not None
    cleared = await http.patch(f"{API}/nodes/{ref(block)}", json={"boundary": None}, headers=admin)
    assert cleared.status_code == 200 and cleared.json()["boundary"] is None
    assert cleared.json()["display_name"] == "桃园区块"
    is_problem(await http.patch(f"{API}/nodes/{ref(block)}", json={}, headers=admin), 400)
    is_problem(await http.patch(f"{API}/nodes/{ref(block)}", json={"parent": None}, headers=admin), 400)

    district = street.split("/")[0]
    await _node(
        http, identity.admin_token, code="hetang", parent=district, kind="street", display_name="荷塘"
    )
    moved = await http.patch(
        f"{API}/nodes/{ref(community)}", json={"parent": f"{district}.hetang"}, headers=admin
    )
    assert moved.status_code == 200 and moved.json()["path"] == f"{district}/hetang/yaowan"
    below = await http.get(f"{API}/nodes/{district}.hetang.yaowan.b01", headers=admin)
    assert below.status_code == 200 and below.json()["display_name"] == "桃园区块"
    is_problem(await http.get(f"{API}/nodes/{ref(block)}", headers=admin), 404)

    busy = is_problem(await http.post(f"{API}/nodes/{district}.hetang/retire", headers=admin), 409)
    assert busy["type"] == "/problems/failed-precondition"
    retired = await http.post(f"{API}/nodes/{ref(street)}/retire", headers=admin)
    assert retired.status_code == 200 and retired.json()["state"] == "retired"
    listed = await http.get(f"{API}/nodes", params={"parent": district}, headers=admin)
    assert [n["code"] for n in listed.json()["items"]] == ["hetang"]
    listed = await http.get(
        f"{API}/nodes", params={"parent": district, "include_retired": "true"}, headers=admin
    )
    assert [n["code"] for n in listed.json()["items"]] == ["hetang", "wanlou"]


async def test_governor_sees_only_their_block_and_1n1_is_a_409(
    http: httpx.AsyncClient, identity: IdentityClient
) -> None:
    street, community = await _tree(http, identity.admin_token, {"b01": None, "b02": None})
    block_a, block_b = f"{community}/b01", f"{community}/b02"
    _, _, dispatcher = await identity.make_user(street, [("dispatcher", street)])
    governor, _, governor_token = await identity.make_user(block_a)
    other, _, _ = await identity.make_user(block_a)
    assistant, _, _ = await identity.make_user(block_a)
    as_dispatcher, as_governor = auth(dispatcher), auth(governor_token)

    assigned = await http.post(
        f"{API}/nodes/{ref(block_a)}/staff",
        json={"user": governor.name, "role": "governor"},
        headers=as_dispatcher,
    )
    assert assigned.status_code == 201, assigned.text
    assignment = assigned.json()
    assert assignment["role"] == "governor" and assignment["user"] == governor.name
    assert assignment["block"] == block_a and assignment["assistant_kind"] is None
    assert assigned.headers["location"] == f"{API}/nodes/{ref(block_a)}/staff/{assignment['id']}"

    # 1+N+1: a second governor is refused with the rule named; a bare user id is accepted.
    second = await http.post(
        f"{API}/nodes/{ref(block_a)}/staff",
        json={"user": other.id, "role": "governor"},
        headers=as_dispatcher,
    )
    conflict = is_problem(second, 409)
    assert "1+N+1" in conflict["detail"]
    helper = await http.post(
        f"{API}/nodes/{ref(block_a)}/staff",
        json={"user": assistant.id, "role": "assistant", "assistant_kind": "party_group_leader"},
        headers=as_dispatcher,
    )
    assert helper.status_code == 201 and helper.json()["assistant_kind"] == "party_group_leader"
    staff = await http.get(f"{API}/nodes/{ref(street)}/staff", headers=as_dispatcher)
    assert sorted(a["role"] for a in staff.json()["items"]) == ["assistant", "governor"]
    mine_only = await http.get(
        f"{API}/nodes/{ref(street)}/staff", params={"user": governor.name}, headers=as_dispatcher
    )
    assert [a["id"] for a in mine_only.json()["items"]] == [assignment["id"]]
    audit = (await http.get(f"{API}/nodes/{ref(street)}/staffing-audit", headers=as_dispatcher)).json()
    assert audit["blocks"] == 2 and audit["complete_blocks"] == 0
    assert {"block": block_a, "rule": "1+N+1: a block has exactly one supervisor (found 0)"} in audit[
        "violations"
    ]

    key = {"Idempotency-Key": uuid.uuid4().hex}
    mine = await _household(http, dispatcher, block_a, tags=["elderly_alone"])
    retried = await http.post(
        f"{API}/households",
        json={"code": mine["code"] + "x", "block": ref(block_a), "address": "窑湾社区3栋402"},
        headers={**as_dispatcher, **key},
    )
    again = await http.post(
        f"{API}/households",
        json={"code": mine["code"] + "x", "block": ref(block_a), "address": "窑湾社区3栋402"},
        headers={**as_dispatcher, **key},
    )
    assert retried.status_code == again.status_code == 201 and retried.json()["id"] == again.json()["id"]
    theirs = await _household(http, dispatcher, block_b)

    listed = await http.get(f"{API}/nodes/{ref(block_a)}/households", headers=as_governor)
    assert listed.status_code == 200, listed.text
    assert sorted(h["id"] for h in listed.json()["items"]) == sorted([mine["id"], retried.json()["id"]])
    tagged = await http.get(
        f"{API}/nodes/{ref(block_a)}/households", params={"tag": "elderly_alone"}, headers=as_governor
    )
    assert [h["id"] for h in tagged.json()["items"]] == [mine["id"]]
    is_problem(await http.get(f"{API}/nodes/{ref(block_b)}/households", headers=as_governor), 403)
    denied = is_problem(await http.get(f"{API}/households/{theirs['id']}", headers=as_governor), 403)
    assert denied["type"] == "/problems/permission-denied"

    # The governor records a visit in their block, not in the other one.
    visit = await http.post(
        f"{API}/households/{mine['id']}/visits",
        json={"notes": "走访：楼道灯坏了", "issues_found": ["楼道灯损坏"]},
        headers=as_governor,
    )
    assert visit.status_code == 201, visit.text
    assert visit.json()["visitor"] == governor.name and visit.json()["household"] == mine["name"]
    is_problem(await http.post(f"{API}/households/{theirs['id']}/visits", json={}, headers=as_governor), 403)
    visits = await http.get(f"{API}/nodes/{ref(street)}/visits", headers=as_dispatcher)
    assert [v["id"] for v in visits.json()["items"]] == [visit.json()["id"]]
    household_visits = await http.get(f"{API}/households/{mine['id']}/visits", headers=as_governor)
    assert [v["issues_found"] for v in household_visits.json()["items"]] == [["楼道灯损坏"]]

    removed = await http.delete(f"{API}/nodes/{ref(block_a)}/staff/{assignment['id']}", headers=as_dispatcher)
    assert removed.status_code == 204
    # Taken off the block: the very next call with the same token is refused.
    is_problem(await http.get(f"{API}/nodes/{ref(block_a)}/households", headers=as_governor), 403)


async def test_dispatcher_reads_their_streets_statistics_only(
    http: httpx.AsyncClient, identity: IdentityClient
) -> None:
    street, community = await _tree(http, identity.admin_token, {"b01": None})
    other_street, _ = await _tree(http, identity.admin_token, {"b01": None})
    _, _, dispatcher = await identity.make_user(street, [("dispatcher", street)])
    await _household(
        http,
        dispatcher,
        f"{community}/b01",
        tags=["subsistence_allowance"],
        residents=[
            {"display_name": "王伟", "relation": "head"},
            {"display_name": "李娜", "relation": "spouse", "phone": "13912345678"},
        ],
    )
    stats = await http.get(
        f"{API}/nodes/{ref(street)}/statistics",
        params={"start_time": "2020-01-01T00:00:00+08:00", "end_time": "2100-01-01T00:00:00Z"},
        headers=auth(dispatcher),
    )
    assert stats.status_code == 200, stats.text
    assert stats.json() == {
        "node": street,
        "blocks": 1,
        "households": 1,
        "residents": 2,
        "staff": 0,
        "vulnerable_households": 1,
        "visits": 0,
        "fully_staffed_blocks": 0,
    }
    is_problem(await http.get(f"{API}/nodes/{ref(other_street)}/statistics", headers=auth(dispatcher)), 403)
    is_problem(
        await http.get(
            f"{API}/nodes/{ref(street)}/statistics",
            params={"start_time": "last tuesday"},
            headers=auth(dispatcher),
        ),
        422,
    )


async def test_resident_sees_only_their_household(http: httpx.AsyncClient, identity: IdentityClient) -> None:
    _, community = await _tree(http, identity.admin_token, {"b01": None, "b02": None})
    block = f"{community}/b01"
    resident, _, token = await identity.make_user(block, [("resident", block)])
    admin = auth(identity.admin_token)
    home = await _household(
        http,
        identity.admin_token,
        block,
        tags=["elderly_alone"],
        residents=[{"display_name": "刘奶奶", "relation": "head", "birth_year": 1941, "user": resident.name}],
    )
    neighbour = await _household(http, identity.admin_token, block)

    mine = await http.get(f"{API}/me/households", headers=auth(token))
    assert [h["id"] for h in mine.json()["items"]] == [home["id"]]
    own = await http.get(f"{API}/households/{home['id']}", headers=auth(token))
    assert own.status_code == 200, own.text
    [person] = own.json()["residents"]
    assert person["user"] == resident.name and person["relation"] == "head" and person["birth_year"] == 1941
    assert own.json()["tags"] == ["elderly_alone"] and own.json()["block"] == block
    is_problem(await http.get(f"{API}/households/{neighbour['id']}", headers=auth(token)), 403)
    is_problem(await http.get(f"{API}/nodes/{ref(block)}/households", headers=auth(token)), 403)
    is_problem(await http.get(f"{API}/households/{uuid.uuid4()}", headers=admin), 404)

    # Buildings, and the household's fields present in a PATCH are the ones changed.
    building = await http.post(
        f"{API}/nodes/{ref(block)}/buildings", json={"code": "3", "display_name": "3栋"}, headers=admin
    )
    assert building.status_code == 201, building.text
    assert building.json()["name"] == f"nodes/{block}/buildings/3"
    buildings = (await http.get(f"{API}/nodes/{ref(block)}/buildings", headers=admin)).json()["items"]
    assert [b["code"] for b in buildings] == ["3"]
    patched = await http.patch(
        f"{API}/households/{home['id']}", json={"building": "3", "tags": []}, headers=admin
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["building"] == "3" and patched.json()["tags"] == []
    assert patched.json()["residents"][0]["user"] == resident.name
    unset = await http.patch(f"{API}/households/{home['id']}", json={"building": None}, headers=admin)
    assert unset.json()["building"] is None
    is_problem(await http.patch(f"{API}/households/{home['id']}", json={"address": None}, headers=admin), 400)
    moved = await http.post(
        f"{API}/households/{home['id']}/move", json={"block": ref(f"{community}/b02")}, headers=admin
    )
    assert moved.status_code == 200 and moved.json()["block"] == f"{community}/b02"


async def test_import_over_rest_is_all_or_nothing_and_idempotent(
    http: httpx.AsyncClient, identity: IdentityClient
) -> None:
    admin = identity.admin_token
    district = f"d{uuid.uuid4().hex[:8]}"
    csv_type = {**auth(admin), "Content-Type": "text/csv"}
    # Line 3 names a parent that exists neither in the file nor in the database.
    bad = f"path,name,kind\n{district},雨湖区,district\nnowhere{district[1:]}/wanlou,万楼街道,street\n"
    failed = is_problem(await http.post(f"{API}/imports/nodes", content=bad.encode(), headers=csv_type), 400)
    assert failed["errors"][0]["field"].startswith("line 3")
    is_problem(await http.get(f"{API}/nodes/{district}", headers=auth(admin)), 404)
    # A row the parser refuses, also on line 3.
    unparsable = f"path,name,kind\n{district},雨湖区,district\n{district}/Bad Code,x,street\n"
    failed = is_problem(
        await http.post(f"{API}/imports/nodes", content=unparsable.encode(), headers=csv_type), 400
    )
    assert failed["errors"][0]["field"].startswith("line 3")

    good = (
        f"path,name,kind\n{district},雨湖区,district\n{district}/wanlou,万楼街道,street\n"
        f"{district}/wanlou/yaowan,窑湾社区,community\n{district}/wanlou/yaowan/b01,区块1,block\n"
    ).encode()
    checked = await http.post(f"{API}/imports/nodes?validate_only=true", content=good, headers=csv_type)
    assert checked.status_code == 200, checked.text
    assert checked.json() == {"rows": 4, "created": 4, "updated": 0, "unchanged": 0, "errors": []}
    is_problem(await http.get(f"{API}/nodes/{district}", headers=auth(admin)), 404)
    first = await http.post(f"{API}/imports/nodes", content=good, headers=csv_type)
    assert first.status_code == 200 and first.json()["created"] == 4
    second = await http.post(f"{API}/imports/nodes", content=good, headers=csv_type)
    assert second.json() == {"rows": 4, "created": 0, "updated": 0, "unchanged": 4, "errors": []}
    assert (
        await http.get(f"{API}/nodes/{district}.wanlou.yaowan.b01", headers=auth(admin))
    ).status_code == 200

    boundaries = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"path": f"{district}/wanlou/yaowan/b01"},
                "geometry": geometry(square(-12_000, 0)),
            }
        ],
    }
    wrong_type = await http.post(f"{API}/imports/boundaries", json=boundaries, headers=csv_type)
    is_problem(wrong_type, 415)
    geo = await http.post(
        f"{API}/imports/boundaries",
        content=json.dumps(boundaries).encode(),
        headers={**auth(admin), "Content-Type": "application/geo+json"},
    )
    assert geo.status_code == 200, geo.text
    assert geo.json()["updated"] + geo.json()["created"] == 1
    is_problem(await http.post(f"{API}/imports/planets", content=good, headers=csv_type), 422)
    is_problem(
        await http.post(f"{API}/imports/nodes", content=good, headers={"Content-Type": "text/csv"}), 401
    )


async def test_malformed_paths_and_bodies_are_422(http: httpx.AsyncClient, identity: IdentityClient) -> None:
    admin = auth(identity.admin_token)
    paths = (await http.get("/openapi.json")).json()["paths"]
    assert {"/api/v1/nodes/{node}", "/api/v1/locate", "/api/v1/imports/{kind}"} <= paths.keys()
    for segment in ("Yuhu", "a..b", ".a", "a.", "a.b.c.d.e.f.g.h.i", "x" * 33, "a%20b", "-a"):
        body = is_problem(await http.get(f"{API}/nodes/{segment}", headers=admin), 422)
        assert body["errors"][0]["field"] == "node"
    is_problem(await http.get(f"{API}/nodes/a.b/households", params={"page_size": 0}, headers=admin), 422)
    is_problem(await http.get(f"{API}/nodes", params={"parent": "a/b/../c"}, headers=admin), 422)

    good = {"code": "b01", "parent": "a/b/c", "kind": "block", "display_name": "x"}
    square_boundary = geometry(square(0, 0))
    for payload, field in (
        ({**good, "kind": "planet"}, "kind"),
        ({**good, "display_name": 123}, "display_name"),
        ({**good, "display_name": "x" * 10_000}, "display_name"),
        ({**good, "code": ["b01"]}, "code"),
        ({**good, "code": "B 01"}, "code"),
        ({**good, "parent": "a//b"}, "parent"),
        ({**good, "boundary": json.dumps(square_boundary)}, "boundary"),
        ({**good, "boundary": {"type": "Point", "coordinates": [1, 2]}}, "boundary"),
        ({**good, "boundary": {**square_boundary, "coordinates": [[[1, 2]]]}}, "boundary"),
        ({k: v for k, v in good.items() if k != "kind"}, "kind"),
    ):
        reply = await http.post(f"{API}/nodes", json=payload, headers=admin)
        body = is_problem(reply, 422)
        assert any(e["field"].startswith(field) for e in body["errors"]), (payload, body)

    household = {"code": "h1", "block": "a/b/c/d", "address": "x"}
    for payload in (
        {**household, "tags": ["rich"]},
        {**household, "tags": "elderly_alone"},
        {**household, "residents": [{"display_name": "张三", "relation": "boss"}]},
        {**household, "residents": [{"display_name": "张三", "relation": "head", "birth_year": 10**12}]},
        {**household, "residents": [{"display_name": "x", "relation": "head"}] * 101},
    ):
        is_problem(await http.post(f"{API}/households", json=payload, headers=admin), 422)
    for payload in (
        {"user": "users/a/b", "role": "governor"},
        {"user": "u1", "role": "mayor"},
        {"user": "u1", "role": "assistant", "assistant_kind": "friend"},
        {"user": "u1", "role": "neighbour_head", "household_ids": ["h"] * 1001},
    ):
        is_problem(await http.post(f"{API}/nodes/a.b.c.d/staff", json=payload, headers=admin), 422)
    is_problem(
        await http.post(f"{API}/households/abc/visits", json={"issues_found": ["x"] * 51}, headers=admin), 422
    )
    is_problem(
        await http.post(
            f"{API}/nodes", content=b"{not json", headers={**admin, "Content-Type": "application/json"}
        ),
        422,
    )
