"""gateway.rest: JSON enums, views, bodies and routes declared over protobuf descriptors."""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Any, ClassVar

import pytest
from fastapi import APIRouter, FastAPI, Path
from google.protobuf import duration_pb2, timestamp_pb2
from pydantic import AfterValidator, Field, StringConstraints

from gateway.problems import Problem
from gateway.rest import Body, Named, Out, Proto, ProtoEnum, View
from gateway.rest.routes import Endpoints, Param
from gov.tickets.v1 import tickets_pb2 as pb


class StateName(ProtoEnum, proto=pb.TicketState): ...


class ActionChoice(ProtoEnum, proto=pb.Action, exclude={"submit", "rate"}):
    """Some actions."""


class RoleName(ProtoEnum, proto=pb.UnitRole): ...


class StatusName(ProtoEnum, proto=pb.UnitStatus): ...


class ClockName(ProtoEnum, proto=pb.SlaClock): ...


class Assignment(
    View,
    message=pb.UnitAssignment,
    fields={
        "unit": Out(convert=lambda u: u.removeprefix("units/"), description="Code of the unit"),
        "role": None,
        "status": None,
        "reason": Out(nullable=True),
        "update_time": None,
    },
):
    """An assignment."""


class Sla(View, message=pb.SlaPolicy, fields={"acknowledge_within_seconds": None, "clock": None}): ...


class Entry(
    View,
    message=pb.TimelineEntry,
    fields={"seq": Out("name", convert=lambda n: int(n.rsplit("/", 1)[-1]), annotation=int), "details": None},
): ...


class Rating(View, message=pb.Rating, fields={"score": None, "comment": None}): ...


class TicketView(
    View,
    message=pb.Ticket,
    fields={
        "id": Out("name", convert=lambda n: n.removeprefix("tickets/")),
        "state": None,
        "units": None,
        "rating": Out(nullable=True),
        "lead_unit": Out(convert=lambda u: u.removeprefix("units/") or None, annotation=str | None),
        "possible_duplicates": Out(convert=lambda t: t.removeprefix("tickets/")),
        "node": Out(compute=lambda t: t.node or "none", annotation=str),
        "create_time": None,
    },
): ...


class TicketViewPage(View, item=TicketView, source="tickets"): ...


TS = timestamp_pb2.Timestamp(seconds=1_700_000_000)


def test_json_enums_are_generated_from_the_proto_enum() -> None:
    assert [m.value for m in StateName][:3] == ["submitted", "accepted", "rejected"]
    assert StateName("in_progress").to_pb() == pb.TICKET_STATE_IN_PROGRESS
    assert ActionChoice("return").name == "return_"  # a keyword as a member name, the value as it is
    assert "submit" not in ActionChoice._value2member_map_ and "rate" not in ActionChoice._value2member_map_
    assert ActionChoice.__doc__ == "Some actions."
    assert StateName.from_pb(pb.TICKET_STATE_CLOSED) == StateName("closed")
    assert StateName.from_pb(0) is None  # unspecified
    assert StateName.from_pb(999) is None  # newer than the gateway
    assert ActionChoice.from_pb(pb.ACTION_SUBMIT) is None  # left out of this JSON enum


def test_a_view_reads_the_message_by_its_descriptor() -> None:
    ticket = pb.Ticket(
        name="tickets/t1",
        state=pb.TICKET_STATE_DISPATCHED,
        units=[pb.UnitAssignment(unit="units/u1", role=pb.UNIT_ROLE_LEAD, status=99, update_time=TS)],
        lead_unit="units/u1",
        possible_duplicates=["tickets/a", "tickets/b"],
        create_time=TS,
    )
    out = TicketView.of(ticket).model_dump(mode="json")
    assert out == {
        "id": "t1",
        "state": "dispatched",
        "units": [
            {
                "unit": "u1",
                "role": "lead",
                "status": None,  # a value this gateway does not know
                "reason": None,  # empty string, declared nullable
                "update_time": "2023-11-14T22:13:20Z",
            }
        ],
        "rating": None,  # unset message, declared nullable
        "lead_unit": "u1",
        "possible_duplicates": ["a", "b"],
        "node": "none",
        "create_time": "2023-11-14T22:13:20Z",
    }
    empty = TicketView.of(pb.Ticket(rating=pb.Rating())).model_dump()
    assert empty["rating"] is None and empty["state"] is None and empty["create_time"] is None
    assert TicketView.of(pb.Ticket(rating=pb.Rating(score=4))).model_dump()["rating"] == {
        "score": 4,
        "comment": "",
    }
    assert TicketView.of(pb.Ticket(), node="given").node == "given"  # an override the message lacks

    sla = Sla.of(pb.SlaPolicy(acknowledge_within=duration_pb2.Duration(seconds=90, nanos=500_000_000)))
    assert sla.model_dump() == {"acknowledge_within_seconds": 90.5, "clock": None}
    assert Sla.of(pb.SlaPolicy()).model_dump()["acknowledge_within_seconds"] is None
    entry = Entry.of(pb.TimelineEntry(name="tickets/t/timeline/7", details={"units": "a,b"}))
    assert entry.model_dump() == {"seq": 7, "details": {"units": "a,b"}}

    page = TicketViewPage.of(
        pb.ListTicketsResponse(tickets=[pb.Ticket(name="tickets/x")], next_page_token="n")
    )
    assert page.model_dump()["next_page_token"] == "n" and page.model_dump()["items"][0]["id"] == "x"


def test_view_times_and_enums_read_as_protobuf_itself_converts_them() -> None:
    """The readers' shortcuts (gateway/rest/views.py, enums.py) give what ToDatetime and the enum's
    value names give."""
    for seconds, nanos in [
        (1, 0),
        (0, 1),
        (1_700_000_000, 999_999_999),
        (-86_400, 1_500),
        (253_402_300_799, 7),
    ]:
        stamp = timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos)
        read = TicketView.of(pb.Ticket(create_time=stamp)).create_time
        assert read == stamp.ToDatetime(tzinfo=dt.UTC) and read.tzinfo == dt.UTC
    for number in pb.TicketState.values():
        name = pb.TicketState.Name(number).removeprefix("TICKET_STATE_").lower()
        assert StateName.from_pb(number) == (None if number == 0 else StateName(name))
    assert StateName.from_pb(999) is None  # newer than this gateway
    assert ActionChoice.from_pb(pb.ACTION_SUBMIT) is None  # left out of this JSON enum


def test_view_schemas_follow_the_descriptor() -> None:
    schema = TicketView.model_json_schema()
    props = schema["properties"]
    assert set(schema["required"]) == set(props)  # every field of a response is always there
    assert props["id"]["type"] == "string"
    assert props["state"]["anyOf"] == [{"$ref": "#/$defs/StateName"}, {"type": "null"}]
    assert schema["$defs"]["StateName"]["enum"][0] == "submitted"
    assert props["create_time"]["anyOf"][0] == {"format": "date-time", "type": "string"}
    assert props["units"]["items"] == {"$ref": "#/$defs/Assignment"}
    assert props["lead_unit"]["anyOf"] == [{"type": "string"}, {"type": "null"}]
    assert schema["$defs"]["Assignment"]["description"] == "An assignment."
    assert schema["$defs"]["Assignment"]["properties"]["unit"]["description"] == "Code of the unit"
    sla = Sla.model_json_schema()["properties"]
    assert sla["acknowledge_within_seconds"]["anyOf"] == [{"type": "number"}, {"type": "null"}]
    page = TicketViewPage.model_json_schema()
    assert page["required"] == ["items"] and page["properties"]["next_page_token"]["default"] == ""


UnitRef = Annotated[str, StringConstraints(max_length=46), AfterValidator(lambda v: v.removeprefix("units/"))]


class NewAttribute(Body):
    code: str
    required: bool = False


class NewSla(Body):
    acknowledge_within_seconds: float
    resolve_within_seconds: float
    clock: ClockName


class NewCategory(Body):
    code: str
    default_unit: Annotated[UnitRef, Named("units")] | None = None
    priority: Annotated[str, Proto("group")] = ""  # written to another field
    attributes: list[NewAttribute] = Field(default_factory=list)
    sla: NewSla | None = None
    draft: bool = False  # REST-only: not in the message


class NewTransition(Body):
    action: ActionChoice
    assisting_units: list[Annotated[UnitRef, Named("units")]] = Field(default_factory=list)
    original: Annotated[str, Named("tickets")] | None = None


class NewDay(Body):
    date: dt.date
    name: Annotated[str, Proto("display_name")] = ""


class NewStatistics(Body):
    start_time: dt.datetime | None = None


class CategoryPatch(Body):
    description: str | None = None
    default_unit: Annotated[UnitRef, Named("units")] | None = None
    priority: Annotated[str | None, Proto("group")] = None
    keywords: list[str] | None = None

    clearable: ClassVar[frozenset[str]] = frozenset({"description", "default_unit"})


def test_a_body_writes_the_message_by_its_descriptor() -> None:
    body = NewCategory.model_validate(
        {
            "code": "lift",
            "default_unit": "units/rapid",
            "priority": "g",
            "attributes": [{"code": "floor", "required": True}],
            "sla": {"acknowledge_within_seconds": 7200.5, "resolve_within_seconds": 60, "clock": "calendar"},
            "draft": True,
        }
    )
    category = body.to_pb(pb.Category, skip={"draft"}, name="categories/lift")
    assert category == pb.Category(
        name="categories/lift",
        code="lift",
        default_unit="units/rapid",
        group="g",
        attributes=[pb.AttributeDefinition(code="floor", required=True)],
        sla=pb.SlaPolicy(
            acknowledge_within=duration_pb2.Duration(seconds=7200, nanos=500_000_000),
            resolve_within=duration_pb2.Duration(seconds=60),
            clock=pb.SLA_CLOCK_CALENDAR,
        ),
    )
    assert not NewCategory(code="x").to_pb(pb.Category, skip={"draft"}).HasField("sla")  # None stays unset
    with pytest.raises(KeyError):
        body.to_pb(pb.Category)  # a body field the message lacks must be skipped on purpose

    transition = NewTransition.model_validate({"action": "return", "assisting_units": ["a", "units/b"]})
    assert transition.to_pb(pb.TransitionTicketRequest, name="tickets/t") == pb.TransitionTicketRequest(
        name="tickets/t", action=pb.ACTION_RETURN, assisting_units=["units/a", "units/b"]
    )
    assert NewDay(date=dt.date(2025, 1, 28), name="春节").to_pb(pb.CalendarDay) == pb.CalendarDay(
        date="2025-01-28", display_name="春节"
    )
    naive = NewStatistics(start_time=dt.datetime(2025, 1, 1, 8, 0))  # naive means UTC
    assert naive.to_pb(pb.GetTicketStatisticsRequest).start_time.ToDatetime(tzinfo=dt.UTC) == dt.datetime(
        2025, 1, 1, 8, 0, tzinfo=dt.UTC
    )
    with pytest.raises(Problem) as err:
        early = dt.datetime(1, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=5)))  # before 0001-01-01 UTC
        NewStatistics(start_time=early).to_pb(pb.GetTicketStatisticsRequest)
    assert err.value.status == 400 and "start_time" in err.value.detail


def test_a_patch_masks_the_fields_present_and_refuses_null_where_it_cannot_clear() -> None:
    message, mask = CategoryPatch.model_validate({"priority": "g", "default_unit": None}).patch(
        pb.Category, name="categories/c"
    )
    assert list(mask.paths) == ["default_unit", "group"]  # proto names, the renamed field too
    assert message == pb.Category(name="categories/c", group="g")  # a cleared field stays at its default
    with pytest.raises(Problem, match="name at least one field"):
        CategoryPatch().patch(pb.Category)
    with pytest.raises(Problem, match="keywords cannot be null"):
        CategoryPatch.model_validate({"keywords": None}).patch(pb.Category)
    _, mask = CategoryPatch.model_validate({"keywords": []}).patch(pb.Category)
    assert list(mask.paths) == ["keywords"]  # an empty list clears the list


def test_a_declared_route_has_the_openapi_operation_a_handler_would() -> None:
    router = APIRouter(prefix="/api/v1")
    api = Endpoints(router, lambda request: None)
    code = Annotated[str, Path(max_length=40, pattern="^[a-z]+$")]
    api.post(
        "/units/{code}/things",
        "add_thing",
        rpc="AddThing",
        view=Assignment,
        status_code=201,
        summary="Add a thing",
        params={"code": code, "page_size": Param(int, 50), "q": Param(str, "")},
        body=NewDay,
        idempotent=True,
        message=lambda code, page_size, q, body, idempotency_key: pb.GetUnitRequest(),
    )
    api.delete(
        "/units/{code}",
        "remove_unit",
        rpc="X",
        summary="Remove",
        params={"code": code},
        message=lambda code: None,
    )
    app = FastAPI()
    app.include_router(router)
    paths: dict[str, Any] = app.openapi()["paths"]
    post = paths["/api/v1/units/{code}/things"]["post"]
    assert post["operationId"] == "add_thing_api_v1_units__code__things_post"
    assert post["summary"] == "Add a thing"
    assert [(p["name"], p["in"]) for p in post["parameters"]] == [
        ("code", "path"),
        ("page_size", "query"),
        ("q", "query"),
        ("idempotency-key", "header"),
    ]
    assert post["parameters"][0]["schema"]["pattern"] == "^[a-z]+$"
    assert post["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/NewDay"
    }
    assert post["responses"]["201"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Assignment"
    }
    delete = paths["/api/v1/units/{code}"]["delete"]
    assert "204" in delete["responses"] and "content" not in delete["responses"]["204"]


def test_the_openapi_comparison_lists_real_differences_only(tmp_path: Any) -> None:
    from gateway.rest.openapi_diff import compare

    before = {
        "paths": {"/a": {"get": {"summary": "A"}}},
        "components": {"schemas": {"X": {"required": ["a", "b"]}}},
    }
    after = {
        "paths": {"/a": {"get": {"summary": "B"}}},
        "components": {"schemas": {"X": {"required": ["b", "a"]}}},
    }
    after["paths"]["/b"] = {}
    (tmp_path / "before.json").write_text(json.dumps(before))
    (tmp_path / "after.json").write_text(json.dumps(after))
    assert compare(str(tmp_path / "before.json"), str(tmp_path / "after.json")) == [
        '~ paths//a/get/summary: "A" -> "B"',
        "+ paths//b: {}",
    ]
