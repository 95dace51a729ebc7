"""Tickets: categories, handling units, tickets and their lifecycle, timeline, statistics, calendar.

Each handler is one upstream call to the TicketsService; JSON shapes and their protobuf conversion
live in gateway.tickets_resources. Categories and units are named by their codes, tickets by their
ids, region nodes in query strings by their `ref` (dots: `yuhu.wanlou.taoyuan.b07`).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from gateway.blocks_resources import ID_PATTERN, NODE_REF_MAX_LENGTH, NODE_REF_PATTERN, path_of, timestamp
from gateway.params import IdempotencyKey, PageSize, PageToken, free_text
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


def _name(collection: str, code: str) -> str:
    return f"{collection}/{code}" if code else ""


# ----------------------------------------------------------------------------- categories


@router.get(
    "/categories", response_model=CategoryPage, summary="The category catalogue (active ones unless asked)"
)
async def list_categories(
    request: Request,
    caller: CallerDep,
    group: Annotated[str, free_text("group", max_length=64, description="Only this group")] = "",
    q: Annotated[str, free_text("q", max_length=64, description="Substring of name, code or a keyword")] = "",
    include_inactive: bool = False,
    page_size: PageSize = 50,
    page_token: PageToken = "",
) -> CategoryPage:
    reply = await call(
        request,
        _tickets(request).ListCategories,
        pb.ListCategoriesRequest(
            group=group,
            query=q,
            include_inactive=include_inactive,
            page_size=page_size,
            page_token=page_token,
        ),
        caller,
    )
    return CategoryPage.of(reply)


@router.post(
    "/categories",
    response_model=Category,
    status_code=201,
    summary="Add a category: routing, priority, matter class, attributes and SLA",
)
async def create_category(
    request: Request, response: Response, body: NewCategory, caller: CallerDep
) -> Category:
    reply = await call(
        request,
        _tickets(request).CreateCategory,
        pb.CreateCategoryRequest(category=body.to_pb(pb.Category)),
        caller,
    )
    category = Category.of(reply)
    response.headers["Location"] = f"/api/v1/categories/{category.code}"
    return category


@router.get("/categories/{code}", response_model=Category, summary="Get a category")
async def get_category(request: Request, code: CategoryCode, caller: CallerDep) -> Category:
    reply = await call(
        request, _tickets(request).GetCategory, pb.GetCategoryRequest(name=f"categories/{code}"), caller
    )
    return Category.of(reply)


@router.patch(
    "/categories/{code}",
    response_model=Category,
    summary="Update a category (fields present are changed; `active: false` retires it)",
)
async def update_category(
    request: Request, code: CategoryCode, body: CategoryPatch, caller: CallerDep
) -> Category:
    message, mask = body.patch(pb.Category, name=f"categories/{code}", code=code)
    reply = await call(
        request,
        _tickets(request).UpdateCategory,
        pb.UpdateCategoryRequest(category=message, update_mask=mask),
        caller,
    )
    return Category.of(reply)


# ----------------------------------------------------------------------------- units


@router.get("/units", response_model=UnitPage, summary="Handling units: the street's centers and departments")
async def list_units(
    request: Request,
    caller: CallerDep,
    node: Annotated[
        str,
        Query(
            max_length=NODE_REF_MAX_LENGTH,
            pattern=rf"^$|{NODE_REF_PATTERN}",
            description="A node's ref (dots): units serving it or a node above it; empty: all",
            examples=["yuhu.wanlou"],
        ),
    ] = "",
    page_size: PageSize = 50,
    page_token: PageToken = "",
) -> UnitPage:
    reply = await call(
        request,
        _tickets(request).ListUnits,
        pb.ListUnitsRequest(node=path_of(node), page_size=page_size, page_token=page_token),
        caller,
    )
    return UnitPage.of(reply)


@router.post("/units", response_model=Unit, status_code=201, summary="Add a handling unit")
async def create_unit(request: Request, response: Response, body: NewUnit, caller: CallerDep) -> Unit:
    reply = await call(
        request, _tickets(request).CreateUnit, pb.CreateUnitRequest(unit=body.to_pb(pb.Unit)), caller
    )
    unit = Unit.of(reply)
    response.headers["Location"] = f"/api/v1/units/{unit.code}"
    return unit


@router.get("/units/{code}", response_model=Unit, summary="Get a handling unit")
async def get_unit(request: Request, code: UnitCode, caller: CallerDep) -> Unit:
    reply = await call(request, _tickets(request).GetUnit, pb.GetUnitRequest(name=f"units/{code}"), caller)
    return Unit.of(reply)


@router.get("/units/{code}/members", response_model=UnitMemberPage, summary="Staff of a unit")
async def list_unit_members(
    request: Request,
    code: UnitCode,
    caller: CallerDep,
    page_size: PageSize = 50,
    page_token: PageToken = "",
) -> UnitMemberPage:
    reply = await call(
        request,
        _tickets(request).ListUnitMembers,
        pb.ListUnitMembersRequest(parent=f"units/{code}", page_size=page_size, page_token=page_token),
        caller,
    )
    return UnitMemberPage.of(reply)


@router.post(
    "/units/{code}/members",
    response_model=UnitMember,
    status_code=201,
    summary="Add a person to a unit: they act on tickets dispatched to it",
)
async def add_unit_member(
    request: Request, response: Response, code: UnitCode, body: NewUnitMember, caller: CallerDep
) -> UnitMember:
    reply = await call(
        request,
        _tickets(request).AddUnitMember,
        pb.AddUnitMemberRequest(parent=f"units/{code}", user=body.user),
        caller,
    )
    member = UnitMember.of(reply)
    response.headers["Location"] = f"/api/v1/units/{code}/members/{member.user.removeprefix('users/')}"
    return member


@router.delete(
    "/units/{code}/members/{user_id}",
    status_code=204,
    summary="Take a person off a unit (their next call is refused)",
)
async def remove_unit_member(
    request: Request, code: UnitCode, user_id: UserId, caller: CallerDep
) -> Response:
    await call(
        request,
        _tickets(request).RemoveUnitMember,
        pb.RemoveUnitMemberRequest(name=f"units/{code}/members/{user_id}"),
        caller,
    )
    return Response(status_code=204)


# ----------------------------------------------------------------------------- tickets


@router.post(
    "/tickets",
    response_model=Ticket,
    status_code=201,
    summary="Report a problem",
    description=(
        "Locate it by a point (`location.latitude`/`longitude`, resolved to its block), a household "
        "(`location.household`), or, for an address-only report, a `node`. A retry with the same "
        "`Idempotency-Key` returns the first ticket."
    ),
)
async def create_ticket(
    request: Request,
    response: Response,
    body: NewTicket,
    caller: CallerDep,
    idempotency_key: IdempotencyKey = None,
) -> Ticket:
    reply = await call(
        request,
        _tickets(request).CreateTicket,
        pb.CreateTicketRequest(ticket=body.to_pb(pb.Ticket), request_id=idempotency_key or ""),
        caller,
    )
    ticket = Ticket.of(reply)
    response.headers["Location"] = f"/api/v1/tickets/{ticket.id}"
    return ticket


@router.get("/tickets", response_model=TicketPage, summary="Tickets you may see, newest first")
async def list_tickets(
    request: Request,
    caller: CallerDep,
    state: TicketStateName | None = None,
    category: CategoryFilter = "",
    node: NodeFilter = "",
    unit: UnitFilter = "",
    overdue: Annotated[bool, Query(description="Only tickets past a deadline")] = False,
    start_time: Annotated[dt.datetime | None, Query(description="Reported at or after (RFC 3339)")] = None,
    end_time: Annotated[dt.datetime | None, Query(description="Reported before (RFC 3339)")] = None,
    q: Annotated[
        str, free_text("q", max_length=100, description="Substring of title, description or address")
    ] = "",
    mine: Annotated[bool, Query(description="Only your own reports")] = False,
    updated_after: Annotated[
        dt.datetime | None, Query(description="Changed after (RFC 3339), for followers that poll")
    ] = None,
    page_size: PageSize = 50,
    page_token: PageToken = "",
) -> TicketPage:
    reply = await call(
        request,
        _tickets(request).ListTickets,
        pb.ListTicketsRequest(
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
        ),
        caller,
    )
    return TicketPage.of(reply)


@router.get("/tickets/{ticket_id}", response_model=Ticket, summary="Get a ticket")
async def get_ticket(request: Request, ticket_id: TicketId, caller: CallerDep) -> Ticket:
    reply = await call(
        request, _tickets(request).GetTicket, pb.GetTicketRequest(name=f"tickets/{ticket_id}"), caller
    )
    return Ticket.of(reply)


@router.post(
    "/tickets/{ticket_id}/transitions",
    response_model=Ticket,
    summary="Move a ticket through its lifecycle; returns the ticket after the action",
    description=(
        "Dispatchers `accept`, `reject`, `merge`, `escalate`, `dispatch` and `close`; the district's "
        "dispatcher `accept_escalation`; unit staff `acknowledge` (report in) or `return`, and the lead "
        "unit `start`s and `resolve`s; the reporter `rate`s; the block's supervisor or a dissatisfied "
        "reporter `reopen`s. An action the ticket's state does not allow is a 409, one outside your "
        "role or scope a 403; a refused action changes nothing."
    ),
)
async def transition_ticket(
    request: Request, ticket_id: TicketId, body: Transition, caller: CallerDep
) -> Ticket:
    message = body.to_pb(pb.TransitionTicketRequest, name=f"tickets/{ticket_id}")
    reply = await call(request, _tickets(request).TransitionTicket, message, caller)
    return Ticket.of(reply)


@router.post(
    "/tickets/{ticket_id}/rating",
    response_model=Ticket,
    summary="Rate how a resolved ticket was handled (the reporter, or staff recording it)",
)
async def rate_ticket(request: Request, ticket_id: TicketId, body: NewRating, caller: CallerDep) -> Ticket:
    message = body.to_pb(pb.TransitionTicketRequest, name=f"tickets/{ticket_id}", action=pb.ACTION_RATE)
    reply = await call(request, _tickets(request).TransitionTicket, message, caller)
    return Ticket.of(reply)


@router.get(
    "/tickets/{ticket_id}/timeline",
    response_model=TimelinePage,
    summary="Everything that happened to a ticket, oldest first",
)
async def list_timeline(
    request: Request,
    ticket_id: TicketId,
    caller: CallerDep,
    page_size: PageSize = 50,
    page_token: PageToken = "",
) -> TimelinePage:
    reply = await call(
        request,
        _tickets(request).ListTimelineEntries,
        pb.ListTimelineEntriesRequest(
            parent=f"tickets/{ticket_id}", page_size=page_size, page_token=page_token
        ),
        caller,
    )
    return TimelinePage.of(reply)


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
    return TicketStatistics.of(reply, node=path_of(node))


# ----------------------------------------------------------------------------- working calendar


@router.get(
    "/calendar/{year}",
    response_model=CalendarYear,
    summary="A year's public holidays and make-up workdays (the working-hour SLA calendar)",
)
async def get_calendar_year(request: Request, year: Year, caller: CallerDep) -> CalendarYear:
    reply = await call(
        request,
        _tickets(request).GetCalendarYear,
        pb.GetCalendarYearRequest(name=f"calendarYears/{year}"),
        caller,
    )
    return CalendarYear.of(reply)


@router.put(
    "/calendar/{year}",
    response_model=CalendarYear,
    summary="Load a year's public holidays and make-up workdays (replaces that year's days)",
)
async def set_calendar_year(
    request: Request, year: Year, body: CalendarYearBody, caller: CallerDep
) -> CalendarYear:
    reply = await call(
        request,
        _tickets(request).SetCalendarYear,
        pb.SetCalendarYearRequest(
            calendar_year=body.to_pb(pb.CalendarYear, name=f"calendarYears/{year}", year=year)
        ),
        caller,
    )
    return CalendarYear.of(reply)
