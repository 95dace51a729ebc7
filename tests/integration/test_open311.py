"""Open311 GeoReport v2 on the gateway, end to end: discovery, services and definitions, api_key,
reporting, queries and their filters, errors in both formats."""

from __future__ import annotations

import datetime as dt
import json
import uuid
import xml.etree.ElementTree as ET

import httpx
import pytest
import pytest_asyncio
from google.protobuf import field_mask_pb2

from gov.blocks.v1 import blocks_pb2 as bpb
from gov.blocks.v1.blocks_pb2_grpc import BlocksServiceStub
from gov.identity.v1 import identity_pb2 as ipb
from gov.tickets.v1 import tickets_pb2 as pb
from gov.tickets.v1.tickets_pb2_grpc import TicketsServiceStub
from govkit.devstack import Stack
from tests.support.identity import IdentityClient, client_credentials, md
from tests.support.open311 import ATTRIBUTE, CREATED, REQUEST, SERVICE, V2, parse_xml, tags
from tests.support.tickets import World, hours

CST = dt.timezone(dt.timedelta(hours=8))


def xml(reply: httpx.Response) -> ET.Element:
    assert reply.headers["content-type"] == "text/xml", reply.text
    return parse_xml(reply.content)


def assert_json_error(reply: httpx.Response, status: int) -> str:
    assert reply.status_code == status, reply.text
    assert reply.headers["content-type"] == "application/json"
    body = reply.json()
    assert len(body) == 1 and list(body[0]) == ["code", "description"] and body[0]["code"] == status
    return body[0]["description"]


def assert_xml_error(reply: httpx.Response, status: int) -> str:
    assert reply.status_code == status, reply.text
    root = xml(reply)
    assert root.tag == "errors" and tags(root) == ["error"] and tags(root[0]) == ["code", "description"]
    assert root[0].findtext("code") == str(status)
    return root[0].findtext("description") or ""


@pytest_asyncio.fixture(scope="module")
async def service_code(tickets: TicketsServiceStub, identity: IdentityClient, world: World) -> str:
    """A category with a required number, a multi-value list and an optional datetime."""
    code = f"o311-{uuid.uuid4().hex[:8]}"
    await tickets.CreateCategory(
        pb.CreateCategoryRequest(
            category=pb.Category(
                code=code,
                display_name="路灯不亮",
                group="市政设施",
                description="Street light out <& flickering>",
                keywords=["路灯", "照明"],
                default_center=pb.UNIT_KIND_RAPID_RESPONSE,
                priority=pb.PRIORITY_NORMAL,
                matter_class=pb.MATTER_CLASS_PUBLIC,
                kind=pb.TICKET_KIND_GENERAL,
                attributes=[
                    pb.AttributeDefinition(
                        code="poles",
                        display_name="几根灯杆",
                        description="count the dark poles",
                        type=pb.ATTRIBUTE_TYPE_NUMBER,
                        required=True,
                    ),
                    pb.AttributeDefinition(
                        code="symptoms",
                        display_name="现象",
                        type=pb.ATTRIBUTE_TYPE_MULTI_VALUE_LIST,
                        options=[
                            pb.AttributeOption(key="dark", display_name="不亮"),
                            pb.AttributeOption(key="flicker", display_name="闪烁"),
                            pb.AttributeOption(key="daytime", display_name="白天亮"),
                        ],
                    ),
                    pb.AttributeDefinition(
                        code="noticed", display_name="发现时间", type=pb.ATTRIBUTE_TYPE_DATETIME
                    ),
                ],
                sla=pb.SlaPolicy(
                    acknowledge_within=hours(2), resolve_within=hours(48), clock=pb.SLA_CLOCK_CALENDAR
                ),
            )
        ),
        metadata=md(identity.admin_token),
    )
    return code


async def _new_account(identity: IdentityClient, name: str) -> tuple[str, str]:
    """(api_key, serviceAccounts/{id}) of a new service account."""
    created = await identity.make_service_account(name)
    return client_credentials(created), created.service_account.name


async def _service_account(identity: IdentityClient, name: str) -> str:
    return (await _new_account(identity, name))[0]


@pytest_asyncio.fixture(scope="module")
async def api_key(identity: IdentityClient) -> str:
    return await _service_account(identity, "Open311 app")


def _report(world: World, service_code: str, api_key: str, **extra: object) -> dict[str, object]:
    lat, lng = world.points[0]
    return {
        "api_key": api_key,
        "service_code": service_code,
        "lat": lat,
        "long": lng,
        "address_string": "窑湾路 3 号",
        "description": "路灯不亮 <b>&</b>\n已经两天了",
        "first_name": "三",
        "last_name": "张",
        "phone": "13800138000",
        "email": "zhang@example.org",
        "media_url": "https://img.example.org/lamp.jpg",
        "attribute[poles]": "2",
        "attribute[symptoms][]": ["dark", "flicker"],
        **extra,
    }


async def _create(http: httpx.AsyncClient, data: dict[str, object], **headers: str) -> str:
    reply = await http.post(f"{V2}/requests.json", data=data, headers=headers)
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert len(body) == 1 and list(body[0]) == CREATED
    return body[0]["service_request_id"]


# ----------------------------------------------------------------------------- discovery and services


async def test_discovery(http: httpx.AsyncClient, stack: Stack) -> None:
    body = (await http.get(f"{V2}/discovery.json")).json()
    assert list(body) == ["changeset", "contact", "key_service", "endpoints"]
    endpoint = body["endpoints"][0]
    assert endpoint["url"] == f"{stack.gateway_url}{V2}" and endpoint["type"] == "production"
    assert endpoint["specification"] == "http://wiki.open311.org/GeoReport_v2"
    assert endpoint["formats"] == ["text/xml", "application/json"] and "api_key" in body["contact"]
    root = xml(await http.get(f"{V2}/discovery.xml"))
    assert root.tag == "discovery" and root.findtext("endpoints/endpoint/url") == endpoint["url"]


async def test_services_in_json_and_xml(
    http: httpx.AsyncClient, tickets: TicketsServiceStub, identity: IdentityClient, service_code: str
) -> None:
    reply = await http.get(f"{V2}/services.json")
    assert reply.status_code == 200 and reply.headers["content-type"] == "application/json"
    services = {s["service_code"]: s for s in reply.json()}
    assert all(list(s) == SERVICE for s in services.values())
    assert services[service_code] == {
        "service_code": service_code,
        "service_name": "路灯不亮",
        "description": "Street light out <& flickering>",
        "metadata": True,
        "type": "realtime",
        "keywords": "路灯, 照明",
        "group": "市政设施",
    }
    root = xml(await http.get(f"{V2}/services.xml"))
    assert root.tag == "services" and set(tags(root)) == {"service"}
    mine = [s for s in root if s.findtext("service_code") == service_code]
    assert len(mine) == 1 and tags(mine[0]) == SERVICE
    assert mine[0].findtext("description") == "Street light out <& flickering>"
    assert mine[0].findtext("metadata") == "true"

    # An inactive category is not offered.
    retired = f"o311-old-{uuid.uuid4().hex[:6]}"
    await tickets.CreateCategory(
        pb.CreateCategoryRequest(
            category=pb.Category(
                code=retired,
                display_name="旧类别",
                group="其他",
                default_center=pb.UNIT_KIND_RAPID_RESPONSE,
                priority=pb.PRIORITY_LOW,
                matter_class=pb.MATTER_CLASS_PUBLIC,
                kind=pb.TICKET_KIND_GENERAL,
                sla=pb.SlaPolicy(
                    acknowledge_within=hours(2), resolve_within=hours(24), clock=pb.SLA_CLOCK_CALENDAR
                ),
            )
        ),
        metadata=md(identity.admin_token),
    )
    assert retired in {s["service_code"] for s in (await http.get(f"{V2}/services.json")).json()}
    await tickets.UpdateCategory(
        pb.UpdateCategoryRequest(
            category=pb.Category(name=f"categories/{retired}", active=False),
            update_mask=field_mask_pb2.FieldMask(paths=["active"]),
        ),
        metadata=md(identity.admin_token),
    )
    assert retired not in {s["service_code"] for s in (await http.get(f"{V2}/services.json")).json()}
    assert_json_error(await http.get(f"{V2}/services/{retired}.json"), 404)


async def test_service_definition_in_json_and_xml(http: httpx.AsyncClient, service_code: str) -> None:
    body = (await http.get(f"{V2}/services/{service_code}.json")).json()
    assert list(body) == ["service_code", "attributes"] and body["service_code"] == service_code
    poles, symptoms, noticed = body["attributes"]
    assert all(list(a) == ATTRIBUTE for a in body["attributes"])
    assert poles == {
        "variable": True,
        "code": "poles",
        "datatype": "number",
        "required": True,
        "datatype_description": "A decimal number, such as 12 or 3.5.",
        "order": 1,
        "description": "几根灯杆: count the dark poles",
        "values": [],
    }
    assert symptoms["datatype"] == "multivaluelist" and symptoms["order"] == 2 and not symptoms["required"]
    assert symptoms["values"][1] == {"key": "flicker", "name": "闪烁"}
    assert noticed["datatype"] == "datetime" and noticed["order"] == 3
    root = xml(await http.get(f"{V2}/services/{service_code}.xml"))
    assert root.tag == "service_definition" and tags(root) == ["service_code", "attributes"]
    attributes = root.find("attributes")
    assert attributes is not None and tags(attributes) == ["attribute"] * 3
    assert tags(attributes[1]) == ATTRIBUTE
    keys = [v.findtext("key") for v in attributes[1].iterfind("values/value")]
    assert keys == ["dark", "flicker", "daytime"]
    assert_json_error(await http.get(f"{V2}/services/no-such-service.json"), 404)
    assert_xml_error(await http.get(f"{V2}/services/no-such-service.xml"), 404)


async def test_unknown_suffix_is_an_open311_404(http: httpx.AsyncClient) -> None:
    reply = await http.get(f"{V2}/services.html", headers={"Accept": "application/json"})
    assert "html" in assert_json_error(reply, 404)
    assert_xml_error(await http.get(f"{V2}/services.csv"), 404)


# ----------------------------------------------------------------------------- api_key


async def test_post_without_or_with_a_bad_api_key_is_403(
    http: httpx.AsyncClient, world: World, service_code: str, api_key: str
) -> None:
    data = _report(world, service_code, api_key)
    del data["api_key"]
    description = assert_json_error(await http.post(f"{V2}/requests.json", data=data), 403)
    assert "api_key" in description
    assert "api_key" in assert_xml_error(await http.post(f"{V2}/requests.xml", data=data), 403)
    client_id = api_key.split(":")[0]
    for bad in (f"{client_id}:wrong-secret", "no-colon", "nobody:secret"):
        reply = await http.post(f"{V2}/requests.json", data={**data, "api_key": bad})
        assert_json_error(reply, 403)
    # Reading is public without a key (test_open311_public.py), but a key given must be valid.
    assert_json_error(await http.get(f"{V2}/requests.json", params={"api_key": "nobody:secret"}), 403)
    assert_xml_error(await http.get(f"{V2}/requests/abc.xml", params={"api_key": "no-colon"}), 403)


# ----------------------------------------------------------------------------- reporting and reading back


async def test_post_then_get_in_json_and_xml(
    http: httpx.AsyncClient, world: World, service_code: str, api_key: str
) -> None:
    before = dt.datetime.now(CST).replace(microsecond=0)
    reply = await http.post(f"{V2}/requests.xml", data=_report(world, service_code, api_key))
    root = xml(reply)
    assert reply.status_code == 200, reply.text
    assert root.tag == "service_requests" and tags(root) == ["request"]
    assert tags(root[0]) == CREATED
    request_id = root[0].findtext("service_request_id")
    assert request_id and root[0].findtext("service_notice") == "to be resolved within 2 days"

    reply = await http.get(f"{V2}/requests/{request_id}.json", params={"api_key": api_key})
    assert reply.status_code == 200, reply.text
    [found] = reply.json()
    assert list(found) == REQUEST
    lat, lng = world.points[0]
    assert found["service_request_id"] == request_id and found["status"] == "open"
    assert found["status_notes"] == "received, waiting to be screened"
    assert found["service_code"] == service_code and found["service_name"] == "路灯不亮"
    # Markup is text, and the line break survives the round trip.
    assert found["description"] == "路灯不亮 <b>&</b>\n已经两天了"
    assert found["address"] == "窑湾路 3 号" and found["address_id"] is None and found["zipcode"] is None
    assert found["lat"] == pytest.approx(lat) and found["long"] == pytest.approx(lng)
    assert found["media_url"] == "https://img.example.org/lamp.jpg"
    assert found["agency_responsible"] is None
    assert found["service_notice"] == "to be resolved within 2 days"
    requested = dt.datetime.fromisoformat(found["requested_datetime"])
    assert found["requested_datetime"].endswith("+08:00") and before <= requested
    assert found["updated_datetime"].endswith("+08:00")
    expected = dt.datetime.fromisoformat(found["expected_datetime"])
    assert expected - requested == pytest.approx(dt.timedelta(hours=48), abs=dt.timedelta(seconds=2))

    root = xml(await http.get(f"{V2}/requests/{request_id}.xml", params={"api_key": api_key}))
    assert root.tag == "service_requests" and tags(root) == ["request"] and tags(root[0]) == REQUEST
    assert root[0].findtext("description") == found["description"]
    assert root[0].findtext("requested_datetime") == found["requested_datetime"]
    assert root[0].findtext("zipcode") == ""


async def test_post_takes_every_kind_of_location(
    http: httpx.AsyncClient, world: World, service_code: str, api_key: str
) -> None:
    street_ref = world.street.replace("/", ".")
    data = _report(world, service_code, api_key, jurisdiction_id=street_ref)
    del data["lat"], data["long"]
    request_id = await _create(http, data)
    [found] = (await http.get(f"{V2}/requests/{request_id}.json", params={"api_key": api_key})).json()
    assert found["address"] == "窑湾路 3 号" and found["lat"] is None and found["long"] is None

    del data["jurisdiction_id"]
    assert "jurisdiction_id" in assert_json_error(await http.post(f"{V2}/requests.json", data=data), 400)
    del data["address_string"]
    assert "lat" in assert_json_error(await http.post(f"{V2}/requests.json", data=data), 400)
    # A point outside every block.
    far = _report(world, service_code, api_key, lat=-45.0, long=-120.0)
    assert assert_json_error(await http.post(f"{V2}/requests.json", data=far), 400).startswith("lat")


async def test_post_refusals_name_the_argument(
    http: httpx.AsyncClient, world: World, service_code: str, api_key: str
) -> None:
    cases = {
        "attribute[poles]": {"attribute[poles]": "many"},
        "attribute[symptoms]": {"attribute[symptoms][]": ["dark", "purple"]},
        "attribute[unknown]": {"attribute[unknown]": "x"},
        "attribute[noticed]": {"attribute[noticed]": "yesterday"},
        "service_code": {"service_code": "no-such-service"},
        "phone": {"phone": "call me"},
        "lat": {"lat": "95"},
    }
    for field, change in cases.items():
        data = {**_report(world, service_code, api_key), **change}
        reply = await http.post(f"{V2}/requests.json", data=data)
        assert assert_json_error(reply, 400).startswith(field), (field, reply.text)
    data = _report(world, service_code, api_key)
    del data["attribute[poles]"]
    reply = await http.post(f"{V2}/requests.xml", data=data)
    assert assert_xml_error(reply, 400).startswith("attribute[poles]")
    del data["service_code"]
    reply = await http.post(f"{V2}/requests.json", data=data)
    assert assert_json_error(reply, 400).startswith("service_code")


async def test_idempotency_key_returns_the_first_request(
    http: httpx.AsyncClient, world: World, service_code: str, api_key: str
) -> None:
    key = uuid.uuid4().hex
    data = _report(world, service_code, api_key)
    first = await _create(http, data, **{"Idempotency-Key": key})
    assert await _create(http, data, **{"Idempotency-Key": key}) == first
    assert await _create(http, data) != first


# ----------------------------------------------------------------------------- queries


async def test_query_filters(
    http: httpx.AsyncClient,
    tickets: TicketsServiceStub,
    identity: IdentityClient,
    world: World,
    service_code: str,
) -> None:
    api_key = await _service_account(identity, "Open311 filters")
    first = await _create(http, _report(world, service_code, api_key))
    rejected = await _create(http, _report(world, service_code, api_key))
    dispatched = await _create(http, _report(world, service_code, api_key))
    other_service = await _create(
        http,
        {
            "api_key": api_key,
            "service_code": world.category,
            "lat": world.points[0][0],
            "long": world.points[0][1],
            "attribute[building]": "3栋",
        },
    )
    dispatcher = world.staff["dispatcher"].md
    await tickets.TransitionTicket(
        pb.TransitionTicketRequest(
            name=f"tickets/{rejected}", action=pb.ACTION_REJECT, reason="不属于本街道管辖"
        ),
        metadata=dispatcher,
    )
    for action in (pb.ACTION_ACCEPT, pb.ACTION_DISPATCH):
        await tickets.TransitionTicket(
            pb.TransitionTicketRequest(name=f"tickets/{dispatched}", action=action), metadata=dispatcher
        )

    async def ids(**params: object) -> list[str]:
        reply = await http.get(f"{V2}/requests.json", params={"api_key": api_key, **params})
        assert reply.status_code == 200, reply.text
        assert all(list(r) == REQUEST for r in reply.json())
        return [r["service_request_id"] for r in reply.json()]

    newest_first = [other_service, dispatched, rejected, first]
    assert await ids() == newest_first
    assert await ids(status="open") == [other_service, dispatched, first]
    assert await ids(status="closed") == [rejected]
    assert await ids(status="open,closed") == newest_first
    assert await ids(service_code=service_code) == [dispatched, rejected, first]
    assert await ids(service_code=f"{service_code},{world.category}", status="open") == [
        other_service,
        dispatched,
        first,
    ]
    assert await ids(page_size=2) == newest_first[:2]
    assert await ids(page_size=2, page=2) == newest_first[2:]
    assert await ids(page_size=2, page=3) == []
    assert await ids(service_request_id=f"{first},{rejected},nonexistent") == [first, rejected]

    [closed] = (await http.get(f"{V2}/requests.json", params={"api_key": api_key, "status": "closed"})).json()
    assert closed["status"] == "closed" and closed["status_notes"] == "rejected: 不属于本街道管辖"
    [handled] = (await http.get(f"{V2}/requests/{dispatched}.json", params={"api_key": api_key})).json()
    assert handled["agency_responsible"] == f"单位{world.units['lead']}"

    # Dates: W3C, inclusive, the offset's '+' percent-encoded or not.
    [first_seen] = (await http.get(f"{V2}/requests/{first}.json", params={"api_key": api_key})).json()
    requested = first_seen["requested_datetime"]
    assert await ids(start_date=requested) == newest_first
    assert first in await ids(end_date=requested)
    later = (dt.datetime.fromisoformat(requested) + dt.timedelta(hours=1)).isoformat()
    assert await ids(start_date=later) == []
    earlier = (dt.datetime.fromisoformat(requested) - dt.timedelta(days=1)).isoformat()
    assert await ids(end_date=earlier) == []
    reply = await http.get(f"{V2}/requests.json?api_key={api_key}&start_date={requested}")
    assert [r["service_request_id"] for r in reply.json()] == newest_first
    utc = dt.datetime.fromisoformat(earlier).astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert await ids(start_date=utc, end_date=later) == newest_first

    root = xml(await http.get(f"{V2}/requests.xml", params={"api_key": api_key, "status": "closed"}))
    assert tags(root) == ["request"] and root[0].findtext("status_notes") == "rejected: 不属于本街道管辖"

    for params, field in (
        ({"status": "pending"}, "status"),
        ({"start_date": "last week"}, "start_date"),
        ({"end_date": "2026-11-23T10:00:00"}, "end_date"),
        ({"start_date": later, "end_date": earlier}, "end_date"),
        ({"page_size": 201}, "page_size"),
        ({"page": 0}, "page"),
        ({"jurisdiction_id": "Not A Node"}, "jurisdiction_id"),
    ):
        reply = await http.get(f"{V2}/requests.json", params={"api_key": api_key, **params})
        assert assert_json_error(reply, 400).startswith(field), params


async def test_an_account_sees_only_what_it_filed(
    http: httpx.AsyncClient, identity: IdentityClient, world: World, service_code: str, api_key: str
) -> None:
    mine = await _create(http, _report(world, service_code, api_key))
    stranger = await _service_account(identity, "Another app")
    assert mine not in [
        r["service_request_id"]
        for r in (await http.get(f"{V2}/requests.json", params={"api_key": stranger})).json()
    ]
    reply = await http.get(f"{V2}/requests/{mine}.json", params={"api_key": stranger})
    assert reply.status_code in (403, 404) and reply.json()[0]["code"] == reply.status_code
    listed = await http.get(f"{V2}/requests.json", params={"api_key": stranger, "service_request_id": mine})
    assert listed.json() == []


async def test_unknown_request_is_404(http: httpx.AsyncClient, api_key: str) -> None:
    missing = str(uuid.uuid4())
    params = {"api_key": api_key}
    assert missing in assert_json_error(await http.get(f"{V2}/requests/{missing}.json", params=params), 404)
    assert_xml_error(await http.get(f"{V2}/requests/{missing}.xml", params=params), 404)
    assert_json_error(await http.get(f"{V2}/requests/not..an..id.json", params=params), 404)


async def test_open311_errors_are_never_problem_json(http: httpx.AsyncClient) -> None:
    for reply in (
        await http.get(f"{V2}/nothing.json"),
        await http.put(f"{V2}/requests.json"),
        await http.get(f"{V2}/requests.json", params={"page_size": "many"}),
    ):
        assert reply.headers["content-type"] == "application/json", reply.text
        assert json.loads(reply.content)[0]["code"] == reply.status_code


async def test_address_id_is_a_household(
    http: httpx.AsyncClient,
    blocks: BlocksServiceStub,
    identity: IdentityClient,
    world: World,
    service_code: str,
    api_key: str,
) -> None:
    home = await blocks.CreateHousehold(
        bpb.CreateHouseholdRequest(
            household=bpb.Household(code=f"h{uuid.uuid4().hex[:10]}", block=world.blocks[0], address="3栋502")
        ),
        metadata=md(identity.admin_token),
    )
    data = {
        "service_code": service_code,
        "address_id": home.id,
        "description": "楼道灯不亮",
        "attribute[poles]": "1",
    }
    # The service locates a household on the account's behalf: an account with no role cannot.
    reply = await http.post(f"{V2}/requests.json", data={**data, "api_key": api_key})
    assert assert_json_error(reply, 400).startswith("address_id")
    # A street system (a service account with the dispatcher role there) can.
    street_key, account = await _new_account(identity, "Street hotline bridge")
    await identity.stub.CreateRoleBinding(
        ipb.CreateRoleBindingRequest(
            parent=account,
            role_binding=ipb.RoleBinding(role=ipb.ROLE_DISPATCHER, scope=world.street),
        ),
        metadata=md(identity.admin_token),
    )
    request_id = await _create(http, {**data, "api_key": street_key})
    [found] = (await http.get(f"{V2}/requests/{request_id}.json", params={"api_key": street_key})).json()
    assert found["address_id"] == home.id and found["lat"] is None
