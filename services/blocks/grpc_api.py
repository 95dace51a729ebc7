"""Thin gRPC adapter for the blocks service."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator

import grpc
from google.protobuf import empty_pb2

from gov.blocks.v1 import blocks_pb2 as pb
from gov.blocks.v1 import blocks_pb2_grpc
from govkit.auth.principal import Principal, current_principal, optional_principal
from govkit.auth.tokens import TokenVerifier, bearer_token
from govkit.errors import DomainError, InvalidArgument, Unauthenticated
from govkit.grpc_server import abort_with
from govkit.protobuf import optional_time, update_paths
from govkit.validation import resource_id
from services.blocks import convert
from services.blocks.flows import BlocksFlows, node_path
from services.blocks.households import HouseholdFlows
from services.blocks.imports import ImportFlows

SERVICE = "gov.blocks.v1.BlocksService"
# Initial metadata a StreamImportFile caller waits for before it sends the file's content.
ADMITTED_KEY = "x-import-admitted"

log = logging.getLogger(__name__)


class BlocksServicer(blocks_pb2_grpc.BlocksServiceServicer):
    def __init__(
        self,
        tree: BlocksFlows,
        households: HouseholdFlows,
        imports: ImportFlows,
        verifier: TokenVerifier | None = None,
    ) -> None:
        self.tree = tree
        self.households = households
        self.imports = imports
        self.verifier = verifier

    # region tree
    async def CreateNode(self, request, context) -> pb.Node:
        n = request.node
        row = await self.tree.create_node(
            current_principal(),
            code=n.code,
            parent=n.parent,
            kind_value=n.kind,
            display_name=n.display_name,
            boundary=n.boundary_geojson,
        )
        return convert.node(row)

    async def GetNode(self, request, context) -> pb.Node:
        return convert.node(await self.tree.get_node(current_principal(), node_path(request.name)))

    async def ListNodes(self, request, context) -> pb.ListNodesResponse:
        rows, token = await self.tree.list_nodes(
            current_principal(),
            parent=request.parent,
            page_size=request.page_size,
            page_token=request.page_token,
            include_retired=request.include_retired,
        )
        return pb.ListNodesResponse(nodes=[convert.node(r) for r in rows], next_page_token=token)

    async def UpdateNode(self, request, context) -> pb.Node:
        paths = update_paths(request, {"display_name", "boundary_geojson", "parent"})
        changes = {p: getattr(request.node, p) for p in paths}
        return convert.node(
            await self.tree.update_node(current_principal(), node_path(request.node.name), changes)
        )

    async def RetireNode(self, request, context) -> pb.Node:
        return convert.node(await self.tree.retire_node(current_principal(), node_path(request.name)))

    # location and coverage
    async def LocateBlock(self, request, context) -> pb.LocateBlockResponse:
        current_principal()
        return pb.LocateBlockResponse(block=convert.node(await self.tree.locate(request.lat, request.lng)))

    async def AuditCoverage(self, request, context) -> pb.CoverageReport:
        node, report, missing, blocks = await self.tree.audit_coverage(
            current_principal(), node_path(request.name)
        )
        return pb.CoverageReport(
            node=f"nodes/{node.path}",
            blocks=blocks,
            blocks_without_boundary=missing,
            parent_area_m2=report.parent_area_m2 or 0.0,
            covered_area_m2=report.covered_area_m2,
            overlaps=[
                pb.CoverageOverlap(
                    block_a=o.a, block_b=o.b, area_m2=o.area_m2, geometry_geojson=json.dumps(o.geometry)
                )
                for o in report.overlaps
            ],
            gaps=[
                pb.CoverageGap(area_m2=g.area_m2, geometry_geojson=json.dumps(g.geometry))
                for g in report.gaps
            ],
            complete=report.complete and not missing,
        )

    # staffing
    async def AssignStaff(self, request, context) -> pb.StaffAssignment:
        a = request.assignment
        row = await self.tree.assign_staff(
            current_principal(),
            block=a.block,
            user=a.user,
            role_value=a.role,
            kind_value=a.assistant_kind,
            household_ids=list(a.household_ids),
            replace=request.replace,
        )
        return convert.staff(row, list(a.household_ids))

    async def RemoveStaff(self, request, context) -> empty_pb2.Empty:
        await self.tree.remove_staff(current_principal(), request.name)
        return empty_pb2.Empty()

    async def ListStaff(self, request, context) -> pb.ListStaffResponse:
        rows, token = await self.tree.list_staff(
            current_principal(),
            node=request.node,
            user=request.user,
            page_size=request.page_size,
            page_token=request.page_token,
        )
        return pb.ListStaffResponse(assignments=[convert.staff(r) for r in rows], next_page_token=token)

    async def AuditStaffing(self, request, context) -> pb.StaffingAudit:
        blocks, complete, violations = await self.tree.audit_staffing(
            current_principal(), node_path(request.node, "node")
        )
        return pb.StaffingAudit(
            blocks=blocks,
            complete_blocks=complete,
            violations=[pb.StaffingViolation(block=b, rule=r) for b, r in violations],
        )

    # buildings and households
    async def CreateBuilding(self, request, context) -> pb.Building:
        return convert.building(await self.households.create_building(current_principal(), request.building))

    async def ListBuildings(self, request, context) -> pb.ListBuildingsResponse:
        rows, token = await self.households.list_buildings(
            current_principal(), request.block, request.page_size, request.page_token
        )
        return pb.ListBuildingsResponse(buildings=[convert.building(r) for r in rows], next_page_token=token)

    async def CreateHousehold(self, request, context) -> pb.Household:
        row, residents = await self.households.create_household(
            current_principal(), request.household, request.request_id
        )
        return convert.household(row, residents)

    async def GetHousehold(self, request, context) -> pb.Household:
        hid = resource_id(request.name, "households")
        return convert.household(*await self.households.get_household(current_principal(), hid))

    async def ListHouseholds(self, request, context) -> pb.ListHouseholdsResponse:
        rows, token = await self.households.list_households(
            current_principal(),
            node=request.node,
            page_size=request.page_size,
            page_token=request.page_token,
            tag=request.tag,
            query=request.query,
        )
        return pb.ListHouseholdsResponse(
            households=[convert.household(h, r) for h, r in rows], next_page_token=token
        )

    async def UpdateHousehold(self, request, context) -> pb.Household:
        paths = update_paths(request, {"address", "tags", "residents", "building"})
        return convert.household(
            *await self.households.update_household(current_principal(), request.household, paths)
        )

    async def MoveHousehold(self, request, context) -> pb.Household:
        return convert.household(
            *await self.households.move_household(
                current_principal(), request.name, request.block, request.building
            )
        )

    # visits and statistics
    async def RecordVisit(self, request, context) -> pb.Visit:
        return convert.visit(
            await self.households.record_visit(current_principal(), request.visit, request.request_id)
        )

    async def ListVisits(self, request, context) -> pb.ListVisitsResponse:
        rows, token = await self.households.list_visits(
            current_principal(),
            household=request.household,
            node=request.node,
            start=optional_time(request, "start_time"),
            end=optional_time(request, "end_time"),
            page_size=request.page_size,
            page_token=request.page_token,
        )
        return pb.ListVisitsResponse(visits=[convert.visit(r) for r in rows], next_page_token=token)

    async def GetNodeStatistics(self, request, context) -> pb.NodeStatistics:
        return await self.households.statistics(
            current_principal(),
            request.name,
            optional_time(request, "start_time"),
            optional_time(request, "end_time"),
        )

    # bulk import
    async def ImportFile(self, request, context) -> pb.ImportFileResponse:
        return await self.imports.import_file(
            current_principal(), request.kind, request.content, validate_only=request.validate_only
        )

    async def StreamImportFile(self, request_iterator, context) -> pb.ImportFileResponse:
        # Maps its own errors: the platform interceptor may pass streaming handlers through.
        try:
            principal = await self._stream_caller(context)
            first = await anext(aiter(request_iterator), None)
            if first is None:
                raise InvalidArgument("the stream is empty: the first message names the kind", field="kind")
            kind, access = await self.imports.admit(principal, first.kind)
            await context.send_initial_metadata(((ADMITTED_KEY, kind),))

            async def contents() -> AsyncIterator[bytes]:
                yield first.content
                async for chunk in request_iterator:
                    if chunk.kind and chunk.kind != first.kind:
                        raise InvalidArgument("only the first message names the kind", field="kind")
                    yield chunk.content

            return await self.imports.receive(
                access, first.kind, contents(), validate_only=first.validate_only
            )
        except DomainError as exc:
            await abort_with(context, exc)
        except grpc.aio.AbortError:
            raise
        except Exception:
            log.exception("unhandled error in StreamImportFile")
            await context.abort(grpc.StatusCode.INTERNAL, "internal error")
        raise AssertionError("unreachable: abort raises")

    async def _stream_caller(self, context: grpc.aio.ServicerContext) -> Principal:
        """The caller as unary methods see it (govkit.auth.principal). Until the platform interceptor
        authenticates streaming calls too, it leaves no principal for them, and the bearer token is
        verified here with the service's own verifier, the same way."""
        principal = optional_principal()
        if principal is not None:
            return principal
        if self.verifier is None:
            raise Unauthenticated("authentication required")
        metadata = {k: v for k, v in context.invocation_metadata() or () if isinstance(v, str)}
        return await self.verifier.verify(bearer_token(metadata))
