"""Test-side helpers for the tickets service: a street with blocks, units, staff and a category."""

from __future__ import annotations

import datetime as dt
import random
import uuid
from dataclasses import dataclass

from google.protobuf import duration_pb2

from gov.blocks.v1.blocks_pb2_grpc import BlocksServiceStub
from gov.tickets.v1 import tickets_pb2 as pb
from gov.tickets.v1.tickets_pb2_grpc import TicketsServiceStub
from govkit.protobuf import duration
from tests.support.blocks import make_tree, point, square
from tests.support.identity import IdentityClient, md


def hours(h: float) -> duration_pb2.Duration:
    return duration(dt.timedelta(seconds=int(h * 3600)))


def seconds(s: int) -> duration_pb2.Duration:
    return duration(dt.timedelta(seconds=s))


@dataclass
class Person:
    name: str  # users/{id}
    token: str

    @property
    def md(self) -> tuple[tuple[str, str], ...]:
        return md(self.token)


@dataclass
class World:
    district: str
    street: str
    blocks: list[str]
    points: list[tuple[float, float]]  # one (lat, lng) inside each block
    units: dict[str, str]  # role -> unit code: lead, assist, other, department
    staff: dict[str, Person]  # dispatcher, district, supervisor, governor, resident, outsider, unit:<code>
    category: str


async def make_category(
    tickets: TicketsServiceStub,
    admin_token: str,
    *,
    kind: int = pb.TICKET_KIND_GENERAL,
    ack: duration_pb2.Duration | None = None,
    resolve: duration_pb2.Duration | None = None,
    clock: int = pb.SLA_CLOCK_WORKING_HOURS,
    escalate: bool = False,
    default_unit: str = "",
    default_center: int = pb.UNIT_KIND_RAPID_RESPONSE,
) -> str:
    code = f"c-{uuid.uuid4().hex[:10]}"
    await tickets.CreateCategory(
        pb.CreateCategoryRequest(
            category=pb.Category(
                code=code,
                display_name="电梯故障",
                group="物业与电梯",
                keywords=["电梯", "困人"],
                default_unit=f"units/{default_unit}" if default_unit else "",
                default_center=pb.UNIT_KIND_UNSPECIFIED if default_unit else default_center,
                priority=pb.PRIORITY_HIGH,
                matter_class=pb.MATTER_CLASS_CO_HANDLED,
                kind=kind,
                attributes=[
                    pb.AttributeDefinition(
                        code="building", display_name="楼栋", type=pb.ATTRIBUTE_TYPE_STRING, required=True
                    ),
                    pb.AttributeDefinition(
                        code="trapped",
                        display_name="是否困人",
                        type=pb.ATTRIBUTE_TYPE_SINGLE_VALUE_LIST,
                        options=[
                            pb.AttributeOption(key="yes", display_name="是"),
                            pb.AttributeOption(key="no", display_name="否"),
                        ],
                    ),
                ],
                sla=pb.SlaPolicy(
                    acknowledge_within=ack or hours(2),
                    resolve_within=resolve or hours(24),
                    clock=clock,
                    escalate_on_acknowledge_breach=escalate,
                ),
            )
        ),
        metadata=md(admin_token),
    )
    return code


async def make_world(
    blocks: BlocksServiceStub, tickets: TicketsServiceStub, identity: IdentityClient
) -> World:
    """A fresh district and street with two blocks, three street units, a district department,
    the people who act on tickets, and a category routed to the lead unit's center kind."""
    admin = identity.admin_token
    # A random spot of the grid, far from every other test's blocks.
    col, row = random.randrange(2_000, 60_000, 4), random.randrange(-20_000, -10)
    # (latitudes 7.9-27.8, where a cell stays about 100 m wide)
    street, community = await make_tree(blocks, admin, {"b01": square(col, row), "b02": square(col + 3, row)})
    district = street.split("/")[0]
    block_paths = [f"{community}/b01", f"{community}/b02"]
    points = [point(col + 0.5, row + 0.5), point(col + 3.5, row + 0.5)]
    tag = uuid.uuid4().hex[:6]
    units = {
        "lead": (f"rapid-{tag}", pb.UNIT_KIND_RAPID_RESPONSE, street),
        "assist": (f"livelihood-{tag}", pb.UNIT_KIND_LIVELIHOOD, street),
        "other": (f"economy-{tag}", pb.UNIT_KIND_ECONOMIC_DEVELOPMENT, street),
        "department": (f"housing-{tag}", pb.UNIT_KIND_DEPARTMENT, district),
    }
    for code, kind, node in units.values():
        await tickets.CreateUnit(
            pb.CreateUnitRequest(unit=pb.Unit(code=code, display_name=f"单位{code}", kind=kind, node=node)),
            metadata=md(admin),
        )
    people: dict[str, Person] = {}
    for key, scope, roles in (
        ("dispatcher", street, [("dispatcher", street)]),
        ("district", district, [("dispatcher", district)]),
        ("supervisor", block_paths[0], [("supervisor", block_paths[0])]),
        ("governor", block_paths[0], [("governor", block_paths[0])]),
        ("resident", block_paths[0], [("resident", block_paths[0])]),
        ("neighbour", block_paths[1], [("resident", block_paths[1])]),
        ("outsider", district, [("dispatcher", f"{district}/other")]),
    ):
        user, _, token = await identity.make_user(scope, roles)
        people[key] = Person(user.name, token)
    for key, (code, _, node) in units.items():
        user, _, token = await identity.make_user(node, [("unit_staff", node)])
        await tickets.AddUnitMember(
            pb.AddUnitMemberRequest(parent=f"units/{code}", user=user.name), metadata=md(admin)
        )
        people[f"unit:{key}"] = Person(user.name, token)
    category = await make_category(tickets, admin)
    return World(
        district=district,
        street=street,
        blocks=block_paths,
        points=points,
        units={k: v[0] for k, v in units.items()},
        staff=people,
        category=category,
    )


def new_ticket(world: World, block: int = 0, **extra: object) -> pb.Ticket:
    lat, lng = world.points[block]
    fields: dict[str, object] = {
        "category": f"categories/{world.category}",
        "title": "3栋电梯停在5楼不动",
        "description": "电梯门打不开,里面好像有人",
        "location": pb.Location(latitude=lat, longitude=lng, has_point=True, address="3栋1单元"),
        "attributes": [pb.TicketAttribute(code="building", values=["3栋"])],
    }
    return pb.Ticket(**{**fields, **extra})  # type: ignore[arg-type]
