"""Thin gRPC adapter for the tickets service."""

from __future__ import annotations

from google.protobuf import empty_pb2

from gov.tickets.v1 import tickets_pb2 as pb
from gov.tickets.v1 import tickets_pb2_grpc
from govkit.auth.principal import current_principal
from govkit.grpc_server import ServicerContext
from govkit.idempotency import Command
from govkit.protobuf import update_paths
from services.tickets import convert
from services.tickets.catalogue import CATEGORY_FIELDS, CatalogueFlows, code_of, year_of
from services.tickets.flows import TicketFlows
from services.tickets.public import PublicTickets
from services.tickets.reports import ReportFlows
from services.tickets.statistics import StatisticsFlows

SERVICE = "gov.tickets.v1.TicketsService"
# The catalogue is public: Open311 clients list services before they have a key. So is the public
# view of tickets, which can only ever answer public fields of public categories (see public.py).
PUBLIC_METHODS = (
    f"/{SERVICE}/ListCategories",
    f"/{SERVICE}/GetCategory",
    f"/{SERVICE}/ListPublicTickets",
    f"/{SERVICE}/GetPublicTicket",
)


class TicketsServicer(tickets_pb2_grpc.TicketsServiceServicer):
    def __init__(
        self,
        catalogue: CatalogueFlows,
        tickets: TicketFlows,
        statistics: StatisticsFlows,
        reports: ReportFlows,
        public: PublicTickets | None = None,
    ) -> None:
        self.catalogue = catalogue
        self.tickets = tickets
        self.stats = statistics
        self.reports = reports
        self.public = public or PublicTickets(tickets.db)

    # units
    async def CreateUnit(self, request: pb.CreateUnitRequest, context: ServicerContext) -> pb.Unit:
        return convert.unit(await self.catalogue.create_unit(current_principal(), request.unit))

    async def GetUnit(self, request: pb.GetUnitRequest, context: ServicerContext) -> pb.Unit:
        current_principal()
        return convert.unit(await self.catalogue.get_unit(code_of(request.name, "units", "name")))

    async def ListUnits(self, request: pb.ListUnitsRequest, context: ServicerContext) -> pb.ListUnitsResponse:
        current_principal()
        rows, token = await self.catalogue.list_units(request.node, request.page_size, request.page_token)
        return pb.ListUnitsResponse(units=[convert.unit(r) for r in rows], next_page_token=token)

    async def AddUnitMember(
        self, request: pb.AddUnitMemberRequest, context: ServicerContext
    ) -> pb.UnitMember:
        return convert.member(
            await self.catalogue.add_member(current_principal(), request.parent, request.user)
        )

    async def RemoveUnitMember(
        self, request: pb.RemoveUnitMemberRequest, context: ServicerContext
    ) -> empty_pb2.Empty:
        await self.catalogue.remove_member(current_principal(), request.name)
        return empty_pb2.Empty()

    async def ListUnitMembers(
        self, request: pb.ListUnitMembersRequest, context: ServicerContext
    ) -> pb.ListUnitMembersResponse:
        rows, token = await self.catalogue.list_members(
            current_principal(), request.parent, request.page_size, request.page_token
        )
        return pb.ListUnitMembersResponse(members=[convert.member(r) for r in rows], next_page_token=token)

    # categories
    async def CreateCategory(
        self, request: pb.CreateCategoryRequest, context: ServicerContext
    ) -> pb.Category:
        return convert.category(await self.catalogue.create_category(current_principal(), request.category))

    async def GetCategory(self, request: pb.GetCategoryRequest, context: ServicerContext) -> pb.Category:
        return convert.category(
            await self.catalogue.get_category(code_of(request.name, "categories", "name"))
        )

    async def ListCategories(
        self, request: pb.ListCategoriesRequest, context: ServicerContext
    ) -> pb.ListCategoriesResponse:
        rows, token = await self.catalogue.list_categories(
            request.group, request.query, request.include_inactive, request.page_size, request.page_token
        )
        return pb.ListCategoriesResponse(
            categories=[convert.category(r) for r in rows], next_page_token=token
        )

    async def UpdateCategory(
        self, request: pb.UpdateCategoryRequest, context: ServicerContext
    ) -> pb.Category:
        paths = update_paths(request, CATEGORY_FIELDS)
        return convert.category(
            await self.catalogue.update_category(current_principal(), request.category, paths)
        )

    # tickets
    async def CreateTicket(self, request: pb.CreateTicketRequest, context: ServicerContext) -> pb.Ticket:
        principal = current_principal()
        return await self.reports.create(
            principal, request.ticket, Command.of("CreateTicket", principal.subject, request)
        )

    async def GetTicket(self, request: pb.GetTicketRequest, context: ServicerContext) -> pb.Ticket:
        return convert.ticket(*await self.tickets.get(current_principal(), request.name))

    async def ListTickets(
        self, request: pb.ListTicketsRequest, context: ServicerContext
    ) -> pb.ListTicketsResponse:
        rows, token = await self.tickets.list(current_principal(), request)
        return pb.ListTicketsResponse(tickets=[convert.ticket(t, u) for t, u in rows], next_page_token=token)

    async def TransitionTicket(
        self, request: pb.TransitionTicketRequest, context: ServicerContext
    ) -> pb.Ticket:
        return convert.ticket(*await self.tickets.transition(current_principal(), request))

    async def ListTimelineEntries(
        self, request: pb.ListTimelineEntriesRequest, context: ServicerContext
    ) -> pb.ListTimelineEntriesResponse:
        rows, token = await self.tickets.timeline(
            current_principal(), request.parent, request.page_size, request.page_token
        )
        return pb.ListTimelineEntriesResponse(
            entries=[convert.timeline_entry(e) for e in rows], next_page_token=token
        )

    # the public view: no caller needed, nothing private in it
    async def ListPublicTickets(
        self, request: pb.ListPublicTicketsRequest, context: ServicerContext
    ) -> pb.ListPublicTicketsResponse:
        tickets, token = await self.public.list(request)
        return pb.ListPublicTicketsResponse(tickets=tickets, next_page_token=token)

    async def GetPublicTicket(
        self, request: pb.GetPublicTicketRequest, context: ServicerContext
    ) -> pb.PublicTicket:
        return await self.public.get(request.name)

    async def GetTicketStatistics(
        self, request: pb.GetTicketStatisticsRequest, context: ServicerContext
    ) -> pb.TicketStatistics:
        return await self.stats.statistics(await self.tickets.viewer(current_principal()), request)

    # working calendar
    async def SetCalendarYear(
        self, request: pb.SetCalendarYearRequest, context: ServicerContext
    ) -> pb.CalendarYear:
        year = await self.catalogue.set_calendar_year(current_principal(), request.calendar_year)
        return await self._calendar_year(year)

    async def GetCalendarYear(
        self, request: pb.GetCalendarYearRequest, context: ServicerContext
    ) -> pb.CalendarYear:
        current_principal()
        return await self._calendar_year(year_of(request.name))

    async def _calendar_year(self, year: int) -> pb.CalendarYear:
        days, updated = await self.catalogue.get_calendar_year(year)
        return convert.calendar_year(year, days, updated)
