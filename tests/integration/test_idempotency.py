"""One idempotency semantics on every service (govkit.idempotency), on both backends:
a retry with the same request id and body returns the first response; the same id with another
body is INVALID_ARGUMENT (422 at the gateway); concurrent duplicates make one effect and all get
the first call's response."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Awaitable, Callable
from typing import TypeVar

import grpc
import httpx
from google.protobuf import field_mask_pb2
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2

from gov.blocks.v1 import blocks_pb2 as bpb
from gov.blocks.v1.blocks_pb2_grpc import BlocksServiceStub
from gov.identity.v1 import identity_pb2 as ipb
from gov.tickets.v1 import tickets_pb2 as tpb
from gov.tickets.v1.tickets_pb2_grpc import TicketsServiceStub
from govkit.devstack import Stack
from tests.support.blocks import make_tree, square
from tests.support.identity import PASSWORD, IdentityClient, md, random_phone
from tests.support.tickets import World, new_ticket

M = TypeVar("M", bound=Message)

# Enough callers to overlap on a busy machine; each waits on the first one's key.
CONCURRENT = 8


async def _rejected_key(call: Awaitable[Message]) -> str:
    """The request id error of a call that must fail with INVALID_ARGUMENT on `request_id`."""
    try:
        await call
    except grpc.aio.AioRpcError as err:
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, err.details()
        fields = []
        for key, value in err.trailing_metadata() or ():
            if key == "grpc-status-details-bin":
                status = status_pb2.Status.FromString(value)
                for detail in status.details:
                    bad = error_details_pb2.BadRequest()
                    assert detail.Unpack(bad)
                    fields += [v.field for v in bad.field_violations]
        assert fields == ["request_id"], err.details()
        return str(err.details())
    raise AssertionError("a reused request id with another body was accepted")


async def _all_at_once(call: Callable[[], Awaitable[M]]) -> list[M]:
    """CONCURRENT identical calls in flight together; every one must succeed."""
    return list(await asyncio.gather(*(call() for _ in range(CONCURRENT))))


def _same(replies: list[M]) -> M:
    first = replies[0]
    assert all(
        r.SerializeToString(deterministic=True) == first.SerializeToString(deterministic=True)
        for r in replies
    )
    return first


# ----------------------------------------------------------------------------- identity


def _new_user_request(scope: str = "yuhu/wanlou") -> ipb.CreateUserRequest:
    return ipb.CreateUserRequest(
        user=ipb.User(phone=random_phone(), display_name="钱七", scope=scope),
        password=PASSWORD,
        request_id=str(uuid.uuid4()),
    )


async def test_create_user_retry_returns_the_first_response(identity: IdentityClient) -> None:
    admin = md(identity.admin_token)
    request = _new_user_request()
    first = await identity.stub.CreateUser(request, metadata=admin)
    # Changed since: a retry still answers what the first call answered.
    await identity.stub.UpdateUser(
        ipb.UpdateUserRequest(
            user=ipb.User(name=first.name, display_name="钱八"),
            update_mask=field_mask_pb2.FieldMask(paths=["display_name"]),
        ),
        metadata=admin,
    )
    again = await identity.stub.CreateUser(request, metadata=admin)
    assert again == first and again.display_name == "钱七"


async def test_create_user_same_key_other_body_is_invalid_argument(identity: IdentityClient) -> None:
    admin = md(identity.admin_token)
    request = _new_user_request()
    first = await identity.stub.CreateUser(request, metadata=admin)
    other = ipb.CreateUserRequest()
    other.CopyFrom(request)
    other.user.display_name = "孙九"
    detail = await _rejected_key(identity.stub.CreateUser(other, metadata=admin))
    assert "different request" in detail
    # The key still answers its own request.
    assert (await identity.stub.CreateUser(request, metadata=admin)).id == first.id
    # Keys are per caller: another caller's same key is a new request (here: the phone is taken).
    _, _, token = await identity.make_user("yuhu", [("leader", "yuhu")])
    try:
        await identity.stub.CreateUser(request, metadata=md(token))
        raise AssertionError("another caller replayed someone else's key")
    except grpc.aio.AioRpcError as err:
        assert err.code() == grpc.StatusCode.ALREADY_EXISTS, err.details()


async def test_concurrent_create_user_duplicates_get_one_user(identity: IdentityClient) -> None:
    admin = md(identity.admin_token)
    request = _new_user_request()
    user = _same(await _all_at_once(lambda: identity.stub.CreateUser(request, metadata=admin)))
    listed = await identity.stub.ListUsers(ipb.ListUsersRequest(query=request.user.phone), metadata=admin)
    assert [u.id for u in listed.users] == [user.id]


# ----------------------------------------------------------------------------- blocks


async def _block(blocks: BlocksServiceStub, token: str) -> str:
    # East of the columns make_world draws from, so no other test's block overlaps.
    col, row = random.randrange(60_100, 67_000, 2), random.randrange(-20_000, -10)
    _, community = await make_tree(blocks, token, {"b01": square(col, row)})
    return f"{community}/b01"


def _new_household_request(block: str) -> bpb.CreateHouseholdRequest:
    return bpb.CreateHouseholdRequest(
        household=bpb.Household(
            code=f"h{uuid.uuid4().hex[:10]}",
            block=block,
            address="窑湾社区5栋101",
            residents=[bpb.Resident(display_name="周一", relation=bpb.RELATION_HEAD)],
        ),
        request_id=str(uuid.uuid4()),
    )


async def test_blocks_household_and_visit_idempotency(
    blocks: BlocksServiceStub, identity: IdentityClient
) -> None:
    admin = md(identity.admin_token)
    block = await _block(blocks, identity.admin_token)

    request = _new_household_request(block)
    home = _same(await _all_at_once(lambda: blocks.CreateHousehold(request, metadata=admin)))
    assert (await blocks.CreateHousehold(request, metadata=admin)) == home
    listed = await blocks.ListHouseholds(bpb.ListHouseholdsRequest(node=block), metadata=admin)
    assert [h.name for h in listed.households] == [home.name]
    other = bpb.CreateHouseholdRequest()
    other.CopyFrom(request)
    other.household.address = "窑湾社区5栋102"
    await _rejected_key(blocks.CreateHousehold(other, metadata=admin))

    visit = bpb.RecordVisitRequest(
        visit=bpb.Visit(household=home.name, notes="走访", issues_found=["楼道灯损坏"]),
        request_id=str(uuid.uuid4()),
    )
    # Visits have no natural unique key: only the request id stops duplicates.
    recorded = _same(await _all_at_once(lambda: blocks.RecordVisit(visit, metadata=admin)))
    assert (await blocks.RecordVisit(visit, metadata=admin)) == recorded
    visits = await blocks.ListVisits(bpb.ListVisitsRequest(household=home.name), metadata=admin)
    assert [v.name for v in visits.visits] == [recorded.name]
    other_visit = bpb.RecordVisitRequest()
    other_visit.CopyFrom(visit)
    other_visit.visit.notes = "再次走访"
    await _rejected_key(blocks.RecordVisit(other_visit, metadata=admin))


# ----------------------------------------------------------------------------- tickets


async def test_create_ticket_idempotency(tickets: TicketsServiceStub, world: World) -> None:
    resident = world.staff["resident"].md
    request = tpb.CreateTicketRequest(ticket=new_ticket(world), request_id=str(uuid.uuid4()))
    ticket = _same(await _all_at_once(lambda: tickets.CreateTicket(request, metadata=resident)))
    listed = await tickets.ListTickets(
        tpb.ListTicketsRequest(category=f"categories/{world.category}"), metadata=world.staff["dispatcher"].md
    )
    assert [t.name for t in listed.tickets] == [ticket.name]

    # Acted on since: a retry still answers the ticket as it was created.
    accepted = await tickets.TransitionTicket(
        tpb.TransitionTicketRequest(name=ticket.name, action=tpb.ACTION_ACCEPT),
        metadata=world.staff["dispatcher"].md,
    )
    assert accepted.state == tpb.TICKET_STATE_ACCEPTED
    again = await tickets.CreateTicket(request, metadata=resident)
    assert again == ticket and again.state == tpb.TICKET_STATE_SUBMITTED

    other = tpb.CreateTicketRequest()
    other.CopyFrom(request)
    other.ticket.title = "另一件事"
    await _rejected_key(tickets.CreateTicket(other, metadata=resident))


# ----------------------------------------------------------------------------- gateway


async def test_gateway_answers_a_reused_key_with_422(stack: Stack, identity: IdentityClient) -> None:
    headers = {"Authorization": f"Bearer {identity.admin_token}", "Idempotency-Key": uuid.uuid4().hex}
    body = {"phone": random_phone(), "display_name": "吴十", "scope": "yuhu/wanlou", "password": PASSWORD}
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=30) as http:
        created = await http.post("/api/v1/users", json=body, headers=headers)
        assert created.status_code == 201, created.text
        retried = await http.post("/api/v1/users", json=body, headers=headers)
        assert retried.status_code == 201 and retried.json() == created.json()
        reused = await http.post("/api/v1/users", json={**body, "display_name": "郑十一"}, headers=headers)
    assert reused.status_code == 422, reused.text
    assert reused.headers["content-type"] == "application/problem+json"
    problem = reused.json()
    assert problem["type"] == "/problems/idempotency-key-reused" and problem["status"] == 422
    assert [e["field"] for e in problem["errors"]] == ["Idempotency-Key"]
