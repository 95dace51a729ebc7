"""Rows to protobuf messages."""

from __future__ import annotations

import json

from google.protobuf.internal.enum_type_wrapper import EnumTypeWrapper

from gov.blocks.v1 import blocks_pb2 as pb
from gov.blocks.v1 import events_pb2
from govkit import protobuf
from govkit.protobuf import ProtoEnum
from govkit.protobuf import timestamp as ts
from services.blocks import models


def enum_value(enum: type[ProtoEnum], prefix: str, name: str) -> ProtoEnum:
    return protobuf.enum_value(enum, f"{prefix}_{name.upper()}")


def enum_name(enum: EnumTypeWrapper, prefix: str, value: int) -> str | None:
    if value == 0:
        return None
    try:
        return enum.Name(value).removeprefix(f"{prefix}_").lower()
    except ValueError:
        return None


def node(row: models.Node) -> pb.Node:
    return pb.Node(
        name=f"nodes/{row.path}",
        path=row.path,
        code=row.code,
        parent=row.parent_path,
        kind=enum_value(pb.NodeKind, "NODE_KIND", row.kind),
        display_name=row.display_name,
        boundary_geojson=row.boundary or "",
        state=enum_value(pb.NodeState, "NODE_STATE", row.state),
        create_time=ts(row.create_time),
        update_time=ts(row.update_time),
    )


def staff(row: models.StaffAssignment, household_ids: list[str] | None = None) -> pb.StaffAssignment:
    return pb.StaffAssignment(
        name=f"nodes/{row.block_path}/staff/{row.id}",
        block=row.block_path,
        user=f"users/{row.user_id}",
        role=enum_value(pb.StaffRole, "STAFF_ROLE", row.role),
        assistant_kind=enum_value(pb.AssistantKind, "ASSISTANT_KIND", row.assistant_kind)
        if row.assistant_kind
        else None,
        household_ids=household_ids or [],
        create_time=ts(row.create_time),
    )


def building(row: models.Building) -> pb.Building:
    return pb.Building(
        name=f"nodes/{row.block_path}/buildings/{row.code}",
        block=row.block_path,
        code=row.code,
        display_name=row.display_name,
        address=row.address,
    )


def resident(row: models.Resident) -> pb.Resident:
    return pb.Resident(
        id=row.id,
        display_name=row.display_name,
        relation=enum_value(pb.Relation, "RELATION", row.relation),
        phone=row.phone or "",
        birth_year=row.birth_year or 0,
        id_suffix=row.id_suffix or "",
        user=f"users/{row.user_id}" if row.user_id else "",
    )


def household(row: models.Household, residents: list[models.Resident]) -> pb.Household:
    return pb.Household(
        name=f"households/{row.id}",
        id=row.id,
        code=row.code,
        block=row.block_path,
        building=row.building_code or "",
        address=row.address,
        tags=[enum_value(pb.VulnerabilityTag, "VULNERABILITY_TAG", t) for t in row.tags.split(",") if t],
        residents=[resident(r) for r in residents],
        create_time=ts(row.create_time),
        update_time=ts(row.update_time),
    )


def visit(row: models.Visit) -> pb.Visit:
    return pb.Visit(
        name=f"households/{row.household_id}/visits/{row.id}",
        household=f"households/{row.household_id}",
        visitor=row.visitor,
        visit_time=ts(row.visit_time),
        notes=row.notes,
        issues_found=json.loads(row.issues),
        create_time=ts(row.create_time),
        issues_resolved=json.loads(row.issues_resolved),
    )


# ---------------------------------------------------------------- event payloads (no contact data)


def household_summary(row: models.Household, residents: list[models.Resident]) -> events_pb2.HouseholdSummary:
    return events_pb2.HouseholdSummary(
        name=f"households/{row.id}",
        id=row.id,
        code=row.code,
        block=row.block_path,
        building=row.building_code or "",
        tags=[enum_value(pb.VulnerabilityTag, "VULNERABILITY_TAG", t) for t in row.tags.split(",") if t],
        residents=[
            events_pb2.ResidentRef(id=r.id, user=f"users/{r.user_id}" if r.user_id else "") for r in residents
        ],
        create_time=ts(row.create_time),
        update_time=ts(row.update_time),
    )


def visit_summary(row: models.Visit) -> events_pb2.VisitSummary:
    return events_pb2.VisitSummary(
        name=f"households/{row.household_id}/visits/{row.id}",
        household=f"households/{row.household_id}",
        block=row.block_path,
        visitor=row.visitor,
        visit_time=ts(row.visit_time),
        issues_found=len(json.loads(row.issues)),
        create_time=ts(row.create_time),
        issues_resolved=len(json.loads(row.issues_resolved)),
    )
