"""A node move reaches every service that stores paths, through real processes.

Blocks moves a block (then a street) and announces it; identity moves the role bindings and
accounts scoped below it, tickets the tickets, units and district sums. The block's governor keeps
their tickets and households, the old path grants nothing, statistics follow.
"""

from __future__ import annotations

import uuid

import grpc
import pytest
from google.protobuf import field_mask_pb2

from gov.blocks.v1 import blocks_pb2 as bpb
from gov.blocks.v1.blocks_pb2_grpc import BlocksServiceStub
from gov.identity.v1 import identity_pb2 as ipb
from gov.tickets.v1 import events_pb2 as tickets_events
from gov.tickets.v1 import tickets_pb2 as tpb
from gov.tickets.v1.tickets_pb2_grpc import TicketsServiceStub
from govkit.devstack import Stack
from govkit.events import unpack_payload
from tests.support.blocks import make_tree
from tests.support.events import events_about
from tests.support.identity import PASSWORD, IdentityClient, md
from tests.support.tickets import make_world, new_ticket
from tests.support.waiting import eventually


async def _move(blocks: BlocksServiceStub, token: str, path: str, parent: str) -> bpb.Node:
    return await blocks.UpdateNode(
        bpb.UpdateNodeRequest(
            node=bpb.Node(name=f"nodes/{path}", parent=parent),
            update_mask=field_mask_pb2.FieldMask(paths=["parent"]),
        ),
        metadata=md(token),
    )


async def test_a_moved_block_keeps_its_governor_and_tickets_and_the_old_path_grants_nothing(
    stack: Stack, blocks: BlocksServiceStub, tickets: TicketsServiceStub, identity: IdentityClient
) -> None:
    admin = md(identity.admin_token)
    world = await make_world(blocks, tickets, identity)
    old_block, other_block = world.blocks
    old_community = old_block.rsplit("/", 1)[0]
    resident = md(world.staff["resident"].token)
    # The block's governor, staffed in blocks (identity grants the role from the event).
    governor, phone, _ = await identity.make_user(old_block)
    await blocks.AssignStaff(
        bpb.AssignStaffRequest(
            assignment=bpb.StaffAssignment(block=old_block, user=governor.name, role=bpb.STAFF_ROLE_GOVERNOR)
        ),
        metadata=admin,
    )
    # A dispatcher of the street whose password the test knows (to log in again after the moves).
    dispatcher, dispatcher_phone, _ = await identity.make_user(world.street, [("dispatcher", world.street)])
    household = await blocks.CreateHousehold(
        bpb.CreateHouseholdRequest(
            household=bpb.Household(code=f"h{uuid.uuid4().hex[:10]}", block=old_block, address="3栋401")
        ),
        metadata=admin,
    )
    reported = [
        await tickets.CreateTicket(tpb.CreateTicketRequest(ticket=new_ticket(world, 0)), metadata=resident)
        for _ in range(2)
    ]
    await tickets.TransitionTicket(
        tpb.TransitionTicketRequest(name=reported[0].name, action=tpb.ACTION_ACCEPT),
        metadata=md(world.staff["dispatcher"].token),
    )
    await blocks.CreateBuilding(
        bpb.CreateBuildingRequest(building=bpb.Building(block=other_block, code="n9", display_name="9栋")),
        metadata=admin,
    )
    elsewhere = await tickets.CreateTicket(
        tpb.CreateTicketRequest(ticket=new_ticket(world, 1)), metadata=resident
    )

    async def total(node: str) -> int:
        figures = await tickets.GetTicketStatistics(tpb.GetTicketStatisticsRequest(node=node), metadata=admin)
        return figures.total

    async def bindings(user: str) -> list[tuple[int, str]]:
        reply = await identity.stub.ListRoleBindings(ipb.ListRoleBindingsRequest(parent=user), metadata=admin)
        return sorted((b.role, b.scope) for b in reply.role_bindings)

    async def staffed() -> bool:
        return await bindings(governor.name) == [(ipb.ROLE_GOVERNOR, old_block)]

    await eventually(staffed, every=0.2)
    before = {node: await total(node) for node in (world.district, world.street, old_community, old_block)}
    assert before[old_block] == 2 and before[old_community] == 3

    # Move the block to a community of another district.
    _street, new_community = await make_tree(blocks, identity.admin_token, {})
    new_district = new_community.split("/")[0]
    moved = await _move(blocks, identity.admin_token, old_block, new_community)
    new_block = moved.path
    assert new_block == f"{new_community}/b01"

    async def followed() -> bool:
        got = await tickets.GetTicket(tpb.GetTicketRequest(name=reported[1].name), metadata=admin)
        return got.node == new_block and await bindings(governor.name) == [(ipb.ROLE_GOVERNOR, new_block)]

    await eventually(followed, every=0.2)
    # Every role held at the block moved with it: the world's own governor and resident too.
    assert await bindings(world.staff["governor"].name) == [(ipb.ROLE_GOVERNOR, new_block)]
    assert await bindings(world.staff["resident"].name) == [(ipb.ROLE_RESIDENT, new_block)]
    user = await identity.stub.GetUser(ipb.GetUserRequest(name=governor.name), metadata=admin)
    assert user.scope == new_block  # the account is administered where its block now is

    # The governor, on a fresh token, keeps the block's tickets and households.
    token = md((await identity.login(phone, PASSWORD)).access_token)
    listed = await tickets.ListTickets(tpb.ListTicketsRequest(node=new_block), metadata=token)
    assert sorted(t.name for t in listed.tickets) == sorted(t.name for t in reported)
    got = await tickets.GetTicket(tpb.GetTicketRequest(name=reported[0].name), metadata=token)
    assert (got.node, got.street, got.district) == (new_block, new_block.rsplit("/", 2)[0], new_district)
    homes = await blocks.ListHouseholds(bpb.ListHouseholdsRequest(node=new_block), metadata=token)
    assert [h.id for h in homes.households] == [household.id]

    # Statistics follow, at every level and in both districts' month sums.
    assert await total(new_block) == 2 and await total(new_community) == 2 and await total(new_district) == 2
    assert await total(old_block) == 0
    for node in (world.district, world.street, old_community):
        assert await total(node) == before[node] - 2, node

    # The old path grants nothing: a block created there later is not the governor's.
    await blocks.CreateNode(
        bpb.CreateNodeRequest(
            node=bpb.Node(code="b01", parent=old_community, kind=bpb.NODE_KIND_BLOCK, display_name="新区块")
        ),
        metadata=admin,
    )
    fresh = await tickets.CreateTicket(
        tpb.CreateTicketRequest(
            ticket=tpb.Ticket(
                category=f"categories/{world.category}",
                location=tpb.Location(address="新区块1栋"),
                node=old_block,
                attributes=[tpb.TicketAttribute(code="building", values=["1栋"])],
            )
        ),
        metadata=md(world.staff["dispatcher"].token),
    )
    assert fresh.node == old_block
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await tickets.GetTicket(tpb.GetTicketRequest(name=fresh.name), metadata=token)
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await blocks.ListHouseholds(bpb.ListHouseholdsRequest(node=old_block), metadata=token)
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    relocated = await events_about(stack.nats_url, "tickets.v1.tickets.relocated", f"nodes/{new_block}")
    assert [
        (r.previous_path, r.path, r.tickets, r.units)
        for r in (unpack_payload(e, tickets_events.TicketsRelocated) for _, e in relocated)
    ] == [(old_block, new_block, 2, 0)]

    # Then the whole street moves to a third district: its units and dispatcher go along.
    third = f"d{uuid.uuid4().hex[:8]}"
    await blocks.CreateNode(
        bpb.CreateNodeRequest(node=bpb.Node(code=third, kind=bpb.NODE_KIND_DISTRICT, display_name="岳塘区")),
        metadata=admin,
    )
    street_before = await total(world.street)
    district_before = await total(world.district)
    new_street = (await _move(blocks, identity.admin_token, world.street, third)).path

    async def street_followed() -> bool:
        got = await tickets.GetTicket(tpb.GetTicketRequest(name=elsewhere.name), metadata=admin)
        return got.node == f"{new_street}/{other_block.split('/', 2)[2]}"

    await eventually(street_followed, every=0.2)
    # Blocks moved everything below the street, the buildings of its blocks included.
    moved_block = f"{new_street}/{other_block.split('/', 2)[2]}"
    buildings = await blocks.ListBuildings(bpb.ListBuildingsRequest(block=moved_block), metadata=admin)
    assert [b.name for b in buildings.buildings] == [f"nodes/{moved_block}/buildings/n9"]
    lead = await tickets.GetUnit(tpb.GetUnitRequest(name=f"units/{world.units['lead']}"), metadata=admin)
    assert lead.node == new_street
    department = await tickets.GetUnit(
        tpb.GetUnitRequest(name=f"units/{world.units['department']}"), metadata=admin
    )
    assert department.node == world.district  # it serves the district, which did not move
    assert await total(new_street) == street_before and await total(third) == street_before
    assert await total(world.district) == district_before - street_before
    assert await total(world.street) == 0

    async def dispatcher_moved() -> bool:
        return await bindings(dispatcher.name) == [(ipb.ROLE_DISPATCHER, new_street)]

    await eventually(dispatcher_moved, every=0.2)
    token = md((await identity.login(dispatcher_phone, PASSWORD)).access_token)
    listed = await tickets.ListTickets(tpb.ListTicketsRequest(node=new_street), metadata=token)
    assert {t.name for t in listed.tickets} == {elsewhere.name, fresh.name}
