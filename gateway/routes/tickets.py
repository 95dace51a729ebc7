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
    to_pb,
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


api = Endpoints(router, _tickets)


def _name(collection: str, code: str) -> str:
    return f"{collection}/{code}" if code else ""


# ----------------------------------------------------------------------------- categories

api.get(
    "/categories",
    "list_categories",
    rpc="ListCategories",
    view=CategoryPage,
    summary="The category catalogue (active ones unless asked)",
    params={
        "group": Param(Annotated[str, free_text("group", max_length=64, description="Only this group")], ""),
        "q": Param(
            Annotated[str, free_text("q", max_length=64, description="Substring of name, code or a keyword")],
            "",
        ),
        "include_inactive": Param(bool, False),
        **PAGE,
    },
    message=lambda group, q, include_inactive, page_size, page_token: pb.ListCategoriesRequest(
        group=group, query=q, include_inactive=include_inactive, page_size=page_size, page_token=page_token
    ),
)
api.post(
    "/categories",
    "create_category",
    rpc="CreateCategory",
    view=Category,
    status_code=201,
    summary="Add a category: routing, priority, matter class, attributes and SLA",
    body=NewCategory,
    message=lambda body: pb.CreateCategoryRequest(category=body.to_pb(pb.Category)),
    location=lambda category, _: f"/categories/{category.code}",
)
api.get(
    "/categories/{code}",
    "get_category",
    rpc="GetCategory",
    view=Category,
    summary="Get a category",
    params={"code": CategoryCode},
    message=lambda code: pb.GetCategoryRequest(name=f"categories/{code}"),
)


def _update_category(code: str, body: CategoryPatch) -> pb.UpdateCategoryRequest:
    category, mask = body.patch(pb.Category, name=f"categories/{code}", code=code)
    return pb.UpdateCategoryRequest(category=category, update_mask=mask)


api.patch(
    "/categories/{code}",
    "update_category",
    rpc="UpdateCategory",
    view=Category,
    summary="Update a category (fields present are changed; `active: false` retires it)",
    params={"code": CategoryCode},
    body=CategoryPatch,
    message=_update_category,
)


# ----------------------------------------------------------------------------- units

api.get(
    "/units",
    "list_units",
    rpc="ListUnits",
    view=UnitPage,
    summary="Handling units: the street's centers and departments",
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
        ),
        **PAGE,
    },
    message=lambda node, page_size, page_token: pb.ListUnitsRequest(
        node=path_of(node), page_size=page_size, page_token=page_token
    ),
)
api.post(
    "/units",
    "create_unit",
    rpc="CreateUnit",
    view=Unit,
    status_code=201,
    summary="Add a handling unit",
    body=NewUnit,
    message=lambda body: pb.CreateUnitRequest(unit=body.to_pb(pb.Unit)),
    location=lambda unit, _: f"/units/{unit.code}",
)
api.get(
    "/units/{code}",
    "get_unit",
    rpc="GetUnit",
    view=Unit,
    summary="Get a handling unit",
    params={"code": UnitCode},
    message=lambda code: pb.GetUnitRequest(name=f"units/{code}"),
)
api.get(
    "/units/{code}/members",
    "list_unit_members",
    rpc="ListUnitMembers",
    view=UnitMemberPage,
    summary="Staff of a unit",
    params={"code": UnitCode, **PAGE},
    message=lambda code, page_size, page_token: pb.ListUnitMembersRequest(
        parent=f"units/{code}", page_size=page_size, page_token=page_token
    ),
)
api.post(
    "/units/{code}/members",
    "add_unit_member",
    rpc="AddUnitMember",
    view=UnitMember,
    status_code=201,
    summary="Add a person to a unit: they act on tickets dispatched to it",
    params={"code": UnitCode},
    body=NewUnitMember,
    message=lambda code, body: pb.AddUnitMemberRequest(parent=f"units/{code}", user=body.user),
    location=lambda member, p: f"/units/{p['code']}/members/{member.user.removeprefix('users/')}",
)
api.delete(
    "/units/{code}/members/{user_id}",
    "remove_unit_member",
    rpc="RemoveUnitMember",
    summary="Take a person off a unit (their next call is refused)",
    params={"code": UnitCode, "user_id": UserId},
    message=lambda code, user_id: pb.RemoveUnitMemberRequest(name=f"units/{code}/members/{user_id}"),
)


# ----------------------------------------------------------------------------- tickets

api.post(
    "/tickets",
    "create_ticket",
    rpc="CreateTicket",
    view=Ticket,
    status_code=201,
    summary="Report a problem",
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
    location=lambda ticket, _: f"/tickets/{ticket.id}",
)


def _list_tickets(
    state: TicketStateName | None,
    category: str,
    node: str,
    unit: str,
    overdue: bool,
    start_time: dt.datetime | None,
    end_time: dt.datetime | None,
    q: str,
    mine: bool,
    updated_after: dt.datetime | None,
    page_size: int,
    page_token: str,
) -> pb.ListTicketsRequest:
    return pb.ListTicketsRequest(
        state=to_pb(state),
        category=_name("categories", category),
        node=path_of(node),
        unit=_name("units", unit),
        overdue_only=overdue,
        start_time=timestamp(start_time, "start_time"),
        end_time=timestamp(end_time, "end_time"),
        query=q,
        mine=mine,
        updated_after=timestamp(updated_after, "updated_after"),
        page_size=page_size,
        page_token=page_token,
    )


api.get(
    "/tickets",
    "list_tickets",
    rpc="ListTickets",
    view=TicketPage,
    summary="Tickets you may see, newest first",
    params={
        "state": Param(TicketStateName | None, None),
        "category": Param(CategoryFilter, ""),
        "node": Param(NodeFilter, ""),
        "unit": Param(UnitFilter, ""),
        "overdue": Param(Annotated[bool, Query(description="Only tickets past a deadline")], False),
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
        ),
        "mine": Param(Annotated[bool, Query(description="Only your own reports")], False),
        "updated_after": Param(
            Annotated[
                dt.datetime | None, Query(description="Changed after (RFC 3339), for followers that poll")
            ],
            None,
        ),
        **PAGE,
    },
    message=_list_tickets,
)
api.get(
    "/tickets/{ticket_id}",
    "get_ticket",
    rpc="GetTicket",
    view=Ticket,
    summary="Get a ticket",
    params={"ticket_id": TicketId},
    message=lambda ticket_id: pb.GetTicketRequest(name=f"tickets/{ticket_id}"),
)
api.post(
    "/tickets/{ticket_id}/transitions",
    "transition_ticket",
    rpc="TransitionTicket",
    view=Ticket,
    summary="Move a ticket through its lifecycle; returns the ticket after the action",
    description=(
        "Dispatchers `accept`, `reject`, `merge`, `escalate`, `dispatch` and `close`; the district's "
        "dispatcher `accept_escalation`; unit staff `acknowledge` (report in) or `return`, and the lead "
        "unit `start`s and `resolve`s; the reporter `rate`s; the block's supervisor or a dissatisfied "
        "reporter `reopen`s. An action the ticket's state does not allow is a 409, one outside your "
        "role or scope a 403; a refused action changes nothing."
    ),
    params={"ticket_id": TicketId},
    body=Transition,
    message=lambda ticket_id, body: body.to_pb(pb.TransitionTicketRequest, name=f"tickets/{ticket_id}"),
)
api.post(
    "/tickets/{ticket_id}/rating",
    "rate_ticket",
    rpc="TransitionTicket",
    view=Ticket,
    summary="Rate how a resolved ticket was handled (the reporter, or staff recording it)",
    params={"ticket_id": TicketId},
    body=NewRating,
    message=lambda ticket_id, body: body.to_pb(
        pb.TransitionTicketRequest, name=f"tickets/{ticket_id}", action=pb.ACTION_RATE
    ),
)
api.get(
    "/tickets/{ticket_id}/timeline",
    "list_timeline",
    rpc="ListTimelineEntries",
    view=TimelinePage,
    summary="Everything that happened to a ticket, oldest first",
    params={"ticket_id": TicketId, **PAGE},
    message=lambda ticket_id, page_size, page_token: pb.ListTimelineEntriesRequest(
        parent=f"tickets/{ticket_id}", page_size=page_size, page_token=page_token
    ),
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

api.get(
    "/calendar/{year}",
    "get_calendar_year",
    rpc="GetCalendarYear",
    view=CalendarYear,
    summary="A year's public holidays and make-up workdays (the working-hour SLA calendar)",
    params={"year": Year},
    message=lambda year: pb.GetCalendarYearRequest(name=f"calendarYears/{year}"),
)
api.put(
    "/calendar/{year}",
    "set_calendar_year",
    rpc="SetCalendarYear",
    view=CalendarYear,
    summary="Load a year's public holidays and make-up workdays (replaces that year's days)",
    params={"year": Year},
    body=CalendarYearBody,
    message=lambda year, body: pb.SetCalendarYearRequest(
        calendar_year=body.to_pb(pb.CalendarYear, name=f"calendarYears/{year}", year=year)
    ),
)
