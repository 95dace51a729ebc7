"""`python -m services.points serve|migrate|verify`."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from gov.blocks.v1 import blocks_pb2_grpc
from gov.identity.v1 import identity_pb2_grpc
from gov.points.v1 import points_pb2_grpc
from govkit import channels, service_cli
from govkit.consumer import ConsumerSpec
from govkit.db import Database
from govkit.grpc_server import ServiceDefinition, ServiceRuntime
from services.points.catalogue import Catalogue
from services.points.credit import Credit
from services.points.earning import SUBJECTS as EARNING_SUBJECTS
from services.points.earning import VISIT_SUBJECTS, Earning
from services.points.flows import PointsFlows, Settings
from services.points.grpc_api import SERVICE, PointsServicer
from services.points.lovebank import LoveBank
from services.points.models import platform
from services.points.rankings import Rankings
from services.points.settings import PointsSettings
from services.points.sweeper import Sweeper
from services.points.verify import verify

MIGRATIONS = Path(__file__).parent / "migrations"


def build(db: Database, settings: PointsSettings) -> tuple[Catalogue, PointsFlows, LoveBank]:
    catalogue = Catalogue(db)
    blocks = blocks_pb2_grpc.BlocksServiceStub(channels.to_peer(settings.blocks_addr, settings))
    flows = PointsFlows(
        db,
        catalogue,
        blocks,
        Settings(
            approval_timeout=dt.timedelta(days=settings.approval_timeout_days),
            redemption_hold=dt.timedelta(hours=settings.redemption_hold_hours),
            expiry_notice=dt.timedelta(days=settings.expiry_notice_days),
        ),
    )
    return catalogue, flows, LoveBank(flows)


def definition(settings: PointsSettings) -> ServiceDefinition:
    parts: dict[str, object] = {}

    def register(server, runtime: ServiceRuntime) -> None:  # type: ignore[no-untyped-def]
        catalogue, flows, lovebank = build(runtime.db, settings)
        earning = Earning(flows)
        parts.update(flows=flows, lovebank=lovebank, earning=earning)
        assert runtime.identity_channel is not None
        identity = identity_pb2_grpc.IdentityServiceStub(runtime.identity_channel)
        servicer = PointsServicer(
            catalogue, flows, lovebank, earning, Credit(flows), Rankings(flows, identity)
        )
        points_pb2_grpc.add_PointsServiceServicer_to_server(servicer, server)

    async def earn(session, event) -> None:  # type: ignore[no-untyped-def]
        # Set by register(), which the runtime calls before it connects the bus and starts consumers.
        await parts["earning"].handle(session, event)  # type: ignore[attr-defined]

    async def sweep(runtime: ServiceRuntime) -> None:
        sweeper = Sweeper(parts["flows"], parts["lovebank"])  # type: ignore[arg-type]
        await sweeper.run(settings.sweep_interval_seconds)

    return service_cli.service_definition(
        "points",
        settings,
        platform,
        register,
        SERVICE,
        background=[sweep],
        consumers=[
            ConsumerSpec(
                durable="points-earning", stream="TICKETS", subjects=list(EARNING_SUBJECTS), handler=earn
            ),
            ConsumerSpec(
                durable="points-earning-visits", stream="BLOCKS", subjects=list(VISIT_SUBJECTS), handler=earn
            ),
        ],
    )


async def _verify(settings: PointsSettings) -> int:
    async with service_cli.database(settings) as db:
        checked, problems = await verify(db)
    for problem in problems:
        print(problem)
    print(f"verify: {checked} accounts, {len(problems)} problems")
    return 1 if problems else 0


def main(argv: list[str] | None = None) -> int:
    verify_command = service_cli.async_command(
        "prove every account's balances equal the sums of its entries", _verify
    )
    return service_cli.main(
        "points", PointsSettings, definition, MIGRATIONS, argv, {"verify": verify_command}
    )


if __name__ == "__main__":
    raise SystemExit(main())
