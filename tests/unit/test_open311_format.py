"""Open311 GeoReport v2 without the services: field lists in JSON and XML, escaping, datetimes,
status mapping, the POST form's attribute[...] fields, error mapping, and the route class's own errors."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import AsyncIterator

import grpc
import httpx
import pytest
from fastapi import Request
from google.protobuf import any_pb2, duration_pb2, timestamp_pb2
from google.rpc import error_details_pb2, status_pb2
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from gateway.app import create_app
from gateway.open311 import mapping
from gateway.open311.auth import key_digest, token_lifetime
from gateway.open311.cache import TtlCache
from gateway.open311.errors import Open311Error, from_rpc_error, open311_field
from gateway.open311.formats import negotiate, render, render_error, to_json, to_xml
from gateway.open311.inputs import (
    Report,
    contact_name,
    jurisdiction,
    parse_attributes,
    parse_datetime,
    request_ids,
    statuses,
    title_of,
)
from gateway.open311.listing import _Stream, page_of
from gateway.open311.tracing import redact_api_key
from gateway.settings import GatewaySettings
from gov.tickets.v1 import tickets_pb2 as pb
from tests.support.open311 import (
    ATTRIBUTE,
    CREATED,
    DEFINITION,
    DISCOVERY,
    ENDPOINT,
    REQUEST,
    SERVICE,
    parse_xml,
    tags,
)

S = pb.TicketState


def ts(text: str) -> timestamp_pb2.Timestamp:
    out = timestamp_pb2.Timestamp()
    out.FromDatetime(dt.datetime.fromisoformat(text))
    return out


def lift_category() -> pb.Category:
    return pb.Category(
        name="categories/lift-failure",
        code="lift-failure",
        display_name="电梯故障",
        group="物业与电梯",
        description="Lift stuck or broken",
        keywords=["电梯", "lift"],
        active=True,
        attributes=[
            pb.AttributeDefinition(
                code="floor",
                display_name="Floor",
                description="where the lift stopped",
                type=pb.AttributeType.ATTRIBUTE_TYPE_NUMBER,
                required=True,
            ),
            pb.AttributeDefinition(
                code="symptoms",
                display_name="Symptoms",
                type=pb.AttributeType.ATTRIBUTE_TYPE_MULTI_VALUE_LIST,
                options=[
                    pb.AttributeOption(key="stuck", display_name="困人"),
                    pb.AttributeOption(key="noise", display_name="异响"),
                ],
            ),
        ],
        sla=pb.SlaPolicy(
            resolve_within=duration_pb2.Duration(seconds=48 * 3600),
            clock=pb.SlaClock.SLA_CLOCK_CALENDAR,
        ),
    )


def ticket(**overrides: object) -> pb.Ticket:
    fields: dict[str, object] = {
        "name": "tickets/7f0c",
        "category": "categories/lift-failure",
        "state": S.TICKET_STATE_IN_PROGRESS,
        "title": "电梯困人",
        "description": "3号楼电梯困人",
        "media_uris": ["https://img.example.org/1.jpg", "https://img.example.org/2.jpg"],
        "location": pb.Location(latitude=27.85, longitude=112.9, has_point=True, address="3号楼"),
        "lead_unit": "units/wanlou-rapid",
        "create_time": ts("2026-11-23T02:15:00+00:00"),
        "update_time": ts("2026-11-23T03:00:00+00:00"),
        "expected_resolve_time": ts("2026-11-25T09:30:00+00:00"),
    }
    fields.update(overrides)
    return pb.Ticket(**fields)


# ----------------------------------------------------------------------------- field lists


def test_service_list_fields_in_json_and_xml() -> None:
    service = mapping.service(lift_category())
    assert list(service) == SERVICE
    assert service == {
        "service_code": "lift-failure",
        "service_name": "电梯故障",
        "description": "Lift stuck or broken",
        "metadata": True,
        "type": "realtime",
        "keywords": "电梯, lift",
        "group": "物业与电梯",
    }
    assert mapping.service(pb.Category(code="x", display_name="X"))["metadata"] is False
    assert json.loads(to_json([service])) == [service]
    root = parse_xml(to_xml("services", [service]))
    assert root.tag == "services" and tags(root) == ["service"]
    assert tags(root[0]) == SERVICE
    assert root[0].findtext("metadata") == "true" and root[0].findtext("service_name") == "电梯故障"


def test_service_definition_fields_in_json_and_xml() -> None:
    definition = mapping.service_definition(lift_category())
    assert list(definition) == DEFINITION
    floor, symptoms = definition["attributes"]
    assert list(floor) == ATTRIBUTE and list(symptoms) == ATTRIBUTE
    assert floor["variable"] is True and floor["datatype"] == "number" and floor["required"] is True
    assert floor["order"] == 1 and symptoms["order"] == 2
    assert floor["description"] == "Floor: where the lift stopped" and floor["values"] == []
    assert symptoms["datatype"] == "multivaluelist" and symptoms["datatype_description"] is None
    assert symptoms["values"] == [{"key": "stuck", "name": "困人"}, {"key": "noise", "name": "异响"}]
    root = parse_xml(to_xml("service_definition", definition))
    assert root.tag == "service_definition" and tags(root) == DEFINITION
    attributes = root.find("attributes")
    assert attributes is not None and tags(attributes) == ["attribute", "attribute"]
    assert tags(attributes[0]) == ATTRIBUTE
    values = attributes[1].find("values")
    assert values is not None and tags(values) == ["value", "value"] and tags(values[0]) == ["key", "name"]
    assert attributes[1].findtext("variable") == "true" and attributes[1].findtext("order") == "2"


def test_every_attribute_type_has_an_open311_datatype() -> None:
    types = [v for v in pb.AttributeType.values() if v]
    assert sorted(mapping.DATATYPES[t] for t in types) == sorted(
        ["string", "number", "datetime", "text", "singlevaluelist", "multivaluelist"]
    )


# The service request the lift ticket below renders as (CST datetimes, no zipcode, no address id).
LIFT_REQUEST = {
    "service_request_id": "7f0c",
    "status": "open",
    "status_notes": "being handled",
    "service_name": "电梯故障",
    "service_code": "lift-failure",
    "description": "3号楼电梯困人",
    "agency_responsible": "万楼街道快速处置中心",
    "service_notice": "to be resolved within 2 days",
    "requested_datetime": "2026-11-23T10:15:00+08:00",
    "updated_datetime": "2026-11-23T11:00:00+08:00",
    "expected_datetime": "2026-11-25T17:30:00+08:00",
    "address": "3号楼",
    "address_id": None,
    "zipcode": None,
    "lat": 27.85,
    "long": 112.9,
    "media_url": "https://img.example.org/1.jpg",
}


def test_service_request_fields_in_json_and_xml() -> None:
    request = mapping.service_request(
        ticket(),
        service_name="电梯故障",
        agency="万楼街道快速处置中心",
        notice="to be resolved within 2 days",
    )
    assert list(request) == REQUEST
    assert request == LIFT_REQUEST
    assert json.loads(to_json([request])) == [request]
    root = parse_xml(to_xml("service_requests", [request]))
    assert root.tag == "service_requests" and tags(root) == ["request"]
    assert tags(root[0]) == REQUEST
    assert root[0].findtext("lat") == "27.85" and root[0].findtext("zipcode") == ""


def test_household_report_has_address_id_and_no_point() -> None:
    located = ticket(location=pb.Location(household="households/h42"), media_uris=[])
    request = mapping.service_request(located, service_name=None, agency=None, notice=None)
    assert request["address_id"] == "h42" and request["lat"] is None and request["long"] is None
    assert request["media_url"] is None and request["agency_responsible"] is None
    assert json.loads(to_json([request]))[0]["lat"] is None
    element = parse_xml(to_xml("service_requests", [request]))[0]
    assert element.find("lat") is not None and element.findtext("lat") == ""


def public_ticket(**overrides: object) -> pb.PublicTicket:
    fields: dict[str, object] = {
        "name": "tickets/7f0c",
        "category": "categories/lift-failure",
        "state": S.TICKET_STATE_RESOLVED,
        "description": "3号楼电梯困人，电话***********",
        "address": "3号楼",
        "latitude": 27.85,
        "longitude": 112.9,
        "has_point": True,
        "media_uris": ["https://img.example.org/1.jpg"],
        "lead_unit": "units/wanlou-rapid",
        "lead_unit_display_name": "万楼街道快速处置中心",
        "resolution": "已修复",
        "create_time": ts("2026-11-23T02:15:00+00:00"),
        "update_time": ts("2026-11-23T03:00:00+00:00"),
        "expected_resolve_time": ts("2026-11-25T09:30:00+00:00"),
    }
    fields.update(overrides)
    return pb.PublicTicket(**fields)


def test_public_view_has_georeport_fields_and_never_an_address_id() -> None:
    request = mapping.public_service_request(
        public_ticket(), service_name="电梯故障", notice="to be resolved within 2 days"
    )
    assert list(request) == REQUEST
    # The same request in its public view: closed, with the phone number masked.
    assert request == {
        **LIFT_REQUEST,
        "status": "closed",
        "status_notes": "resolved: 已修复",
        "description": "3号楼电梯困人，电话***********",
    }
    bare = mapping.public_service_request(
        public_ticket(has_point=False, address="", media_uris=[], lead_unit_display_name=""),
        service_name=None,
        notice=None,
    )
    assert (bare["lat"], bare["long"], bare["address"], bare["media_url"]) == (None, None, None, None)
    assert bare["agency_responsible"] is None
    # The message itself has no field a private value could travel in.
    private = {"reporter", "contact", "attributes", "rating", "possible_duplicates", "units", "source"}
    assert not private & {f.name for f in pb.PublicTicket.DESCRIPTOR.fields}
    assert "household" not in {f.name for f in pb.PublicTicket.DESCRIPTOR.fields}


async def test_listing_merges_own_and_public_views_once_each() -> None:
    def at(seconds: int) -> timestamp_pb2.Timestamp:
        return timestamp_pb2.Timestamp(seconds=seconds)

    own = [pb.Ticket(name="tickets/b", create_time=at(30)), pb.Ticket(name="tickets/d", create_time=at(10))]
    public = [
        pb.PublicTicket(name="tickets/c", create_time=at(40)),
        pb.PublicTicket(name="tickets/b", create_time=at(30)),
        pb.PublicTicket(name="tickets/a", create_time=at(20)),
    ]

    def fetcher(items: list) -> object:
        async def fetch(token: str, size: int) -> tuple[list, str]:
            start = int(token or 0)
            return items[start : start + size], str(start + size) if start + size < len(items) else ""

        return fetch

    async def page(number: int, size: int) -> list:
        return await page_of([_Stream(fetcher(public)), _Stream(fetcher(own))], page=number, page_size=size)

    first = await page(1, 10)
    assert [t.name for t in first] == ["tickets/c", "tickets/b", "tickets/a", "tickets/d"]
    # The account's own ticket wins over its public view.
    assert isinstance(first[1], pb.Ticket) and isinstance(first[0], pb.PublicTicket)
    assert [t.name for t in await page(2, 2)] == ["tickets/a", "tickets/d"]


def test_created_and_discovery_fields() -> None:
    created = mapping.created(ticket(), "to be resolved within 2 days")
    assert list(created) == CREATED and created["account_id"] is None
    root = parse_xml(to_xml("service_requests", [created]))
    assert tags(root) == ["request"] and tags(root[0]) == CREATED
    found = mapping.discovery("https://gov.example.org/open311/v2")
    assert list(found) == DISCOVERY and list(found["endpoints"][0]) == ENDPOINT
    endpoint = found["endpoints"][0]
    assert endpoint["specification"] == "http://wiki.open311.org/GeoReport_v2"
    assert endpoint["type"] == "production" and endpoint["formats"] == ["text/xml", "application/json"]
    assert "api_key" in found["contact"] and "filed" in found["contact"]
    root = parse_xml(to_xml("discovery", found))
    assert tags(root) == DISCOVERY
    formats = root.find("endpoints/endpoint/formats")
    assert formats is not None and [f.text for f in formats] == ["text/xml", "application/json"]


def test_error_bodies() -> None:
    reply = render_error("json", 400, "lat: lat and long go together")
    # The whole header exactly as GeoReport's examples give it: no charset parameter.
    assert reply.status_code == 400 and reply.headers["content-type"] == "application/json"
    assert json.loads(reply.body) == [{"code": 400, "description": "lat: lat and long go together"}]
    reply = render_error("xml", 403, "api_key: required")
    assert reply.headers["content-type"] == "text/xml"
    root = parse_xml(bytes(reply.body))
    assert root.tag == "errors" and tags(root) == ["error"] and tags(root[0]) == ["code", "description"]
    assert root[0].findtext("code") == "403" and root[0].findtext("description") == "api_key: required"


def test_empty_values_are_null_in_json_and_empty_in_xml() -> None:
    body = {"service_code": "x", "description": None, "keywords": ""}
    assert json.loads(to_json(body))["description"] is None
    root = parse_xml(to_xml("service_definition", body))
    expected = [("service_code", "x"), ("description", None), ("keywords", None)]
    assert [(e.tag, e.text) for e in root] == expected


# ----------------------------------------------------------------------------- XML escaping, datetimes


def test_xml_escapes_markup_and_drops_characters_xml_cannot_carry() -> None:
    nasty = "a < b && c > d \"quoted\" 'single' </description><evil/> ]]> 中文\x01\x0b\ufffe end"
    root = parse_xml(to_xml("services", [{"description": nasty, "metadata": False}]))
    assert root[0].findtext("description") == nasty.replace("\x01", "").replace("\x0b", "").replace(
        "\ufffe", ""
    )
    assert root[0].find("evil") is None and root[0].findtext("metadata") == "false"
    body = render("xml", "services", [{"description": "中文"}]).body
    assert "中文".encode() in body  # UTF-8, not character references


def test_w3c_datetimes_render_in_china_standard_time() -> None:
    assert mapping.w3c(ts("2026-11-23T02:15:00+00:00")) == "2026-11-23T10:15:00+08:00"
    assert mapping.w3c(ts("2026-11-23T20:15:30.987+00:00")) == "2026-11-24T04:15:30+08:00"
    assert mapping.w3c(timestamp_pb2.Timestamp()) is None
    assert mapping.w3c(dt.datetime(2026, 1, 1, tzinfo=dt.UTC)) == "2026-01-01T08:00:00+08:00"


def test_w3c_datetimes_parse() -> None:
    utc = dt.datetime(2026, 11, 23, 2, 15, tzinfo=dt.UTC)
    assert parse_datetime("start_date", "2026-11-23T10:15:00+08:00") == utc
    assert parse_datetime("start_date", "2026-11-23T02:15:00Z") == utc
    # A '+' that was not percent-encoded arrives as a space.
    assert parse_datetime("start_date", "2026-11-23T10:15:00 08:00") == utc
    # end_date is inclusive: the instant just after it.
    assert parse_datetime("end_date", "2026-11-23T10:15:00+08:00", end=True) == utc + dt.timedelta(seconds=1)
    day = parse_datetime("start_date", "2026-11-23")
    assert day == dt.datetime(2026, 11, 22, 16, tzinfo=dt.UTC)
    assert parse_datetime("end_date", "2026-11-23", end=True) == day + dt.timedelta(days=1)
    for bad in ("yesterday", "2026-11-23T10:15:00", "2026-13-01T00:00:00Z"):
        with pytest.raises(Open311Error) as err:
            parse_datetime("end_date", bad)
        assert err.value.status == 400 and err.value.description.startswith("end_date:")


# ----------------------------------------------------------------------------- status


def test_status_mapping() -> None:
    expected = {
        S.TICKET_STATE_SUBMITTED: "open",
        S.TICKET_STATE_ACCEPTED: "open",
        S.TICKET_STATE_ESCALATED: "open",
        S.TICKET_STATE_DISPATCHED: "open",
        S.TICKET_STATE_IN_PROGRESS: "open",
        S.TICKET_STATE_RESOLVED: "closed",
        S.TICKET_STATE_CLOSED: "closed",
        S.TICKET_STATE_REJECTED: "closed",
        S.TICKET_STATE_MERGED: "closed",
    }
    assert {s for s in S.values() if s} == set(expected)
    for state, status in expected.items():
        assert mapping.status_of(state) == status
    assert set(statuses("open")) == {s for s, v in expected.items() if v == "open"}
    assert set(statuses("closed")) == {s for s, v in expected.items() if v == "closed"}
    assert statuses(None) == () and statuses("open,closed") == () and statuses("Closed,closed") != ()
    with pytest.raises(Open311Error, match="status"):
        statuses("pending")


def test_status_notes() -> None:
    def notes(**fields: object) -> str:
        return mapping.status_notes(pb.Ticket(**fields))

    assert notes(state=S.TICKET_STATE_REJECTED, reject_reason="不属于本街道") == "rejected: 不属于本街道"
    assert notes(state=S.TICKET_STATE_MERGED, merged_into="tickets/abc") == "merged into abc"
    assert notes(state=S.TICKET_STATE_RESOLVED, resolution="已修复") == "resolved: 已修复"
    assert notes(state=S.TICKET_STATE_CLOSED) == "closed"
    assert notes(state=S.TICKET_STATE_ESCALATED) == "escalated to the district"
    assert notes(state=S.TICKET_STATE_SUBMITTED)


def test_service_notice_from_the_sla() -> None:
    assert mapping.service_notice(lift_category()) == "to be resolved within 2 days"
    working = pb.Category(
        sla=pb.SlaPolicy(
            resolve_within=duration_pb2.Duration(seconds=21 * 3600),
            clock=pb.SlaClock.SLA_CLOCK_WORKING_HOURS,
        )
    )
    assert mapping.service_notice(working) == "to be resolved within 21 working hours"
    assert mapping.service_notice(pb.Category()) is None and mapping.service_notice(None) is None


# ----------------------------------------------------------------------------- the POST form


def test_attribute_fields() -> None:
    form = [
        ("service_code", "lift-failure"),
        ("attribute[floor]", "12"),
        ("attribute[symptoms][]", "stuck"),
        ("attribute[symptoms][]", "noise"),
        ("attribute[blank]", " "),
        ("attributes", "ignored"),
    ]
    assert parse_attributes(form) == [("floor", ["12"]), ("symptoms", ["stuck", "noise"])]
    for key in ("attribute[]", "attribute[a][b]", "attribute[x"):
        with pytest.raises(Open311Error) as err:
            parse_attributes([(key, "1")])
        assert err.value.status == 400 and err.value.description.startswith(key)


def test_report_to_ticket() -> None:
    report = Report(
        service_code="lift-failure",
        lat=27.85,
        long=112.9,
        address_string="3号楼东侧",
        first_name="三",
        last_name="张",
        phone="13800138000",
        description="电梯困人\n请尽快处理",
        media_url="https://img.example.org/1.jpg",
        attributes=[("symptoms", ["stuck", "noise"])],
    )
    made = report.ticket("电梯故障")
    assert made.category == "categories/lift-failure"
    assert made.source == pb.TicketSource.TICKET_SOURCE_RESIDENT
    assert made.title == "电梯困人" and made.description == "电梯困人\n请尽快处理"
    assert made.location.has_point and made.location.latitude == 27.85
    assert made.location.address == "3号楼东侧"
    assert made.node == "" and made.media_uris == ["https://img.example.org/1.jpg"]
    assert made.contact.display_name == "张三" and made.contact.phone == "13800138000"
    assert [(a.code, list(a.values)) for a in made.attributes] == [("symptoms", ["stuck", "noise"])]

    household = Report(service_code="lift-failure", address_id="h42").ticket("电梯故障")
    assert household.location.household == "households/h42" and not household.location.has_point
    assert household.title == "电梯故障"

    address_only = Report(service_code="x", address_string="窑湾路1号", jurisdiction_id="yuhu.wanlou")
    assert address_only.ticket("X").node == "yuhu/wanlou"


@pytest.mark.parametrize(
    ("report", "field"),
    [
        (Report(lat=1.0, long=2.0), "service_code"),
        (Report(service_code="a b", lat=1.0, long=2.0), "service_code"),
        (Report(service_code="x", lat=1.0), "long"),
        (Report(service_code="x"), "lat"),
        (Report(service_code="x", address_string="窑湾路1号"), "jurisdiction_id"),
        (Report(service_code="x", address_string="a", jurisdiction_id="Bad Node!"), "jurisdiction_id"),
        (Report(service_code="x", address_id="../etc"), "address_id"),
        (Report(service_code="x", address_id="h1", media_url="javascript:alert(1)"), "media_url"),
    ],
)
def test_report_refusals_name_the_argument(report: Report, field: str) -> None:
    with pytest.raises(Open311Error) as err:
        report.ticket("X")
    assert err.value.status == 400 and err.value.description.startswith(f"{field}:")


def test_small_input_helpers() -> None:
    assert contact_name("John", "Smith") == "John Smith" and contact_name("", "Smith") == "Smith"
    assert title_of("x" * 80, "fallback") == "x" * 49 + "…" and title_of(" \n", "fallback") == "fallback"
    assert jurisdiction("yuhu.wanlou") == "yuhu/wanlou" == jurisdiction("yuhu/wanlou")
    assert jurisdiction(None) == ""
    assert request_ids("a1, b2,a1,,") == ["a1", "b2"]
    with pytest.raises(Open311Error, match="service_request_id"):
        request_ids("a1,../x")


# ----------------------------------------------------------------------------- errors from the services


def rpc_error(code: grpc.StatusCode, details: str, violations: list[tuple[str, str]] = ()) -> Exception:
    trailers: list[tuple[str, str | bytes]] = []
    if violations:
        detail = any_pb2.Any()
        detail.Pack(
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(field=f, description=d) for f, d in violations
                ]
            )
        )
        status = status_pb2.Status(code=code.value[0], message=details, details=[detail])
        trailers.append(("grpc-status-details-bin", status.SerializeToString()))
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(*trailers), details)


def test_service_fields_become_open311_arguments() -> None:
    assert open311_field("ticket.attributes.floor") == "attribute[floor]"
    assert open311_field("ticket.attributes[floor]") == "attribute[floor]"
    assert open311_field("ticket.location.latitude") == "lat"
    assert open311_field("ticket.location") == "lat, long"
    assert open311_field("ticket.category") == "service_code"
    assert open311_field("ticket.contact.phone") == "phone"
    assert open311_field("ticket.node") == "jurisdiction_id"
    assert open311_field("ticket.media_uris[0]") == "media_url"
    assert open311_field("something_else") == "something_else"


def test_grpc_errors_map_to_open311_statuses() -> None:
    error = from_rpc_error(
        rpc_error(
            grpc.StatusCode.INVALID_ARGUMENT,
            "ticket.attributes.floor: must be a number",
            [("ticket.attributes.floor", "must be a number")],
        )
    )
    assert error.status == 400 and error.description == "attribute[floor]: must be a number"
    assert from_rpc_error(rpc_error(grpc.StatusCode.PERMISSION_DENIED, "no")).status == 403
    assert from_rpc_error(rpc_error(grpc.StatusCode.NOT_FOUND, "no such ticket")).status == 404
    assert from_rpc_error(rpc_error(grpc.StatusCode.FAILED_PRECONDITION, "inactive")).status == 400
    unavailable = from_rpc_error(rpc_error(grpc.StatusCode.UNAVAILABLE, "connection refused at 10.0.0.1"))
    assert unavailable.status == 503 and "10.0.0.1" not in unavailable.description


# ----------------------------------------------------------------------------- caches, traces, formats


def test_api_keys_are_redacted_from_the_server_span() -> None:
    query = "api_key=cid%3As3cret&status=open"
    span = (
        TracerProvider()
        .get_tracer("test")
        .start_span(
            "GET",
            attributes={
                "http.url": "http://gw/open311/v2/requests.json?api_key=cid:s3cret&status=open",
                "url.query": query,
                "http.target": "/open311/v2/requests.json",
            },
        )
    )
    request = Request(
        {
            "type": "http",
            "method": "GET",
            "scheme": "http",
            "server": ("gw", 80),
            "path": "/open311/v2/requests.json",
            "query_string": query.encode(),
            "headers": [(b"host", b"gw")],
        }
    )
    with trace.use_span(span, end_on_exit=True):
        redact_api_key(request)
    attributes = dict(span.attributes or {})
    assert "s3cret" not in repr(attributes)
    assert attributes["http.url"] == "http://gw/open311/v2/requests.json?api_key=REDACTED&status=open"
    assert attributes["url.query"] == "api_key=REDACTED&status=open"
    assert attributes["http.target"] == "/open311/v2/requests.json"


def test_token_cache_expires_entries_and_stays_bounded() -> None:
    now = [0.0]
    cache: TtlCache[str] = TtlCache(2, clock=lambda: now[0])
    cache.put("a", "token-a", 10)
    assert cache.get("a") == "token-a"
    now[0] = 10.0
    assert cache.get("a") is None
    for key in ("b", "c", "d"):
        cache.put(key, key, 10)
    assert len(cache) == 2 and cache.get("b") is None and cache.get("d") == "d"
    assert token_lifetime(300) == 240 and token_lifetime(100) == 80
    assert len(key_digest("id:secret")) == 64 and "secret" not in key_digest("id:secret")


def test_format_negotiation() -> None:
    assert negotiate("json", "text/xml") == "json" and negotiate("xml", "application/json") == "xml"
    assert negotiate("yaml", "application/json") == "json" and negotiate("yaml", "*/*") == "xml"


# ----------------------------------------------------------------------------- the routes' own errors


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    # No lifespan, no upstream channels: nothing here reaches a service.
    transport = httpx.ASGITransport(app=create_app(GatewaySettings()))
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as http:
        yield http


async def test_unknown_suffix_and_resource_are_open311_404s(client: httpx.AsyncClient) -> None:
    reply = await client.get("/open311/v2/services.yaml")
    assert reply.status_code == 404 and reply.headers["content-type"].startswith("text/xml")
    assert parse_xml(reply.content)[0].findtext("code") == "404"
    reply = await client.get("/open311/v2/services.yaml", headers={"Accept": "application/json"})
    assert reply.json()[0]["code"] == 404 and "yaml" in reply.json()[0]["description"]
    reply = await client.get("/open311/v2/nothing/here.json")
    assert reply.status_code == 404 and reply.json()[0]["code"] == 404
    reply = await client.delete("/open311/v2/requests.json")
    assert reply.status_code == 405 and "POST" in reply.headers["allow"]
    assert reply.json()[0]["code"] == 405


async def test_no_key_to_post_or_a_malformed_key_is_an_open311_403(
    client: httpx.AsyncClient,
) -> None:
    reply = await client.post(
        "/open311/v2/requests.json", data={"service_code": "x", "lat": "1", "long": "2"}
    )
    assert reply.status_code == 403
    assert reply.json() == [{"code": 403, "description": "api_key: required"}]
    reply = await client.get("/open311/v2/requests.xml", params={"api_key": "no-colon"})
    assert reply.status_code == 403 and parse_xml(reply.content)[0].findtext("code") == "403"
    reply = await client.post("/open311/v2/requests.json", data={"lat": "91", "api_key": "a:b"})
    assert reply.status_code == 400 and reply.json()[0]["description"].startswith("lat:")
    assert "problem" not in reply.headers["content-type"]


async def test_content_type_is_exactly_the_specifications(client: httpx.AsyncClient) -> None:
    # Strict validators compare the whole header: no "; charset=utf-8" (UTF-8 is both formats' default).
    for path, expected in (
        ("/open311/v2/discovery.xml", "text/xml"),
        ("/open311/v2/discovery.json", "application/json"),
        ("/open311/v2/services.yaml", "text/xml"),  # an error, in the default format
        ("/open311/v2/nothing/here.json", "application/json"),
    ):
        reply = await client.get(path)
        assert reply.headers["content-type"] == expected, (path, reply.headers)
        assert reply.headers.get_list("content-type") == [expected]
