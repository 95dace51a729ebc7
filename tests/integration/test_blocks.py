"""The blocks service against real processes: tree, 1+N+1 staffing, location, coverage, scopes."""

from __future__ import annotations

import uuid

import grpc
import pytest
from google.protobuf import field_mask_pb2

from gov.blocks.v1 import blocks_pb2 as pb
from gov.blocks.v1.blocks_pb2_grpc import BlocksServiceStub
from gov.identity.v1 import identity_pb2 as ipb
from tests.support.blocks import make_tree, point, square
from tests.support.identity import IdentityClient, md
from tests.support.waiting import eventually


async def _error(call) -> grpc.aio.AioRpcError:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call
    return err.value


async def _staff(
    blocks: BlocksServiceStub, token: str, block: str, user: str, role: int, kind: int = 0, **kw
):  # type: ignore[no-untyped-def]
    return await blocks.AssignStaff(
        pb.AssignStaffRequest(
            assignment=pb.StaffAssignment(block=block, user=user, role=role, assistant_kind=kind), **kw
        ),
        metadata=md(token),
    )


async def test_region_tree_levels_rename_move_retire(
    blocks: BlocksServiceStub, identity: IdentityClient
) -> None:
    admin = md(identity.admin_token)
    street, community = await make_tree(blocks, identity.admin_token, {"b01": None})
    # A block cannot sit directly under a street.
    err = await _error(
        blocks.CreateNode(
            pb.CreateNodeRequest(
                node=pb.Node(code="b99", parent=street, kind=pb.NODE_KIND_BLOCK, display_name="x")
            ),
            metadata=admin,
        )
    )
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and err.details().startswith("kind:")
    err = await _error(
        blocks.CreateNode(
            pb.CreateNodeRequest(
                node=pb.Node(code="b01", parent=community, kind=pb.NODE_KIND_BLOCK, display_name="x")
            ),
            metadata=admin,
        )
    )
    assert err.code() == grpc.StatusCode.ALREADY_EXISTS
    renamed = await blocks.UpdateNode(
        pb.UpdateNodeRequest(
            node=pb.Node(name=f"nodes/{community}/b01", display_name="桃园区块"),
            update_mask=field_mask_pb2.FieldMask(paths=["display_name"]),
        ),
        metadata=admin,
    )
    assert renamed.code == "b01" and renamed.display_name == "桃园区块"
    # Move the community to another street: codes stay, paths below it follow.
    district = street.split("/")[0]
    await blocks.CreateNode(
        pb.CreateNodeRequest(
            node=pb.Node(code="hetang", parent=district, kind=pb.NODE_KIND_STREET, display_name="荷塘街道")
        ),
        metadata=admin,
    )
    moved = await blocks.UpdateNode(
        pb.UpdateNodeRequest(
            node=pb.Node(name=f"nodes/{community}", parent=f"{district}/hetang"),
            update_mask=field_mask_pb2.FieldMask(paths=["parent"]),
        ),
        metadata=admin,
    )
    assert moved.path == f"{district}/hetang/yaowan"
    block = await blocks.GetNode(pb.GetNodeRequest(name=f"{district}/hetang/yaowan/b01"), metadata=admin)
    assert block.display_name == "桃园区块"
    children = await blocks.ListNodes(pb.ListNodesRequest(parent=district), metadata=admin)
    assert [n.code for n in children.nodes] == ["hetang", "wanlou"]
    # A street with an active community cannot retire; an empty one can.
    err = await _error(blocks.RetireNode(pb.RetireNodeRequest(name=f"{district}/hetang"), metadata=admin))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    retired = await blocks.RetireNode(pb.RetireNodeRequest(name=street), metadata=admin)
    assert retired.state == pb.NODE_STATE_RETIRED
    # A block with households is retired, not deleted: its file stays, it takes no new households.
    block = f"{district}/hetang/yaowan/b01"
    home = await blocks.CreateHousehold(
        pb.CreateHouseholdRequest(
            household=pb.Household(code=f"h{uuid.uuid4().hex[:10]}", block=block, address="x")
        ),
        metadata=admin,
    )
    assert (
        await blocks.RetireNode(pb.RetireNodeRequest(name=block), metadata=admin)
    ).state == pb.NODE_STATE_RETIRED
    assert (await blocks.GetHousehold(pb.GetHouseholdRequest(name=home.name), metadata=admin)).block == block
    err = await _error(
        blocks.CreateHousehold(
            pb.CreateHouseholdRequest(
                household=pb.Household(code=f"h{uuid.uuid4().hex[:10]}", block=block, address="y")
            ),
            metadata=admin,
        )
    )
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_one_plus_n_plus_one_is_enforced_and_audited(
    blocks: BlocksServiceStub, identity: IdentityClient
) -> None:
    street, community = await make_tree(blocks, identity.admin_token, {"b01": None})
    block = f"{community}/b01"
    _, _, dispatcher = await identity.make_user(street, [("dispatcher", street)])
    governor, _, _ = await identity.make_user(block)
    other, _, _ = await identity.make_user(block)
    assistant, _, _ = await identity.make_user(block)
    supervisor, _, _ = await identity.make_user(block)

    audit = await blocks.AuditStaffing(pb.AuditStaffingRequest(node=street), metadata=md(dispatcher))
    assert audit.blocks == 1 and audit.complete_blocks == 0
    assert {v.rule for v in audit.violations} >= {"1+N+1: a block has exactly one governor (found 0)"}

    await _staff(blocks, dispatcher, block, governor.name, pb.STAFF_ROLE_GOVERNOR)
    err = await _error(_staff(blocks, dispatcher, block, other.name, pb.STAFF_ROLE_GOVERNOR))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and "1+N+1" in err.details()
    err = await _error(_staff(blocks, dispatcher, block, assistant.name, pb.STAFF_ROLE_ASSISTANT))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "assistant_kind" in err.details()
    await _staff(
        blocks,
        dispatcher,
        block,
        assistant.name,
        pb.STAFF_ROLE_ASSISTANT,
        pb.ASSISTANT_KIND_PARTY_GROUP_LEADER,
    )
    err = await _error(_staff(blocks, dispatcher, block, governor.name, pb.STAFF_ROLE_SUPERVISOR))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and "supervisor cannot be" in err.details()
    await _staff(blocks, dispatcher, block, supervisor.name, pb.STAFF_ROLE_SUPERVISOR)
    audit = await blocks.AuditStaffing(pb.AuditStaffingRequest(node=street), metadata=md(dispatcher))
    assert audit.complete_blocks == 1 and not audit.violations
    # Replacing the governor in one step keeps the block complete.
    await _staff(blocks, dispatcher, block, other.name, pb.STAFF_ROLE_GOVERNOR, replace=True)
    staff = await blocks.ListStaff(pb.ListStaffRequest(node=block), metadata=md(dispatcher))
    assert sorted((s.role, s.user) for s in staff.assignments) == sorted(
        [
            (pb.STAFF_ROLE_GOVERNOR, other.name),
            (pb.STAFF_ROLE_ASSISTANT, assistant.name),
            (pb.STAFF_ROLE_SUPERVISOR, supervisor.name),
        ]
    )
    # Someone outside the caller's view cannot be staffed.
    err = await _error(
        _staff(
            blocks,
            dispatcher,
            block,
            f"users/{uuid.uuid4()}",
            pb.STAFF_ROLE_ASSISTANT,
            pb.ASSISTANT_KIND_LIAISON_CADRE,
        )
    )
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and err.details().startswith("assignment.user")


async def test_removed_governor_is_refused_at_once_and_roles_follow(
    blocks: BlocksServiceStub, identity: IdentityClient
) -> None:
    street, community = await make_tree(blocks, identity.admin_token, {"b01": None, "b02": None})
    block_a, block_b = f"{community}/b01", f"{community}/b02"
    _, _, dispatcher = await identity.make_user(street, [("dispatcher", street)])
    governor, phone, _ = await identity.make_user(block_a)
    assignment = await _staff(blocks, dispatcher, block_a, governor.name, pb.STAFF_ROLE_GOVERNOR)
    mine = await blocks.CreateHousehold(
        pb.CreateHouseholdRequest(
            household=pb.Household(
                code=f"h{uuid.uuid4().hex[:10]}", block=block_a, address="万楼街道窑湾社区3栋401"
            )
        ),
        metadata=md(dispatcher),
    )
    theirs = await blocks.CreateHousehold(
        pb.CreateHouseholdRequest(
            household=pb.Household(
                code=f"h{uuid.uuid4().hex[:10]}", block=block_b, address="万楼街道窑湾社区9栋101"
            )
        ),
        metadata=md(dispatcher),
    )

    async def granted() -> bool:
        reply = await identity.stub.ListRoleBindings(
            ipb.ListRoleBindingsRequest(parent=governor.name), metadata=md(identity.admin_token)
        )
        return [(b.role, b.scope) for b in reply.role_bindings] == [(ipb.ROLE_GOVERNOR, block_a)]

    await eventually(granted, within=20)  # identity mirrored the assignment from the event
    token = (await identity.login(phone, "correct-horse-battery")).access_token
    listed = await blocks.ListHouseholds(pb.ListHouseholdsRequest(node=block_a), metadata=md(token))
    assert [h.id for h in listed.households] == [mine.id]
    # Block B is not theirs.
    for call in (
        blocks.ListHouseholds(pb.ListHouseholdsRequest(node=block_b), metadata=md(token)),
        blocks.GetHousehold(pb.GetHouseholdRequest(name=theirs.name), metadata=md(token)),
    ):
        assert (await _error(call)).code() == grpc.StatusCode.PERMISSION_DENIED
    await blocks.RemoveStaff(pb.RemoveStaffRequest(name=assignment.name), metadata=md(dispatcher))
    # The very next call with the same, unexpired token is refused.
    err = await _error(blocks.ListHouseholds(pb.ListHouseholdsRequest(node=block_a), metadata=md(token)))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED

    async def revoked() -> bool:
        reply = await identity.stub.ListRoleBindings(
            ipb.ListRoleBindingsRequest(parent=governor.name), metadata=md(identity.admin_token)
        )
        return not reply.role_bindings

    await eventually(revoked, within=20)


async def test_locate_block_inside_edge_outside(blocks: BlocksServiceStub, identity: IdentityClient) -> None:
    # Two neighbouring cells far from other tests' cells, so the shared index has no rivals here.
    col = 500 + (uuid.uuid4().int % 1000) * 3
    _street, community = await make_tree(
        blocks, identity.admin_token, {"b01": square(col, 0), "b02": square(col + 1, 0)}
    )
    m = md(identity.admin_token)

    async def locate(c: float, r: float) -> str:
        lat, lng = point(c, r)
        return (await blocks.LocateBlock(pb.LocateBlockRequest(lat=lat, lng=lng), metadata=m)).block.path

    assert await locate(col + 0.5, 0.5) == f"{community}/b01"
    assert await locate(col + 1.5, 0.5) == f"{community}/b02"
    # On the shared edge: always the block whose path sorts first.
    assert {await locate(col + 1, 0.5) for _ in range(5)} == {f"{community}/b01"}
    lat, lng = point(col + 5, 5)
    err = await _error(blocks.LocateBlock(pb.LocateBlockRequest(lat=lat, lng=lng), metadata=m))
    assert err.code() == grpc.StatusCode.NOT_FOUND
    err = await _error(blocks.LocateBlock(pb.LocateBlockRequest(lat=91, lng=0), metadata=m))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and err.details().startswith("lat")


async def test_coverage_audit_finds_planted_overlap_and_gap(
    blocks: BlocksServiceStub, identity: IdentityClient
) -> None:
    # The street is a 3x1 strip: b01 covers cells 0-1, b02 covers cell 1 again (an overlap),
    # and cell 2 is left bare (a gap).
    street, community = await make_tree(
        blocks,
        identity.admin_token,
        {"b01": square(-3000, 0, cols=2), "b02": square(-2999, 0)},
        street_boundary=square(-3000, 0, cols=3),
    )
    report = await blocks.AuditCoverage(
        pb.AuditCoverageRequest(name=street), metadata=md(identity.admin_token)
    )
    assert not report.complete and report.blocks == 2
    [overlap] = report.overlaps
    assert (overlap.block_a, overlap.block_b) == (f"{community}/b01", f"{community}/b02")
    cell = report.parent_area_m2 / 3
    assert overlap.area_m2 == pytest.approx(cell, rel=0.05)
    [gap] = report.gaps
    assert gap.area_m2 == pytest.approx(cell, rel=0.05)


async def test_resident_sees_only_their_household(
    blocks: BlocksServiceStub, identity: IdentityClient
) -> None:
    _street, community = await make_tree(blocks, identity.admin_token, {"b01": None})
    block = f"{community}/b01"
    resident, _phone, token = await identity.make_user(block, [("resident", block)])
    admin = md(identity.admin_token)
    home = await blocks.CreateHousehold(
        pb.CreateHouseholdRequest(
            household=pb.Household(
                code=f"h{uuid.uuid4().hex[:10]}",
                block=block,
                address="窑湾社区1栋101",
                tags=[pb.VULNERABILITY_TAG_ELDERLY_ALONE],
                residents=[
                    pb.Resident(
                        display_name="刘奶奶", relation=pb.RELATION_HEAD, birth_year=1941, user=resident.name
                    )
                ],
            )
        ),
        metadata=admin,
    )
    neighbour = await blocks.CreateHousehold(
        pb.CreateHouseholdRequest(
            household=pb.Household(code=f"h{uuid.uuid4().hex[:10]}", block=block, address="窑湾社区1栋102")
        ),
        metadata=admin,
    )
    own = await blocks.ListHouseholds(pb.ListHouseholdsRequest(), metadata=md(token))
    assert [h.id for h in own.households] == [home.id]
    got = await blocks.GetHousehold(pb.GetHouseholdRequest(name=home.name), metadata=md(token))
    assert got.residents[0].display_name == "刘奶奶"
    assert (
        await _error(blocks.GetHousehold(pb.GetHouseholdRequest(name=neighbour.name), metadata=md(token)))
    ).code() == (grpc.StatusCode.PERMISSION_DENIED)
    assert (
        await _error(blocks.ListHouseholds(pb.ListHouseholdsRequest(node=block), metadata=md(token)))
    ).code() == (grpc.StatusCode.PERMISSION_DENIED)


async def test_visits_and_statistics(blocks: BlocksServiceStub, identity: IdentityClient) -> None:
    street, community = await make_tree(blocks, identity.admin_token, {"b01": None})
    block = f"{community}/b01"
    admin = md(identity.admin_token)
    home = await blocks.CreateHousehold(
        pb.CreateHouseholdRequest(
            household=pb.Household(
                code=f"h{uuid.uuid4().hex[:10]}",
                block=block,
                address="窑湾社区2栋201",
                tags=[pb.VULNERABILITY_TAG_SUBSISTENCE_ALLOWANCE],
                residents=[
                    pb.Resident(display_name="王伟", relation=pb.RELATION_HEAD),
                    pb.Resident(display_name="李娜", relation=pb.RELATION_SPOUSE, phone="13912345678"),
                ],
            ),
            request_id="visit-test-" + uuid.uuid4().hex,
        ),
        metadata=admin,
    )
    request_id = uuid.uuid4().hex
    visit = pb.Visit(household=home.name, notes="走访：楼道灯坏了", issues_found=["楼道灯损坏"])
    first = await blocks.RecordVisit(
        pb.RecordVisitRequest(visit=visit, request_id=request_id), metadata=admin
    )
    again = await blocks.RecordVisit(
        pb.RecordVisitRequest(visit=visit, request_id=request_id), metadata=admin
    )
    assert first.name == again.name
    stats = await blocks.GetNodeStatistics(pb.GetNodeStatisticsRequest(name=street), metadata=admin)
    assert (stats.blocks, stats.households, stats.residents, stats.vulnerable_households, stats.visits) == (
        1,
        1,
        2,
        1,
        1,
    )
    err = await _error(
        blocks.CreateHousehold(
            pb.CreateHouseholdRequest(household=pb.Household(code="bad code!", block=block, address="x")),
            metadata=admin,
        )
    )
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and err.details().startswith("household.code")
    err = await _error(
        blocks.CreateHousehold(
            pb.CreateHouseholdRequest(
                household=pb.Household(
                    code="h-idnum",
                    block=block,
                    address="x",
                    residents=[
                        pb.Resident(
                            display_name="张三", relation=pb.RELATION_HEAD, id_suffix="430302199001011234"
                        )
                    ],
                )
            ),
            metadata=admin,
        )
    )
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "id_suffix" in err.details()
