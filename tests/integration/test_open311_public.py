"""Open311 reads without an api_key: public categories only, public fields only, numbers masked.

GeoReport v2 lets anyone `GET requests` and `GET requests/{id}`; ecosystem clients list requests that
way. What they get is the tickets service's public view (ListPublicTickets / GetPublicTicket):
tickets of categories marked public, no contact data, no household, phone and id numbers masked.
With a key an app also sees its own reports, private categories included.
"""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator

import grpc
import httpx
import pytest
import pytest_asyncio

from gov.blocks.v1 import blocks_pb2 as bpb
from gov.blocks.v1.blocks_pb2_grpc import BlocksServiceStub
from gov.tickets.v1 import tickets_pb2 as pb
from gov.tickets.v1.tickets_pb2_grpc import TicketsServiceStub
from tests.support.identity import IdentityClient, client_credentials, md
from tests.support.open311 import V2
from tests.support.tickets import World, make_category

API = "/api/v1"
PHONE = "13812345678"
CONTACT_PHONE = "13900139000"
ID_NUMBER = "43030219900101123X"
CONTACT_NAME = "欧阳娜娜"


async def _api_key(identity: IdentityClient, name: str) -> str:
    return client_credentials(await identity.make_service_account(name))


async def _make_public(http: httpx.AsyncClient, identity: IdentityClient, code: str, public: bool) -> None:
    reply = await http.patch(
        f"{API}/categories/{code}",
        json={"public": public},
        headers={"Authorization": f"Bearer {identity.admin_token}"},
    )
    assert reply.status_code == 200, reply.text
    assert reply.json()["public"] is public


@pytest_asyncio.fixture
async def public_code(
    http: httpx.AsyncClient, tickets: TicketsServiceStub, identity: IdentityClient
) -> AsyncIterator[str]:
    """A category made public through the REST API, private again afterwards: other tests' apps
    list requests with a key, and would see this one's public tickets beside their own."""
    code = await make_category(tickets, identity.admin_token)
    # A new category is private until someone decides otherwise.
    created = await tickets.GetCategory(pb.GetCategoryRequest(name=f"categories/{code}"))
    assert created.public is False
    await _make_public(http, identity, code, True)
    try:
        yield code
    finally:
        await _make_public(http, identity, code, False)


async def _report(http: httpx.AsyncClient, world: World, api_key: str, code: str, description: str) -> str:
    lat, lng = world.points[0]
    reply = await http.post(
        f"{V2}/requests.json",
        data={
            "api_key": api_key,
            "service_code": code,
            "lat": lat,
            "long": lng,
            "address_string": f"窑湾路3号 门口 联系{PHONE}",
            "description": description,
            "first_name": "娜娜",
            "last_name": "欧阳",
            "phone": CONTACT_PHONE,
            "attribute[building]": "3栋",
        },
    )
    assert reply.status_code == 200, reply.text
    return reply.json()[0]["service_request_id"]


def _ids(reply: httpx.Response) -> list[str]:
    assert reply.status_code == 200, reply.text
    return [r["service_request_id"] for r in reply.json()]


def _assert_nothing_private(body: str) -> None:
    for secret in (PHONE, CONTACT_PHONE, ID_NUMBER, CONTACT_NAME, "娜娜", "13900139000", "8613900139000"):
        assert secret not in body, secret


async def test_public_view_without_a_key(
    http: httpx.AsyncClient,
    tickets: TicketsServiceStub,
    blocks: BlocksServiceStub,
    identity: IdentityClient,
    world: World,
    public_code: str,
) -> None:
    admin = md(identity.admin_token)
    private_code = await make_category(tickets, identity.admin_token)
    app = await _api_key(identity, "Open311 app")

    public_id = await _report(http, world, app, public_code, f"路灯不亮，电话{PHONE}，身份证{ID_NUMBER}")
    private_id = await _report(http, world, app, private_code, f"邻居吵架，电话{PHONE}")
    # A public-category report filed against a household: its address is someone's home.
    home = await blocks.CreateHousehold(
        bpb.CreateHouseholdRequest(
            household=bpb.Household(code=f"h{uuid.uuid4().hex[:10]}", block=world.blocks[0], address="3栋502")
        ),
        metadata=admin,
    )
    at_home = await tickets.CreateTicket(
        pb.CreateTicketRequest(
            ticket=pb.Ticket(
                category=f"categories/{public_code}",
                source=pb.TICKET_SOURCE_HOTLINE,
                title="楼道灯不亮",
                description="楼道灯不亮",
                location=pb.Location(household=f"households/{home.id}", address="3栋502 欧阳娜娜家"),
                contact=pb.Contact(display_name=CONTACT_NAME, phone=CONTACT_PHONE),
                attributes=[pb.TicketAttribute(code="building", values=["3栋"])],
            )
        ),
        metadata=admin,
    )
    home_id = at_home.name.removeprefix("tickets/")
    # Handled and resolved, with a note that carries a phone number.
    name = f"tickets/{public_id}"
    lead = world.units["lead"]
    for who, step in (
        ("dispatcher", pb.TransitionTicketRequest(action=pb.ACTION_ACCEPT)),
        ("dispatcher", pb.TransitionTicketRequest(action=pb.ACTION_DISPATCH, lead_unit=f"units/{lead}")),
        ("unit:lead", pb.TransitionTicketRequest(action=pb.ACTION_ACKNOWLEDGE)),
        ("unit:lead", pb.TransitionTicketRequest(action=pb.ACTION_START)),
        ("unit:lead", pb.TransitionTicketRequest(action=pb.ACTION_RESOLVE, note=f"已修复，回访{PHONE}")),
    ):
        step.name = name
        await tickets.TransitionTicket(step, metadata=world.staff[who].md)

    codes = f"{public_code},{private_code}"
    listed = await http.get(f"{V2}/requests.json", params={"service_code": codes})
    assert set(_ids(listed)) == {public_id, home_id}
    _assert_nothing_private(listed.text)
    by_id = {r["service_request_id"]: r for r in listed.json()}
    report = by_id[public_id]
    assert report["description"] == "路灯不亮，电话***********，身份证******************"
    assert report["address"] == "窑湾路3号 门口 联系***********"
    assert report["lat"] is not None and report["address_id"] is None
    assert report["service_code"] == public_code and report["status"] == "closed"
    assert report["status_notes"] == "resolved: 已修复，回访***********"
    assert report["agency_responsible"] == f"单位{lead}"  # the lead unit's name, from the public view
    assert by_id[home_id]["address"] is None and by_id[home_id]["address_id"] is None

    xml = await http.get(f"{V2}/requests.xml", params={"service_code": codes})
    assert xml.status_code == 200 and xml.headers["content-type"] == "text/xml"
    root = ET.fromstring(xml.content)  # noqa: S314 - the gateway under test made it
    assert {r.findtext("service_request_id") for r in root} == {public_id, home_id}
    _assert_nothing_private(xml.text)

    one = await http.get(f"{V2}/requests/{public_id}.json")
    assert _ids(one) == [public_id] and one.json()[0]["description"] == report["description"]
    # Private, or not there at all: the same 404, so nothing tells them apart.
    for hidden in (private_id, str(uuid.uuid4())):
        reply = await http.get(f"{V2}/requests/{hidden}.json")
        assert reply.status_code == 404 and reply.json()[0]["code"] == 404
        assert PHONE not in reply.text
    both = await http.get(f"{V2}/requests.json", params={"service_request_id": f"{private_id},{public_id}"})
    assert _ids(both) == [public_id]

    # The app that filed them sees its own reports in full, the private one too, each once.
    mine = await http.get(f"{V2}/requests.json", params={"service_code": codes, "api_key": app})
    assert sorted(_ids(mine)) == sorted([public_id, private_id, home_id])
    own = {r["service_request_id"]: r for r in mine.json()}
    assert PHONE in own[private_id]["description"] and PHONE in own[public_id]["description"]
    assert own[home_id]["address"] is None  # not the app's: the public view
    assert _ids(await http.get(f"{V2}/requests/{private_id}.json", params={"api_key": app})) == [private_id]
    # Another app sees only the public view.
    other = await _api_key(identity, "Another app")
    theirs = await http.get(f"{V2}/requests.json", params={"service_code": codes, "api_key": other})
    assert set(_ids(theirs)) == {public_id, home_id}
    _assert_nothing_private(theirs.text)
    reply = await http.get(f"{V2}/requests/{private_id}.json", params={"api_key": other})
    assert reply.status_code == 404

    # Public is decided per category and takes effect at once.
    await _make_public(http, identity, public_code, False)
    assert _ids(await http.get(f"{V2}/requests.json", params={"service_code": codes})) == []
    assert (await http.get(f"{V2}/requests/{public_id}.json")).status_code == 404


async def test_public_rpcs_need_no_caller_and_carry_no_private_field(
    http: httpx.AsyncClient,
    tickets: TicketsServiceStub,
    identity: IdentityClient,
    world: World,
    public_code: str,
) -> None:
    private_code = await make_category(tickets, identity.admin_token)
    app = await _api_key(identity, "Open311 app")
    public_id = await _report(http, world, app, public_code, f"井盖缺失 {PHONE}")
    private_id = await _report(http, world, app, private_code, f"低保申请 {PHONE}")

    # No metadata at all: the view is open to anyone, and only public categories are in it.
    reply = await tickets.ListPublicTickets(pb.ListPublicTicketsRequest(node=world.street, page_size=200))
    names = {t.name for t in reply.tickets}
    assert f"tickets/{public_id}" in names and f"tickets/{private_id}" not in names
    assert all(t.category == f"categories/{public_code}" for t in reply.tickets)
    found = await tickets.GetPublicTicket(pb.GetPublicTicketRequest(name=f"tickets/{public_id}"))
    assert found.description == "井盖缺失 ***********" and found.has_point
    assert PHONE not in str(found) and CONTACT_PHONE not in str(found)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await tickets.GetPublicTicket(pb.GetPublicTicketRequest(name=f"tickets/{private_id}"))
    assert refused.value.code() == grpc.StatusCode.NOT_FOUND
    # A private category asked for by name lists nothing.
    query = pb.ListPublicTicketsRequest(category=f"categories/{private_code}")
    empty = await tickets.ListPublicTickets(query)
    assert list(empty.tickets) == []
    # The full ticket still needs a caller.
    with pytest.raises(grpc.aio.AioRpcError) as anonymous:
        await tickets.GetTicket(pb.GetTicketRequest(name=f"tickets/{public_id}"))
    assert anonymous.value.code() == grpc.StatusCode.UNAUTHENTICATED
