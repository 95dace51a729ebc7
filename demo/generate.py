"""The generator that made the demo street's import files (demo/wanlou/*.csv, *.geojson), deterministically.

`wanlou_demo()` returns the six import files (nodes, boundaries, buildings, households, residents,
staff) in the formats `services.blocks.importfiles` parses, for the street described in
`demo/wanlou/street.toml`; the same seed always gives byte-identical files. With the street's own
seed and household count it gives the files committed beside it, which `make run` imports;
tests and benchmarks call it with other seeds and sizes.

    python -m demo.generate            rewrite demo/wanlou/ from street.toml
    python -m demo.generate --check    exit 1 if the files there are not what it makes

Shape: 4 communities and 17 blocks, as in Wanlou. The block boundaries tile the street exactly: they
are cells of a jittered 5x4 grid whose shared vertices (and the extra vertex bending each edge) are
the same coordinates for both neighbours, with three pairs of cells merged to get 17. Community and
street boundaries are built by cancelling the shared edges of their blocks, so they reuse the blocks'
coordinates exactly and need no geometry library.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import random
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from demo.street import WANLOU, DemoFiles, load_plan, load_street, write_street
from services.blocks.importfiles import (
    ASSISTANT_KINDS,
    BUILDING_COLUMNS,
    HOUSEHOLD_COLUMNS,
    NODE_COLUMNS,
    RESIDENT_COLUMNS,
    STAFF_COLUMNS,
)

PLAN = load_plan()
REFERENCE_YEAR = PLAN.reference_year
DISTRICT = PLAN.district
STREET = PLAN.street
# code, name, lanes where the old single-storey houses (平房) without a building stand
COMMUNITIES = tuple((c.code, c.name, c.lanes) for c in PLAN.communities)
COMMUNITY_BLOCKS = tuple(c.blocks for c in PLAN.communities)  # numbered b01..b17 in this order

# The street's bounding box near Xiangtan, about 3 km x 3 km (8.9 km², as Wanlou) before the jitter.
LNG0, LAT0, LNG1, LAT1 = 112.900, 27.840, 112.930, 27.8675
COLS, ROWS = 5, 4
# Each grid row (south to north) as its blocks, each block a span of columns: three merged pairs
# turn the 20 cells into 17 blocks.
ROW_SPANS: tuple[tuple[tuple[int, ...], ...], ...] = (
    ((0,), (1,), (2,), (3, 4)),
    ((0,), (1,), (2,), (3,), (4,)),
    ((0, 1), (2,), (3,), (4,)),
    ((0,), (1,), (2, 3), (4,)),
)
# Fractions of a cell's size. A corner moves at most 0.15 and a bend at most 0.15 + 0.10 off the
# straight grid line, so opposite sides of a cell stay at least half a cell apart and never cross.
VERTEX_JITTER = 0.15
BEND_JITTER = 0.10

TAGGED_SHARE = 0.08  # households with at least one vulnerability tag
MAIN_TAG_WEIGHTS = {
    "elderly_alone": 45,
    "disability": 18,
    "subsistence_allowance": 17,
    "left_behind_child": 8,
    "extreme_hardship": 7,
    "distressed_child": 5,
}
SECOND_TAG_SHARE = 0.2  # e.g. an elderly person living alone who also draws subsistence allowance
HOUSEHOLD_SIZE_WEIGHTS = {1: 12, 2: 28, 3: 30, 4: 20, 5: 10}
BUNGALOW_SHARE = 0.05
ROOMS_PER_FLOOR = 2  # per staircase (单元): walk-ups with two flats a landing
HOUSEHOLDS_PER_NEIGHBOUR_HEAD = 25  # Wanlou: 295 neighbour heads for about 7,000 households

# Surnames weighted so the big Hunan ones come up most; 欧阳 is the one two-character surname.
SURNAMES = (
    *"刘李王张陈周彭谭罗胡唐黄杨曾邓易毛龙贺肖蒋文石袁赵吴郭何许朱段颜尹丁廖",
    "欧阳",
    *"邹熊方宋谢田汤钟黎向左梁",
)
_TOP_SURNAME_WEIGHTS = (12, 11, 10, 9, 9, 7, 6, 6, 6, 5, 5, 5, 5, 4, 4, 4, 3, 3, 3, 3, 3, 3, 3, 3)
SURNAME_WEIGHTS = _TOP_SURNAME_WEIGHTS + (2,) * (len(SURNAMES) - len(_TOP_SURNAME_WEIGHTS))
# Given names by generation (born before 1960, 1960-1989, 1990 on), each as (male, female).
GIVEN_NAMES = tuple(
    (male.split(), female.split())
    for male, female in (
        (
            "建国 国华 德明 志刚 建华 卫东 长生 福生 桂生 国强 振华 明德 海清 凤山 金生 春生 光明 解放 正清",
            "秀英 桂兰 玉兰 淑珍 凤英 秀兰 桂英 菊英 冬梅 翠华 金凤 玉梅 秀珍 桂香 美华 淑华 爱莲 素珍 春兰",
        ),
        (
            "伟 强 军 勇 磊 斌 涛 辉 鹏 波 志强 建军 海波 晓东 俊杰 文斌 国庆 立新 小平 卫国 湘平 湘军",
            "丽 芳 敏 静 燕 艳 娟 红 霞 丽娟 晓燕 海燕 春梅 慧 玲 丽华 湘萍 小红 美玲 秋菊 湘云 雪梅",
        ),
        (
            "浩然 子轩 宇航 俊熙 博文 梓豪 一鸣 皓轩 家乐 睿 轩 晨阳 天佑 思远 宇轩 子墨 明哲 嘉豪 俊宇",
            "子涵 欣怡 雨桐 梓萱 诗涵 可欣 思琪 佳怡 梦琪 雅婷 若曦 一诺 语嫣 心怡 紫涵 欣妍 雨萱 佳琪",
        ),
    )
)
# Mobile number blocks of the three carriers (China Mobile, Unicom, Telecom).
MOBILE_PREFIXES = (
    *(f"13{d}" for d in range(10)),
    *(f"15{d}" for d in (0, 1, 2, 3, 5, 6, 7, 8, 9)),
    *(f"18{d}" for d in range(10)),
    "166",
    "173",
    "175",
    "176",
    "177",
    "191",
    "198",
    "199",
)

Point = tuple[float, float]
Ring = list[Point]
Segment = tuple[Point, Point]


@dataclass(frozen=True)
class _Block:
    number: int  # 1..17
    community: int  # index into COMMUNITIES
    segments: tuple[Segment, ...]  # its boundary, counter-clockwise

    @property
    def code(self) -> str:
        return f"b{self.number:02d}"


@dataclass(frozen=True)
class _Person:
    relation: str
    age: int
    male: bool


def wanlou_demo(seed: int = PLAN.seed, households: int = PLAN.households) -> DemoFiles:
    """The demo street with `households` households spread over its 17 blocks (about 175 each)."""
    if households < sum(COMMUNITY_BLOCKS):
        raise ValueError(f"households must be at least {sum(COMMUNITY_BLOCKS)}, one per block")
    rng = random.Random(seed)  # noqa: S311 - reproducible sample data, not a secret
    blocks = _blocks(rng)
    people = _People(rng)
    buildings: list[list[str]] = []
    household_rows: list[list[str]] = []
    resident_rows: list[list[str]] = []
    staff_rows = _street_staff(people)
    for block, count in zip(blocks, _shares(rng, households, len(blocks)), strict=True):
        homes = _homes(rng, block, count, buildings)
        for seq, (building_code, address) in enumerate(homes, start=1):
            code = f"WL-B{block.number:02d}-{seq:04d}"
            tags = household_tags(rng)
            household_rows.append([code, _block_path(block), building_code, address, ";".join(tags)])
            resident_rows.extend([code, *person] for person in people.household(tags))
        staff_rows.extend(_block_staff(rng, people, block, count))
    return DemoFiles(
        nodes_csv=_csv(NODE_COLUMNS, _node_rows(blocks)),
        boundaries_geojson=_geojson(blocks),
        buildings_csv=_csv(BUILDING_COLUMNS, buildings),
        households_csv=_csv(HOUSEHOLD_COLUMNS, household_rows),
        residents_csv=_csv(RESIDENT_COLUMNS, resident_rows),
        staff_csv=_csv(STAFF_COLUMNS, staff_rows),
    )


# --- paths and names ---------------------------------------------------------------------------


def _street_path() -> str:
    return f"{DISTRICT[0]}/{STREET[0]}"


def _community_path(index: int) -> str:
    return f"{_street_path()}/{COMMUNITIES[index][0]}"


def _block_path(block: _Block) -> str:
    return f"{_community_path(block.community)}/{block.code}"


def _block_name(block: _Block) -> str:
    first = sum(COMMUNITY_BLOCKS[: block.community])
    return f"{COMMUNITIES[block.community][1]}第{block.number - first}区块"


def _node_rows(blocks: Sequence[_Block]) -> list[list[str]]:
    rows = [[DISTRICT[0], DISTRICT[1], "district"], [_street_path(), STREET[1], "street"]]
    rows += [[_community_path(i), name, "community"] for i, (_, name, _) in enumerate(COMMUNITIES)]
    rows += [[_block_path(b), _block_name(b), "block"] for b in blocks]
    return rows


def _csv(columns: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(rows)
    return out.getvalue()


# --- geometry ----------------------------------------------------------------------------------


def _blocks(rng: random.Random) -> list[_Block]:
    """The 17 blocks, numbered in a snake through the grid rows so each community is contiguous."""
    corners = _corners(rng)
    bends: dict[tuple[tuple[int, int], tuple[int, int]], Point] = {}
    spans: list[tuple[int, tuple[int, ...]]] = []
    for row, row_spans in enumerate(ROW_SPANS):
        ordered = row_spans if row % 2 == 0 else tuple(reversed(row_spans))
        spans += [(row, span) for span in ordered]
    owners = [i for i, n in enumerate(COMMUNITY_BLOCKS) for _ in range(n)]
    blocks = []
    for number, ((row, span), community) in enumerate(zip(spans, owners, strict=True), start=1):
        cells = [_cell_segments(rng, corners, bends, row, col) for col in span]
        blocks.append(_Block(number, community, tuple(_outline(cells))))
    return blocks


def _corners(rng: random.Random) -> list[list[Point]]:
    """Grid corners, jittered and rounded once so every cell sharing a corner uses the same numbers."""
    dx, dy = (LNG1 - LNG0) / COLS, (LAT1 - LAT0) / ROWS
    return [
        [
            (
                round(LNG0 + c * dx + rng.uniform(-VERTEX_JITTER, VERTEX_JITTER) * dx, 6),
                round(LAT0 + r * dy + rng.uniform(-VERTEX_JITTER, VERTEX_JITTER) * dy, 6),
            )
            for c in range(COLS + 1)
        ]
        for r in range(ROWS + 1)
    ]


def _bend(
    rng: random.Random,
    corners: list[list[Point]],
    bends: dict[tuple[tuple[int, int], tuple[int, int]], Point],
    a: tuple[int, int],
    b: tuple[int, int],
) -> Point:
    """The extra vertex bending the edge between grid corners a and b, shared by both its cells."""
    key = (min(a, b), max(a, b))
    if key not in bends:
        (x0, y0), (x1, y1) = corners[a[0]][a[1]], corners[b[0]][b[1]]
        dx, dy = (LNG1 - LNG0) / COLS, (LAT1 - LAT0) / ROWS
        jitter = rng.uniform(-BEND_JITTER, BEND_JITTER)
        horizontal = a[0] == b[0]
        bends[key] = (
            round((x0 + x1) / 2 + (0 if horizontal else jitter * dx), 6),
            round((y0 + y1) / 2 + (jitter * dy if horizontal else 0), 6),
        )
    return bends[key]


def _cell_segments(
    rng: random.Random,
    corners: list[list[Point]],
    bends: dict[tuple[tuple[int, int], tuple[int, int]], Point],
    row: int,
    col: int,
) -> list[Segment]:
    """A grid cell's boundary, counter-clockwise (lng east, lat north), each side bent once."""
    loop = [(row, col), (row, col + 1), (row + 1, col + 1), (row + 1, col)]
    segments: list[Segment] = []
    for a, b in zip(loop, loop[1:] + loop[:1], strict=True):
        mid = _bend(rng, corners, bends, a, b)
        segments += [(corners[a[0]][a[1]], mid), (mid, corners[b[0]][b[1]])]
    return segments


def _outline(parts: Iterable[Iterable[Segment]]) -> list[Segment]:
    """The boundary of the union of edge-sharing pieces: a side two pieces share appears once in each
    direction, so dropping both leaves the outline. Order is kept for a deterministic result."""
    kept: dict[Segment, None] = {}
    for part in parts:
        for a, b in part:
            if (b, a) in kept:
                del kept[(b, a)]
            else:
                kept[(a, b)] = None
    return list(kept)


def _ring(segments: Sequence[Segment]) -> Ring:
    """Chain an outline's segments into one closed ring; the demo's regions have no holes."""
    following = dict(segments)
    start = segments[0][0]
    ring = [start]
    point = following.pop(start)
    while point != start:
        ring.append(point)
        point = following.pop(point)
    if following:
        raise AssertionError("a demo region is not one simple polygon")
    return [*ring, start]


def _feature(path: str, name: str, segments: Sequence[Segment]) -> dict[str, object]:
    return {
        "type": "Feature",
        "properties": {"path": path, "name": name},
        "geometry": {"type": "Polygon", "coordinates": [[list(p) for p in _ring(segments)]]},
    }


def _geojson(blocks: Sequence[_Block]) -> str:
    features = [_feature(_street_path(), STREET[1], _outline(b.segments for b in blocks))]
    for index, (_, name, _) in enumerate(COMMUNITIES):
        mine = [b.segments for b in blocks if b.community == index]
        features.append(_feature(_community_path(index), name, _outline(mine)))
    features += [_feature(_block_path(b), _block_name(b), b.segments) for b in blocks]
    return json.dumps({"type": "FeatureCollection", "features": features}, ensure_ascii=False)


# --- buildings and households ------------------------------------------------------------------


def _shares(rng: random.Random, total: int, parts: int) -> list[int]:
    """Split `total` into `parts` uneven shares (about +-20%), each at least 1, summing exactly."""
    weights = [rng.uniform(0.8, 1.2) for _ in range(parts)]
    exact = [(total - parts) * w / sum(weights) for w in weights]
    shares = [1 + int(x) for x in exact]
    by_remainder = sorted(range(parts), key=lambda i: int(exact[i]) - exact[i])
    for i in by_remainder[: total - sum(shares)]:
        shares[i] += 1
    return shares


def _homes(
    rng: random.Random, block: _Block, count: int, buildings: list[list[str]]
) -> list[tuple[str, str]]:
    """`count` (building_code, address) pairs for a block's households; appends its buildings.

    Buildings are numbered through the community (窑湾社区 1栋, 2栋 ...) as on the door plates, so an
    address names one flat in the street; a few households live in old houses along the lanes."""
    _, community_name, lanes = COMMUNITIES[block.community]
    prefix = f"{STREET[1]}{community_name}"
    community_path = _community_path(block.community) + "/"
    first_building = 1 + sum(row[0].startswith(community_path) for row in buildings)
    alley = block.number - sum(COMMUNITY_BLOCKS[: block.community])  # one alley per block: unique plates
    bungalows = sum(rng.random() < BUNGALOW_SHARE for _ in range(count))
    n_buildings = rng.randint(4, 12)
    homes: list[tuple[str, str]] = []
    for offset, flats in enumerate(_shares(rng, max(count - bungalows, n_buildings), n_buildings)):
        number = first_building + offset
        buildings.append([_block_path(block), str(number), f"{number}栋", f"{prefix}{number}栋"])
        homes += [(str(number), f"{prefix}{number}栋{flat}") for flat in _flats(rng, flats)]
    homes = homes[: count - bungalows]
    homes += [("", f"{prefix}{rng.choice(lanes)}{alley}巷{n}号") for n in range(1, bungalows + 1)]
    return homes


def _flats(rng: random.Random, count: int) -> list[str]:
    """Door plates such as 2单元401 for `count` occupied flats of one building."""
    units = rng.randint(1, 3)
    floors = max(rng.randint(5, 9), -(-count // (units * ROOMS_PER_FLOOR)))
    capacity = units * floors * ROOMS_PER_FLOOR
    flats = []
    for slot in sorted(rng.sample(range(capacity), count)):
        unit, rest = divmod(slot, floors * ROOMS_PER_FLOOR)
        floor, room = divmod(rest, ROOMS_PER_FLOOR)
        flats.append(f"{unit + 1}单元{floor + 1}{room + 1:02d}")
    return flats


def household_tags(rng: random.Random) -> list[str]:
    """A household's vulnerability tags: none for most, the main one first (also bench/blocks_import.py's)."""
    if rng.random() >= TAGGED_SHARE:
        return []
    tags = rng.choices(list(MAIN_TAG_WEIGHTS), weights=list(MAIN_TAG_WEIGHTS.values()))
    if rng.random() < SECOND_TAG_SHARE:
        second = rng.choice(("subsistence_allowance", "disability"))
        if second not in tags:
            tags.append(second)
    return tags


# --- people ------------------------------------------------------------------------------------


def unique_phone(rng: random.Random, taken: set[str]) -> str:
    """A mobile number of one of the carriers' blocks not in `taken`, and now in it."""
    while True:
        phone = rng.choice(MOBILE_PREFIXES) + f"{rng.randrange(10**8):08d}"
        if phone not in taken:
            taken.add(phone)
            return phone


class _People:
    """Names, phones and id suffixes; every phone handed out is unique across residents and staff."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.phones: set[str] = set()

    def name(self, age: int, male: bool, surname: str | None = None) -> str:
        born = REFERENCE_YEAR - age
        generation = 0 if born < 1960 else 1 if born < 1990 else 2
        given = self.rng.choice(GIVEN_NAMES[generation][0 if male else 1])
        return (surname or self.surname()) + given

    def surname(self) -> str:
        return self.rng.choices(SURNAMES, weights=SURNAME_WEIGHTS)[0]

    def phone(self) -> str:
        return unique_phone(self.rng, self.phones)

    def household(self, tags: Sequence[str]) -> list[list[str]]:
        """Residents as name, relation, phone, birth_year, id_suffix; the head first."""
        members = _members(self.rng, tags[0] if tags else None)
        head = members[0]
        family = self.surname()  # the father's line; a wife keeps her own surname
        names: set[str] = set()
        rows = []
        for person in members:
            shares_family = person.male or person.relation in ("child", "grandchild")
            shares_family = shares_family and not (person is head and not head.male)
            name = self.name(person.age, person.male, family if shares_family else None)
            while name in names:  # (household, name) is the file's key: two 志强 in a flat is one too many
                name = self.name(person.age, person.male, family if shares_family else None)
            names.add(name)
            rows.append([name, person.relation, *self._details(person)])
        return rows

    def _details(self, person: _Person) -> list[str]:
        """phone, birth_year and id_suffix: phones for most adults, fewer among the very old."""
        with_phone = 0.92 if person.age < 70 else 0.7 if person.age < 80 else 0.4
        phone = self.phone() if person.age >= 18 and self.rng.random() < with_phone else ""
        birth_year = str(REFERENCE_YEAR - person.age) if self.rng.random() < 0.98 else ""
        return [phone, birth_year, self.id_suffix(person.male) if self.rng.random() < 0.9 else ""]

    def id_suffix(self, male: bool) -> str:
        """Last 4 of a national id: two sequence digits, a digit odd for men and even for women, and
        the check character (X about one time in eleven)."""
        sex_digit = self.rng.choice("13579" if male else "02468")
        return f"{self.rng.randrange(100):02d}{sex_digit}{self.rng.choice('0123456789X')}"


def _members(rng: random.Random, main_tag: str | None) -> list[_Person]:
    """Who lives in a household, shaped by its main vulnerability tag."""
    if main_tag == "elderly_alone":
        return [_Person("head", rng.randint(65, 92), rng.random() < 0.35)]
    if main_tag == "extreme_hardship":
        return [_Person("head", rng.randint(55, 85), rng.random() < 0.6)]
    if main_tag == "left_behind_child":  # grandparents raising children whose parents work away
        head = _Person("head", rng.randint(55, 75), True)
        kids = [
            _Person("grandchild", rng.randint(3, 15), rng.random() < 0.5) for _ in range(rng.randint(1, 2))
        ]
        spouse = [_Person("spouse", head.age - rng.randint(0, 4), False)] if rng.random() < 0.7 else []
        return [head, *spouse, *kids]
    if main_tag == "distressed_child":
        head = _Person("head", rng.randint(30, 55), rng.random() < 0.5)
        return [head, _Person("child", rng.randint(4, 16), rng.random() < 0.5)]
    size = rng.choices(list(HOUSEHOLD_SIZE_WEIGHTS), weights=list(HOUSEHOLD_SIZE_WEIGHTS.values()))[0]
    return _family(rng, size)


def _family(rng: random.Random, size: int) -> list[_Person]:
    """An ordinary household of `size` people around a head, with plausible ages."""
    if size == 1:
        return [_Person("head", rng.randint(22, 85), rng.random() < 0.5)]
    head_age = rng.randint(45, 70) if size == 5 else rng.randint(28, 60)
    head = _Person("head", head_age, rng.random() < 0.75)
    if size == 2 and rng.random() < 0.3:
        other = rng.choice(("child", "parent", "sibling"))
        age = {"child": head_age - rng.randint(22, 32), "parent": head_age + rng.randint(22, 30)}
        return [
            head,
            _Person(other, max(1, age.get(other, head_age + rng.randint(-6, 6))), rng.random() < 0.5),
        ]
    members = [head, _Person("spouse", max(20, head_age + rng.randint(-4, 4)), not head.male)]
    while len(members) < size:
        members.append(_extra(rng, head_age, members))
    return members


def _extra(rng: random.Random, head_age: int, members: list[_Person]) -> _Person:
    """A child, or for the larger families a parent or grandchild, of a plausible age."""
    children = sum(m.relation == "child" for m in members)
    if children < 2 and (children == 0 or rng.random() < 0.5):
        return _Person("child", max(0, head_age - rng.randint(24, 34)), rng.random() < 0.5)
    if head_age >= 50 and rng.random() < 0.6:
        return _Person("grandchild", rng.randint(0, max(0, head_age - 48)), rng.random() < 0.5)
    if head_age < 66:
        return _Person("parent", head_age + rng.randint(24, 30), rng.random() < 0.4)
    return _Person("other", rng.randint(20, 60), rng.random() < 0.5)


# --- staff -------------------------------------------------------------------------------------


def _staff_row(people: _People, path: str, role: str, kind: str = "", age: int = 45) -> list[str]:
    return [path, role, kind, people.name(age, people.rng.random() < 0.55), people.phone()]


def _street_staff(people: _People) -> list[list[str]]:
    """The district leader, the street's dispatcher and one area head per community."""
    rows = [
        _staff_row(people, DISTRICT[0], "leader", age=50),
        _staff_row(people, _street_path(), "dispatcher", age=32),
    ]
    rows += [_staff_row(people, _community_path(i), "area_head", age=52) for i in range(len(COMMUNITIES))]
    return rows


def _block_staff(rng: random.Random, people: _People, block: _Block, households: int) -> list[list[str]]:
    """1 governor + 2-4 assistants of different kinds + 1 supervisor (1+N+1), then the block's group
    leaders and neighbour heads. Every row is a different person."""
    path = _block_path(block)
    rows = [_staff_row(people, path, "governor", age=rng.randint(26, 50))]
    for kind in rng.sample(ASSISTANT_KINDS, rng.randint(2, 4)):
        rows.append(_staff_row(people, path, "assistant", kind, age=rng.randint(30, 65)))
    rows.append(_staff_row(people, path, "supervisor", age=rng.randint(40, 65)))
    rows += [
        _staff_row(people, path, "group_leader", age=rng.randint(45, 68)) for _ in range(rng.randint(2, 4))
    ]
    neighbour_heads = max(2, households // HOUSEHOLDS_PER_NEIGHBOUR_HEAD)
    rows += [
        _staff_row(people, path, "neighbour_head", age=rng.randint(40, 72)) for _ in range(neighbour_heads)
    ]
    return rows


# --- command line ------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m demo.generate", description="the demo street's import files"
    )
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 if the files differ")
    args = parser.parse_args(argv)
    files = wanlou_demo()
    if args.check:
        if load_street() != files:
            print(f"{WANLOU}: the files are not what street.toml generates", file=sys.stderr)
            return 1
        return 0
    write_street(files)
    print(f"wrote the demo street's files to {WANLOU}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
