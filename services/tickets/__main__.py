"""`python -m services.tickets serve|migrate|load-calendar YEAR FILE|rebuild-statistics`."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys
from pathlib import Path

import grpc

from gov.blocks.v1 import blocks_pb2_grpc
from gov.identity.v1 import identity_pb2_grpc
from gov.tickets.v1 import tickets_pb2 as pb
from gov.tickets.v1 import tickets_pb2_grpc
from govkit import service_cli
from govkit.auth.principal import Binding, Principal
from govkit.auth.roles import Role
from govkit.errors import DomainError
from govkit.grpc_server import ServiceDefinition, ServiceRuntime
from services.tickets import node_moves, statistics
from services.tickets.calendar import parse_days
from services.tickets.catalogue import CalendarStore, CatalogueFlows
from services.tickets.flows import Settings, TicketFlows
from services.tickets.grpc_api import PUBLIC_METHODS, SERVICE, TicketsServicer
from services.tickets.models import platform
from services.tickets.reports import ReportFlows
from services.tickets.settings import TicketsSettings
from services.tickets.statistics import StatisticsFlows
from services.tickets.sweeper import Sweeper

MIGRATIONS = Path(__file__).parent / "migrations"
# The calendar command runs as ops with shell access to the service: a system principal.
OPERATOR = Principal("system:calendar-command", (Binding(Role.ADMIN, "*"),))


def definition(settings: TicketsSettings) -> ServiceDefinition:
    def register(server: grpc.aio.Server, runtime: ServiceRuntime) -> None:
        assert runtime.identity_channel is not None
        calendar = CalendarStore(runtime.db)
        catalogue = CatalogueFlows(
            runtime.db, calendar, identity_pb2_grpc.IdentityServiceStub(runtime.identity_channel)
        )
        blocks = blocks_pb2_grpc.BlocksServiceStub(runtime.channel(settings.blocks_addr))
        rules = Settings(
            reopen_window=dt.timedelta(days=settings.reopen_window_days),
            duplicate_radius_m=settings.duplicate_radius_m,
            duplicate_window=dt.timedelta(hours=settings.duplicate_window_hours),
        )
        tickets = TicketFlows(runtime.db, catalogue, calendar, rules)
        reports = ReportFlows(runtime.db, catalogue, calendar, blocks, rules)
        servicer = TicketsServicer(catalogue, tickets, StatisticsFlows(runtime.db), reports)
        tickets_pb2_grpc.add_TicketsServiceServicer_to_server(servicer, server)

    async def sweep(runtime: ServiceRuntime) -> None:
        await Sweeper(runtime.db).run(settings.sweep_interval_seconds)

    return service_cli.service_definition(
        "tickets",
        settings,
        platform,
        register,
        SERVICE,
        public_methods=PUBLIC_METHODS,
        background=[sweep],
        consumers=[node_moves.SPEC],
    )


async def _load_calendar(settings: TicketsSettings, year: int, text: str) -> int:
    async with service_cli.database(settings) as db:
        try:
            days = parse_days(text)
            message = pb.CalendarYear(
                year=year,
                days=[
                    pb.CalendarDay(
                        date=day.isoformat(),
                        kind=pb.DAY_KIND_HOLIDAY if kind == "holiday" else pb.DAY_KIND_WORKDAY,
                        display_name=name,
                    )
                    for day, kind, name in days
                ],
            )
            await CatalogueFlows(db, CalendarStore(db)).set_calendar_year(OPERATOR, message)
        except DomainError as exc:
            sys.stderr.write(f"load-calendar failed: {exc}\n")
            return 1
    holidays = sum(1 for _, kind, _ in days if kind == "holiday")
    print(f"calendar {year}: {holidays} holidays, {len(days) - holidays} make-up workdays loaded")
    return 0


async def _rebuild_statistics(settings: TicketsSettings) -> int:
    async with service_cli.database(settings) as db:
        tickets = await statistics.rebuild(db)
    print(f"statistics rebuilt from {tickets} tickets")
    return 0


def _calendar_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("year", type=int)
    parser.add_argument("file", type=Path)


def main(argv: list[str] | None = None) -> int:
    commands = {
        "load-calendar": service_cli.Command[TicketsSettings](
            "load one year's holidays and make-up workdays (date,kind,name CSV)",
            lambda args, settings: asyncio.run(
                _load_calendar(settings, args.year, args.file.read_text(encoding="utf-8"))
            ),
            _calendar_arguments,
        ),
        "rebuild-statistics": service_cli.async_command(
            "recompute the districts' monthly sums from the tickets (after a bulk load)", _rebuild_statistics
        ),
    }
    return service_cli.main("tickets", TicketsSettings, definition, MIGRATIONS, argv, commands)


if __name__ == "__main__":
    raise SystemExit(main())
