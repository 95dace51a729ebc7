"""Tickets: categories, handling units, tickets and their lifecycle, timeline, statistics, calendar.

Each route is one upstream call to the TicketsService, declared with gateway.rest.routes; JSON shapes
live in gateway.tickets_resources. Categories and units are named by their codes, tickets by their
ids, region nodes in query strings by their `ref` (dots: `yuhu.wanlou.taoyuan.b07`).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from gateway.blocks_resources import ID_PATTERN, NODE_REF_MAX_LENGTH, NODE_REF_PATTERN, path_of, timestamp
from gateway.params import free_text
from gateway.rest import Body
from gateway.rest.resource import Resource
from gateway.rest.routes import PAGE, Endpoints, Param
from gateway.tickets_resources import (
    CODE_MAX_LENGTH,
    CODE_PATTERN,
    CalendarYear,
    CalendarYearBody,
    Category,
    CategoryPage,
    CategoryPatch,
    NewCategory,
    NewRating,
    NewTicket,
    NewUnit,
    NewUnitMember,
    Ticket,
    TicketPage,
    TicketStateName,
    TicketStatistics,
    TimelinePage,
    Transition,
    Unit,
    UnitMember,
    UnitMemberPage,
    UnitPage,
)
from gateway.upstream import CallerDep, call, upstreams
from gov.tickets.v1 import tickets_pb2 as pb
from gov.tickets.v1.tickets_pb2_grpc import TicketsServiceStub

router = APIRouter(prefix="/api/v1", tags=["tickets"])

CategoryCode = Annotated[
    str, Path(max_length=CODE_MAX_LENGTH, pattern=CODE_PATTERN, examples=["lift-failure"])
]
UnitCode = Annotated[str, Path(max_length=CODE_MAX_LENGTH, pattern=CODE_PATTERN, examples=["wanlou-rapid"])]
TicketId = Annotated[str, Path(max_length=64, pattern=ID_PATTERN)]
UserId = Annotated[str, Path(max_length=64, pattern=ID_PATTERN, description="The id of `users/{id}`")]
Year = Annotated[int, Path(ge=2000, le=2100, examples=[2025])]

NodeFilter = Annotated[
    str,
    Query(
        max_length=NODE_REF_MAX_LENGTH,
        pattern=rf"^$|{NODE_REF_PATTERN}",
        description="A node's ref (dots): tickets at or below it",
        examples=["yuhu.wanlou"],
    ),
]
CategoryFilter = Annotated[
    str, Query(max_length=CODE_MAX_LENGTH, pattern=rf"^$|{CODE_PATTERN}", description="Category code")
]
UnitFilter = Annotated[
    str,
    Query(
        max_length=CODE_MAX_LENGTH,
        pattern=rf"^$|{CODE_PATTERN}",
        description="Unit code: tickets dispatched to it",
    ),
]
LeadUnitFilter = Annotated[
    str,
    Query(
        max_length=CODE_MAX_LENGTH,
        pattern=rf"^$|{CODE_PATTERN}",
        description="Unit code: tickets it leads",
    ),
]
StartTime = Annotated[dt.datetime | None, Query(description="RFC 3339; naive times are UTC")]
EndTime = Annotated[dt.datetime | None, Query(description="RFC 3339, exclusive")]


def _tickets(request: Request) -> TicketsServiceStub:
    return upstreams(request).tickets


api = Endpoints(router, _tickets, messages=pb)


def _name(collection: str, code: str) -> str:
    return f"{collection}/{code}" if code else ""


# ----------------------------------------------------------------------------- categories

categories = Resource(
    api, "/categories", pb.Category, ("code", CategoryCode), view=Category, page=CategoryPage, id_field="code"
)
categories.list(
    "The category catalogue (active ones unless asked)",
    params={
        "group": Param(Annotated[str, free_text("group", max_length=64, description="Only this group")], ""),
        "q": Param(
            Annotated[str, free_text("q", max_length=64, description="Substring of name, code or a keyword")],
            "",
            field="query",
        ),
        "include_inactive": Param(bool, False),
    },
)
categories.create("Add a category: routing, priority, matter class, attributes and SLA", body=NewCategory)
categories.get("Get a category")


def _update_category(code: str, body: Body) -> pb.UpdateCategoryRequest:
    category, mask = body.patch(pb.Category, name=f"categories/{code}", code=code)
    return pb.UpdateCategoryRequest(category=category, update_mask=mask)


categories.update(
    "Update a category (fields present are changed; `active: false` retires it)",
    body=CategoryPatch,
    message=_update_category,
)


# ----------------------------------------------------------------------------- units

units = Resource(api, "/units", pb.Unit, ("code", UnitCode), view=Unit, page=UnitPage, id_field="code")
units.list(
    "Handling units: the street's centers and departments",
    params={
        "node": Param(
            Annotated[
                str,
                Query(
                    max_length=NODE_REF_MAX_LENGTH,
                    pattern=rf"^$|{NODE_REF_PATTERN}",
                    description="A node's ref (dots): units serving it or a node above it; empty: all",
                    examples=["yuhu.wanlou"],
                ),
            ],
            "",
            encode=path_of,
        )
    },
)
units.create("Add a handling unit", body=NewUnit)
units.get("Get a handling unit")
members = Resource(
    api,
    "/members",
    pb.UnitMember,
    ("user_id", UserId),
    view=UnitMember,
    page=UnitMemberPage,
    parent=units,
    collection="members",
)
members.list("Staff of a unit")
members.create(
    "Add a person to a unit: they act on tickets dispatched to it",
    body=NewUnitMember,
    name="add_unit_member",
    rpc="AddUnitMember",
    message=lambda code, body: pb.AddUnitMemberRequest(parent=f"units/{code}", user=body.user),
    location=lambda member, p: f"/units/{p['code']}/members/{member.user.removeprefix('users/')}",
)
members.delete(
    "Take a person off a unit (their next call is refused)", name="remove_unit_member", rpc="RemoveUnitMember"
)


# ----------------------------------------------------------------------------- tickets

tickets = Resource(api, "/tickets", pb.Ticket, ("ticket_id", TicketId), view=Ticket, page=TicketPage)
tickets.create(
    "Report a problem",
    description=(
        "Locate it by a point (`location.latitude`/`longitude`, resolved to its block), a household "
        "(`location.household`), or, for an address-only report, a `node`. A retry with the same "
        "`Idempotency-Key` returns the first ticket."
    ),
    body=NewTicket,
    idempotent=True,
    message=lambda body, idempotency_key: pb.CreateTicketRequest(
        ticket=body.to_pb(pb.Ticket), request_id=idempotency_key or ""
    ),
)
tickets.list(
    "Tickets you may see, newest first",
    params={
        "state": Param(TicketStateName | None, None),
        "category": Param(CategoryFilter, "", encode=lambda code: _name("categories", code)),
        "node": Param(NodeFilter, "", encode=path_of),
        "unit": Param(UnitFilter, "", encode=lambda code: _name("units", code)),
        "overdue": Param(
            Annotated[bool, Query(description="Only tickets past a deadline")], False, field="overdue_only"
        ),
        "start_time": Param(
            Annotated[dt.datetime | None, Query(description="Reported at or after (RFC 3339)")], None
        ),
        "end_time": Param(
            Annotated[dt.datetime | None, Query(description="Reported before (RFC 3339)")], None
        ),
        "q": Param(
            Annotated[
                str, free_text("q", max_length=100, description="Substring of title, description or address")
            ],
            "",
            field="query",
        ),
        "mine": Param(Annotated[bool, Query(description="Only your own reports")], False),
        "updated_after": Param(
            Annotated[
                dt.datetime | None, Query(description="Changed after (RFC 3339), for followers that poll")
            ],
            None,
        ),
    },
)
tickets.get("Get a ticket")
tickets.action(
    "POST",
    "/transitions",
    "transition_ticket",
    "Move a ticket through its lifecycle; returns the ticket after the action",
    description=(
        "Dispatchers `accept`, `reject`, `merge`, `escalate`, `dispatch` and `close`; the district's "
        "dispatcher `accept_escalation`; unit staff `acknowledge` (report in) or `return`, and the lead "
        "unit `start`s and `resolve`s; the reporter `rate`s; the block's supervisor or a dissatisfied "
        "reporter `reopen`s. An action the ticket's state does not allow is a 409, one outside your "
        "role or scope a 403; a refused action changes nothing."
    ),
    body=Transition,
)
tickets.action(
    "POST",
    "/rating",
    "rate_ticket",
    "Rate how a resolved ticket was handled (the reporter, or staff recording it)",
    rpc="TransitionTicket",
    body=NewRating,
    message=lambda ticket_id, body: body.to_pb(
        pb.TransitionTicketRequest, name=f"tickets/{ticket_id}", action=pb.ACTION_RATE
    ),
)
tickets.action(
    "GET",
    "/timeline",
    "list_timeline",
    "Everything that happened to a ticket, oldest first",
    rpc="ListTimelineEntries",
    params=PAGE,
    view=TimelinePage,
    name_field="parent",
)


# ----------------------------------------------------------------------------- statistics


@router.get(
    "/statistics/tickets",
    response_model=TicketStatistics,
    summary="Cockpit figures for tickets at or below a node: completion, timeliness, satisfaction",
)
async def ticket_statistics(
    request: Request,
    caller: CallerDep,
    node: Annotated[
        str,
        Query(
            max_length=NODE_REF_MAX_LENGTH,
            pattern=NODE_REF_PATTERN,
            description="A node's ref (dots): tickets at or below it",
            examples=["yuhu.wanlou"],
        ),
    ],
    unit: LeadUnitFilter = "",
    category: CategoryFilter = "",
    start_time: StartTime = None,
    end_time: EndTime = None,
) -> TicketStatistics:
    reply = await call(
        request,
        _tickets(request).GetTicketStatistics,
        pb.GetTicketStatisticsRequest(
            node=path_of(node),
            unit=_name("units", unit),
            category=_name("categories", category),
            start_time=timestamp(start_time, "start_time"),
            end_time=timestamp(end_time, "end_time"),
        ),
        caller,
    )
    # The reply carries no node: the one asked about is the one answered.
    return TicketStatistics.of(reply, node=path_of(node))


# ----------------------------------------------------------------------------- working calendar

calendar = Resource(
    api, "/calendar", pb.CalendarYear, ("year", Year), view=CalendarYear, collection="calendarYears"
)
calendar.get("A year's public holidays and make-up workdays (the working-hour SLA calendar)")
calendar.action(
    "PUT",
    "",
    "set_calendar_year",
    "Load a year's public holidays and make-up workdays (replaces that year's days)",
    body=CalendarYearBody,
    message=lambda year, body: pb.SetCalendarYearRequest(
        calendar_year=body.to_pb(pb.CalendarYear, name=f"calendarYears/{year}", year=year)
    ),
)
