"""Where the tickets demo happens: a point well inside each block of the demo street, its buildings,
and the residents who report problems, all derived from the street's import files."""

from __future__ import annotations

import itertools
import json
from collections.abc import Collection
from dataclasses import dataclass

from demo.street import DemoFiles, Street


@dataclass(frozen=True)
class BlockPlace:
    number: int  # 1..17
    path: str  # yuhu/wanlou/yaowan/b01
    name: str  # 窑湾社区第1区块
    community: str  # 窑湾社区
    lanes: tuple[str, ...]  # the community's lanes, for addresses outside a building
    point: tuple[float, float]  # (lat, lng), well inside the block
    ring: tuple[tuple[float, float], ...]  # the boundary, (lng, lat) as in GeoJSON, closed
    buildings: tuple[tuple[str, str], ...]  # (name, address): ("3栋", "万楼街道窑湾社区3栋")

    def contains(self, lat: float, lng: float, margin: float = 0.0003) -> bool:
        """Inside the boundary and at least `margin` degrees (about 30 m) from its edges."""
        return _inside(self.ring, lng, lat) and all(
            _distance_to_segment(lng, lat, a, b) >= margin for a, b in itertools.pairwise(self.ring)
        )


def _inside(ring: tuple[tuple[float, float], ...], x: float, y: float) -> bool:
    """Even-odd ray casting."""
    inside = False
    for (x0, y0), (x1, y1) in itertools.pairwise(ring):
        if (y0 > y) != (y1 > y) and x < x0 + (y - y0) * (x1 - x0) / (y1 - y0):
            inside = not inside
    return inside


def _distance_to_segment(x: float, y: float, a: tuple[float, float], b: tuple[float, float]) -> float:
    (ax, ay), (bx, by) = a, b
    dx, dy = bx - ax, by - ay
    length2 = dx * dx + dy * dy
    t = 0.0 if length2 == 0 else max(0.0, min(1.0, ((x - ax) * dx + (y - ay) * dy) / length2))
    px, py = ax + t * dx, ay + t * dy
    return float(((x - px) ** 2 + (y - py) ** 2) ** 0.5)


def _interior_point(ring: tuple[tuple[float, float], ...]) -> tuple[float, float]:
    """A point deep inside a polygon: the best of a grid over its bounding box, by distance to the
    boundary (a coarse pole of inaccessibility; the demo's blocks are about 600 m across)."""
    xs, ys = [p[0] for p in ring], [p[1] for p in ring]
    best, best_d = (sum(ys) / len(ys), sum(xs) / len(xs)), -1.0
    steps = 24
    for i in range(1, steps):
        for j in range(1, steps):
            x = min(xs) + (max(xs) - min(xs)) * i / steps
            y = min(ys) + (max(ys) - min(ys)) * j / steps
            if not _inside(ring, x, y):
                continue
            d = min(_distance_to_segment(x, y, a, b) for a, b in itertools.pairwise(ring))
            if d > best_d:
                best, best_d = (round(y, 6), round(x, 6)), d
    return best


def block_places(files: DemoFiles, plan: Street) -> dict[int, BlockPlace]:
    """The 17 demo blocks by number, each with a point well inside it and its buildings."""
    communities = {c.code: (c.name, c.lanes) for c in plan.communities}
    buildings: dict[str, list[tuple[str, str]]] = {}
    for line in files.buildings_csv.splitlines()[1:]:
        path, _code, name, address = line.split(",")
        buildings.setdefault(path, []).append((name, address))
    places = {}
    for feature in json.loads(files.boundaries_geojson)["features"]:
        path = feature["properties"]["path"]
        if path.count("/") != 3:
            continue
        ring = tuple((float(x), float(y)) for x, y in feature["geometry"]["coordinates"][0])
        community, lanes = communities[path.split("/")[2]]
        number = int(path.rsplit("/b", 1)[1])
        places[number] = BlockPlace(
            number=number,
            path=path,
            name=feature["properties"]["name"],
            community=community,
            lanes=lanes,
            point=_interior_point(ring),
            ring=ring,
            buildings=tuple(buildings.get(path, ())),
        )
    return places


@dataclass(frozen=True)
class Resident:
    """A demo resident who reports problems: a household head with a phone, of a given block."""

    block: int
    path: str
    name: str
    phone: str
    household_code: str
    address: str


def block_residents(files: DemoFiles, plan: Street, blocks: Collection[int]) -> dict[int, Resident]:
    """One resident for each of `blocks`: the block's first household head aged 25-70 with a phone."""
    households: dict[str, tuple[str, str]] = {}  # code -> (block path, address)
    for line in files.households_csv.splitlines()[1:]:
        code, path, _building, address, _tags = line.split(",")
        households[code] = (path, address)
    residents: dict[int, Resident] = {}
    for line in files.residents_csv.splitlines()[1:]:
        household, name, relation, phone, birth_year, _ = line.split(",")
        block = int(household.split("-")[1].removeprefix("B"))
        if block not in blocks or block in residents or relation != "head" or not phone or not birth_year:
            continue
        if not 25 <= plan.reference_year - int(birth_year) <= 70:
            continue
        path, address = households[household]
        residents[block] = Resident(block, path, name, phone, household, address)
    return residents
