"""Test-side helpers for the points service: a block with live 1+N+1 staff, residents, indicators."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field

import grpc
import pytest

from gov.blocks.v1 import blocks_pb2
from gov.blocks.v1.blocks_pb2_grpc import BlocksServiceStub
from gov.points.v1 import points_pb2 as pb
from gov.points.v1.points_pb2_grpc import PointsServiceStub
from tests.support.blocks import make_tree, point, square
from tests.support.identity import IdentityClient, md
from tests.support.tickets import Person


@dataclass
class Village:
    district: str
    block: str
    staff: dict[str, Person]  # leader, governor, assistant, supervisor
    residents: list[Person]
    assignments: dict[str, str] = field(default_factory=dict)  # staff key -> assignment name
    inside: tuple[float, float] = (0.0, 0.0)  # (lat, lng) inside the block
    next_door: tuple[float, float] = (0.0, 0.0)  # inside the neighbouring block b02

    def resident_account(self, i: int) -> str:
        return f"accounts/u-{self.residents[i].name.removeprefix('users/')}"


async def make_village(blocks: BlocksServiceStub, identity: IdentityClient, residents: int = 3) -> Village:
    admin = identity.admin_token
    col, row = random.randrange(2_000, 60_000, 4), random.randrange(10, 20_000)
    street, community = await make_tree(blocks, admin, {"b01": square(col, row), "b02": square(col + 3, row)})
    district = street.split("/")[0]
    block = f"{community}/b01"
    staff: dict[str, Person] = {}
    user, _, token = await identity.make_user(district, [("leader", district)])
    staff["leader"] = Person(user.name, token)
    assignments = {}
    for key, role, kind in (
        ("governor", blocks_pb2.STAFF_ROLE_GOVERNOR, 0),
        ("assistant", blocks_pb2.STAFF_ROLE_ASSISTANT, blocks_pb2.ASSISTANT_KIND_RESIDENT_REPRESENTATIVE),
        ("supervisor", blocks_pb2.STAFF_ROLE_SUPERVISOR, 0),
    ):
        user, _, token = await identity.make_user(block)
        assigned = await blocks.AssignStaff(
            blocks_pb2.AssignStaffRequest(
                assignment=blocks_pb2.StaffAssignment(
                    block=block, user=user.name, role=role, assistant_kind=kind
                )
            ),
            metadata=md(admin),
        )
        staff[key] = Person(user.name, token)
        assignments[key] = assigned.name
    people = []
    for _ in range(residents):
        user, _, token = await identity.make_user(block, [("resident", block)])
        people.append(Person(user.name, token))
    return Village(
        district, block, staff, people, assignments, point(col + 0.5, row + 0.5), point(col + 3.5, row + 0.5)
    )


async def make_indicator(
    stub: PointsServiceStub, village: Village, *, kind: int = pb.INDICATOR_KIND_REWARD, **fields: object
) -> str:
    values: dict[str, object] = {
        "node": village.district,
        "code": f"i-{uuid.uuid4().hex[:10]}",
        "display_name": "保持楼道畅通" if kind == pb.INDICATOR_KIND_REWARD else "乱扔垃圾",
        "kind": kind,
        "points": 10,
        **fields,
    }
    made = await stub.CreateIndicator(
        pb.CreateIndicatorRequest(indicator=pb.Indicator(**values)),  # type: ignore[arg-type]
        metadata=village.staff["leader"].md,
    )
    return made.name


async def award(
    points: PointsServiceStub,
    village: Village,
    indicator: str,
    resident: int = 0,
    *,
    by: str = "governor",
    request_id: str = "",
    note: str = "",
) -> pb.Award:
    return await points.CreateAward(
        pb.CreateAwardRequest(
            award=pb.Award(
                recipient=village.residents[resident].name, indicator=indicator, node=village.block, note=note
            ),
            request_id=request_id or uuid.uuid4().hex,
        ),
        metadata=village.staff[by].md,
    )


async def account(points: PointsServiceStub, village: Village, resident: int = 0) -> pb.Account:
    return await points.GetAccount(
        pb.GetAccountRequest(name=village.resident_account(resident)), metadata=village.staff["leader"].md
    )


async def shop(
    points: PointsServiceStub, village: Village, *, price: int, stock: int, **fields: object
) -> pb.Item:
    point = await points.CreateExchangePoint(
        pb.CreateExchangePointRequest(
            exchange_point=pb.ExchangePoint(
                node=village.block, display_name="爱心超市", staff=[village.staff["assistant"].name]
            )
        ),
        metadata=village.staff["leader"].md,
    )
    return await points.CreateItem(
        pb.CreateItemRequest(
            parent=point.name,
            item=pb.Item(display_name="洗衣液", kind=pb.ITEM_KIND_GOODS, price=price, stock=stock, **fields),  # type: ignore[arg-type]
        ),
        metadata=village.staff["leader"].md,
    )


async def refused(call, code: grpc.StatusCode) -> str:  # type: ignore[no-untyped-def]
    """The details of a call that fails with `code`."""
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call
    assert err.value.code() == code, err.value.details()
    return err.value.details() or ""
