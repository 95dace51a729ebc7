"""Benchmark the bulk import of services/blocks/imports.py at the scale of a whole district.

    .venv/bin/python bench/blocks_import.py [--backend sqlite|postgres] [--blocks 700]
                                            [--households 200000] [--seed 7] [--keep] [--json OUT]

Generates, deterministically from --seed, the five import files of a district the size of Yuhu
district (雨湖区): 4 streets, 30 communities, --blocks blocks (paths like yuhu/s01/c05/b0123) whose
boundaries tile the district as a jittered grid (neighbours share their corners exactly; streets,
communities and the district are the unions of their blocks), 6-10 buildings per block (about 8),
--households households spread unevenly over the blocks (about 8% with vulnerability tags, about 5%
in old houses without a building) and about 2.3 residents per household, with a unique mainland
mobile number for most adults. The files go to a temporary directory (removed afterwards unless
--keep) and their sizes are reported.

Then, on a fresh database (a SQLite file in that directory, or a new PostgreSQL database on
127.0.0.1:5432 dropped afterwards) migrated to head, in this one process and through
ImportFlows.import_path directly, as `python -m services.blocks import KIND FILE` does (no gRPC;
bench/blocks_import_stack.py sends the same files through the gateway to a running service):

  import     nodes, boundaries, buildings, households, residents in that order, each file timed on the
             wall clock (file read + import_file, one transaction per file) with rows/s; "parse s" is
             importfiles.parse_<kind> on the same text timed separately beforehand, the part of the
             import that needs no database. The table counts in the database must then match the files.
  re-import  every file again: every row must come back unchanged (nothing created or updated).
  bad row    a households file of new households (other codes) with one row near the end naming a
             block that does not exist: the import must fail, name that row's line, and leave the
             number of households in the database as it was.

"SQL stmts" counts the statements the import sent to the database (an executemany batch once): a
bulk insert should need a few per 5,000-row chunk, not one per row or two. Peak RSS is this
process's resident memory, sampled every 20 ms (per step and overall), and the kernel's high-water
mark (ru_maxrss) for the whole run, file generation included.

Not a test: it prints a table (and writes --json). Exits 1 if any check above fails, 2 if the
database could not be prepared.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import datetime as dt
import json
import math
import random
import re
import resource
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import shapely
from shapely.geometry import mapping
from sqlalchemy import event, func, select

from bench._common import (
    DatabaseUnavailable,
    FreshDatabase,
    add_backend,
    add_json,
    print_heading,
    software_and_machine,
    temp_folder,
    write_json,
)
from demo.generate import household_tags, unique_phone
from gov.blocks.v1 import blocks_pb2 as pb
from govkit.db import Database
from govkit.errors import DomainError
from services.blocks import importfiles
from services.blocks.__main__ import KINDS, MIGRATIONS, OPERATOR
from services.blocks.imports import ImportFlows
from services.blocks.models import Building, Household, Node, Resident

REFERENCE_YEAR = 2024  # birth years are relative to this, not today, so a seed gives the same files
DISTRICT = ("yuhu", "雨湖区")
STREET_NAMES = ("万楼街道", "窑湾街道", "城正街街道", "广场街道", "雨湖路街道", "云塘街道", "先锋街道")
STREETS = 4
COMMUNITIES = 30
# The grid near Xiangtan: cells of 0.003° (~295 m x 333 m), corners moved up to 15% of a cell.
ORIGIN = (112.85, 27.82)  # lng, lat of the south-west corner
CELL_DEG = 0.003
CORNER_JITTER = 0.15
BUILDINGS_PER_BLOCK = (6, 10)
BUNGALOW_SHARE = 0.05  # households in old single-storey houses (平房), without a building
HOUSEHOLD_SIZE_WEIGHTS = {1: 26, 2: 36, 3: 24, 4: 10, 5: 4}  # 2.30 people on average
SURNAMES = "刘李王张陈周彭谭罗胡唐黄杨曾邓易毛龙贺肖蒋文石袁赵吴郭何许朱段颜尹丁廖邹熊方宋谢田汤钟黎向左梁"
# Given names across three generations, male and female.
GIVEN_MALE = (
    "建国",
    "国华",
    "德明",
    "志刚",
    "建华",
    "卫东",
    "长生",
    "伟",
    "强",
    "军",
    "勇",
    "磊",
    "斌",
    "涛",
    "辉",
    "鹏",
    "波",
    "志强",
    "浩然",
    "子轩",
    "宇航",
    "博文",
    "一鸣",
    "睿",
)
GIVEN_FEMALE = (
    "秀英",
    "桂兰",
    "玉兰",
    "淑珍",
    "凤英",
    "丽",
    "芳",
    "敏",
    "静",
    "燕",
    "艳",
    "娟",
    "红",
    "霞",
    "丽娟",
    "晓燕",
    "子涵",
    "欣怡",
    "雨桐",
    "梓萱",
    "诗涵",
    "可欣",
)
MOBILE = re.compile(r"1[3-9]\d{9}")
BAD_ROW_FROM_END = 7  # the bad row of the bad households file is this many rows before the last
RSS_INTERVAL = 0.02  # seconds between RSS samples
ORDER = ("nodes", "boundaries", "buildings", "households", "residents")
FILE_NAMES = {
    "nodes": "nodes.csv",
    "boundaries": "boundaries.geojson",
    "buildings": "buildings.csv",
    "households": "households.csv",
    "residents": "residents.csv",
}
MODELS = {"nodes": Node, "buildings": Building, "households": Household, "residents": Resident}


# ----------------------------------------------------------------------------- the district


@dataclass
class District:
    """What was generated: paths of the files and their row counts, and the shape of the tree."""

    folder: Path
    streets: int
    communities: int
    blocks: int
    grid: tuple[int, int]
    rows: dict[str, int] = field(default_factory=dict)  # kind -> data rows (features for boundaries)
    bad_file: Path | None = None
    bad_line: int = 0
    bad_path: str = ""

    def path(self, kind: str) -> Path:
        return self.folder / FILE_NAMES[kind]


def split(total: int, parts: int) -> list[int]:
    """`total` in `parts` shares as even as possible, the larger ones first."""
    base, extra = divmod(total, parts)
    return [base + (i < extra) for i in range(parts)]


def uneven(rng: random.Random, total: int, parts: int) -> list[int]:
    """`total` in `parts` shares of about +-20%, each at least 1, summing exactly."""
    weights = [rng.uniform(0.8, 1.2) for _ in range(parts)]
    exact = [(total - parts) * w / sum(weights) for w in weights]
    shares = [1 + int(x) for x in exact]
    for i in sorted(range(parts), key=lambda i: int(exact[i]) - exact[i])[: total - sum(shares)]:
        shares[i] += 1
    return shares


def grid(blocks: int) -> tuple[int, int]:
    cols = math.ceil(math.sqrt(blocks))
    return math.ceil(blocks / cols), cols


def snake(rows: int, cols: int, blocks: int) -> list[tuple[int, int]]:
    """(row, col) of each block in numbering order: east along even rows, west along odd ones, so any
    run of consecutive blocks (a community, a street) is one edge-connected piece of the grid."""
    cells = []
    for r in range(rows):
        cells += [(r, c) for c in (range(cols) if r % 2 == 0 else range(cols - 1, -1, -1))]
    return cells[:blocks]


def block_polygons(rng: random.Random, cells: list[tuple[int, int]], rows: int, cols: int) -> list[Any]:
    """One quadrilateral per cell; neighbouring cells use the very same (rounded) corner coordinates."""
    corners = [
        [
            (
                round(ORIGIN[0] + (c + rng.uniform(-CORNER_JITTER, CORNER_JITTER)) * CELL_DEG, 6),
                round(ORIGIN[1] + (r + rng.uniform(-CORNER_JITTER, CORNER_JITTER)) * CELL_DEG, 6),
            )
            for c in range(cols + 1)
        ]
        for r in range(rows + 1)
    ]
    return [
        shapely.Polygon([corners[r][c], corners[r][c + 1], corners[r + 1][c + 1], corners[r + 1][c]])
        for r, c in cells
    ]


def feature(path: str, name: str, geometry: Any) -> dict[str, Any]:
    geojson = json.loads(json.dumps(mapping(geometry)))  # tuples -> lists
    return {"type": "Feature", "properties": {"path": path, "name": name}, "geometry": geojson}


class People:
    """Names, phones and id suffixes; every phone handed out is unique."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.phones: set[str] = set()

    def phone(self) -> str:
        return unique_phone(self.rng, self.phones)

    def household(self, tags: list[str]) -> list[list[str]]:
        """name, relation, phone, birth_year, id_suffix of each member, the head first."""
        rng = self.rng
        if tags and tags[0] == "elderly_alone":
            members = [("head", rng.randint(65, 92))]
        else:
            size = rng.choices(list(HOUSEHOLD_SIZE_WEIGHTS), weights=list(HOUSEHOLD_SIZE_WEIGHTS.values()))[0]
            head = rng.randint(45, 70) if size == 5 else rng.randint(24, 80)
            members = [("head", head)]
            if size >= 2:
                members.append(("spouse", max(20, head + rng.randint(-4, 4))))
            for _ in range(size - len(members)):
                if head < 62 and rng.random() < 0.8:
                    members.append(("child", max(0, head - rng.randint(22, 34))))
                elif head < 62:
                    members.append(("parent", min(95, head + rng.randint(24, 30))))
                else:
                    members.append(("grandchild", rng.randint(1, 12)))
        family = rng.choice(SURNAMES)
        names: set[str] = set()
        rows = []
        for relation, age in members:
            male = rng.random() < 0.5
            while True:
                surname = rng.choice(SURNAMES) if relation == "spouse" else family
                name = surname + rng.choice(GIVEN_MALE if male else GIVEN_FEMALE)
                if name not in names:
                    break
            names.add(name)
            with_phone = 0.92 if age < 75 else 0.5
            phone = self.phone() if age >= 18 and rng.random() < with_phone else ""
            birth_year = str(REFERENCE_YEAR - age) if rng.random() < 0.98 else ""
            sex_digit = rng.choice("13579" if male else "02468")
            suffix = f"{rng.randrange(100):02d}{sex_digit}{rng.choice('0123456789X')}"
            rows.append([name, relation, phone, birth_year, suffix if rng.random() < 0.9 else ""])
        return rows


def flat(i: int) -> str:
    """Door plate of the i-th household of a building: 2 flats a landing, 9 floors a staircase."""
    unit, rest = divmod(i, 18)
    floor, room = divmod(rest, 2)
    return f"{unit + 1}单元{floor + 1}{room + 1:02d}"


def generate(folder: Path, n_blocks: int, n_households: int, seed: int) -> District:
    rng = random.Random(seed)
    n_communities = min(COMMUNITIES, n_blocks)
    n_streets = min(STREETS, n_communities)
    rows, cols = grid(n_blocks)
    district = District(folder, n_streets, n_communities, n_blocks, (rows, cols))
    cells = snake(rows, cols, n_blocks)
    polygons = block_polygons(rng, cells, rows, cols)

    # The tree: streets own consecutive communities, communities own consecutive blocks.
    street_of_community = [s for s, n in enumerate(split(n_communities, n_streets)) for _ in range(n)]
    community_of_block = [c for c, n in enumerate(split(n_blocks, n_communities)) for _ in range(n)]
    street_paths = [f"{DISTRICT[0]}/s{s + 1:02d}" for s in range(n_streets)]
    street_names = [STREET_NAMES[s % len(STREET_NAMES)] for s in range(n_streets)]
    community_paths = [f"{street_paths[street_of_community[c]]}/c{c + 1:02d}" for c in range(n_communities)]
    community_names = [
        f"{street_names[street_of_community[c]][:-2]}第{c + 1}社区" for c in range(n_communities)
    ]
    block_paths, block_names = [], []
    nth = 0
    for b, c in enumerate(community_of_block):
        nth = 1 if b == 0 or community_of_block[b - 1] != c else nth + 1
        block_paths.append(f"{community_paths[c]}/b{b + 1:04d}")
        block_names.append(f"{community_names[c]}第{nth}区块")

    nodes = [[DISTRICT[0], DISTRICT[1], "district"]]
    nodes += [[p, n, "street"] for p, n in zip(street_paths, street_names, strict=True)]
    nodes += [[p, n, "community"] for p, n in zip(community_paths, community_names, strict=True)]
    nodes += [[p, n, "block"] for p, n in zip(block_paths, block_names, strict=True)]
    district.rows["nodes"] = write_csv(district.path("nodes"), importfiles.NODE_COLUMNS, nodes)

    def union(members: list[int]) -> Any:
        return shapely.union_all([polygons[b] for b in members])

    features = [feature(DISTRICT[0], DISTRICT[1], union(list(range(n_blocks))))]
    for s, path in enumerate(street_paths):
        mine = [b for b in range(n_blocks) if street_of_community[community_of_block[b]] == s]
        features.append(feature(path, street_names[s], union(mine)))
    for c, path in enumerate(community_paths):
        mine = [b for b in range(n_blocks) if community_of_block[b] == c]
        features.append(feature(path, community_names[c], union(mine)))
    features += [feature(p, n, g) for p, n, g in zip(block_paths, block_names, polygons, strict=True)]
    for f in features:
        if f["geometry"]["type"] != "Polygon":
            raise SystemExit(f"generated a {f['geometry']['type']} for {f['properties']['path']}")
    collection = {"type": "FeatureCollection", "features": features}
    district.path("boundaries").write_text(json.dumps(collection, ensure_ascii=False), encoding="utf-8")
    district.rows["boundaries"] = len(features)

    people = People(rng)
    buildings: list[list[str]] = []
    households: list[list[str]] = []
    residents: list[list[str]] = []
    for b, count in enumerate(uneven(rng, n_households, n_blocks)):
        c = community_of_block[b]
        prefix = f"{DISTRICT[1]}{street_names[street_of_community[c]]}{community_names[c]}"
        n_buildings = rng.randint(*BUILDINGS_PER_BLOCK)
        for number in range(1, n_buildings + 1):
            address = f"{prefix}{b + 1}区{number}栋"
            buildings.append([block_paths[b], str(number), f"{b + 1}区{number}栋", address])
        bungalows = sum(rng.random() < BUNGALOW_SHARE for _ in range(count))
        homes = []
        for number, flats in enumerate(uneven(rng, count - bungalows, n_buildings), start=1):
            homes += [(str(number), f"{prefix}{b + 1}区{number}栋{flat(i)}") for i in range(flats)]
        homes += [("", f"{prefix}{b + 1}区{n}号平房") for n in range(1, bungalows + 1)]
        for seq, (building_code, address) in enumerate(homes, start=1):
            code = f"YH{b + 1:04d}-{seq:04d}"
            tags = household_tags(rng)
            households.append([code, block_paths[b], building_code, address, ";".join(tags)])
            residents += [[code, *person] for person in people.household(tags)]
    district.rows["buildings"] = write_csv(
        district.path("buildings"), importfiles.BUILDING_COLUMNS, buildings
    )
    district.rows["households"] = write_csv(
        district.path("households"), importfiles.HOUSEHOLD_COLUMNS, households
    )
    district.rows["residents"] = write_csv(
        district.path("residents"), importfiles.RESIDENT_COLUMNS, residents
    )
    bad_phones = [p for p in people.phones if not MOBILE.fullmatch(p)]
    if bad_phones or len({r[3] for r in residents if r[3]}) != sum(1 for r in residents if r[3]):
        raise SystemExit(f"generator bug: phones not unique or not mobile numbers ({bad_phones[:3]})")
    for kind, n in district.rows.items():
        if n > importfiles.MAX_ROWS:
            raise SystemExit(
                f"{FILE_NAMES[kind]} has {n} rows, over the {importfiles.MAX_ROWS} one file may hold: "
                "use fewer --households"
            )

    # The bad file: the same households under other codes (all new), one row naming a missing block.
    bad_index = max(0, len(households) - 1 - BAD_ROW_FROM_END)
    bad_rows = [["YX" + row[0][2:], *row[1:]] for row in households]
    community = bad_rows[bad_index][1].rpartition("/")[0]
    bad_rows[bad_index][1] = district.bad_path = f"{community}/b9999"
    district.bad_file = folder / "households-bad.csv"
    write_csv(district.bad_file, importfiles.HOUSEHOLD_COLUMNS, bad_rows)
    district.bad_line = bad_index + 2  # line 1 is the header and no field spans lines
    return district


def write_csv(path: Path, columns: tuple[str, ...], rows: list[list[str]]) -> int:
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(rows)
    return len(rows)


# ----------------------------------------------------------------------------- measuring


class PeakRss:
    """Samples this process's RSS in a thread: the peak since the last `mark()`, and overall."""

    def __init__(self) -> None:
        self.process = psutil.Process()
        self.lock = threading.Lock()
        self.step_peak = self.overall_peak = self.process.memory_info().rss
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _run(self) -> None:
        while not self.stopping.wait(RSS_INTERVAL):
            self.sample()

    def sample(self) -> None:
        rss = self.process.memory_info().rss
        with self.lock:
            self.step_peak = max(self.step_peak, rss)
            self.overall_peak = max(self.overall_peak, rss)

    def mark(self) -> float:
        """Peak RSS in MiB since the previous mark; starts a new step."""
        self.sample()
        with self.lock:
            peak, self.step_peak = self.step_peak, self.process.memory_info().rss
        return peak / 2**20

    def __enter__(self) -> PeakRss:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.thread.join()
        self.sample()


class StatementCounter:
    """SQL statements sent to the database (cursor executions: one executemany batch counts once)."""

    def __init__(self, db: Database) -> None:
        self.count = 0
        engines = {id(e): e for e in (db.engine, db.read_engine)}.values()
        for engine in engines:
            event.listen(engine.sync_engine, "before_cursor_execute", self._executed)

    def _executed(self, *_args: object) -> None:
        self.count += 1


@dataclass
class Checks:
    failures: list[str] = field(default_factory=list)

    def expect(self, ok: bool, message: str) -> bool:
        if not ok:
            self.failures.append(message)
        return ok


async def count_rows(db: Database) -> dict[str, int]:
    async with db.sessions() as session:
        return {
            kind: (await session.scalar(select(func.count()).select_from(model))) or 0
            for kind, model in MODELS.items()
        }


async def import_one(
    flows: ImportFlows, kind: str, path: Path, rss: PeakRss, statements: StatementCounter
) -> dict[str, Any]:
    rss.mark()
    statements_before = statements.count
    started = time.perf_counter()
    # As `python -m services.blocks import` does: spooled and read back a chunk at a time.
    reply = await flows.import_path(OPERATOR, KINDS[kind], path)
    seconds = time.perf_counter() - started
    return {
        "kind": kind,
        "file": path.name,
        "rows": reply.rows,
        "created": reply.created,
        "updated": reply.updated,
        "unchanged": reply.unchanged,
        "errors": len(reply.errors),
        "seconds": seconds,
        "rows_per_second": reply.rows / seconds if seconds else 0.0,
        "statements": statements.count - statements_before,
        "peak_rss_mib": rss.mark(),
    }


def time_parse(kind: str, path: Path) -> float:
    parse: Callable[[str], list[Any]] = getattr(importfiles, f"parse_{kind}")
    text = path.read_bytes().decode("utf-8")
    started = time.perf_counter()
    parse(text)
    return time.perf_counter() - started


async def run_imports(url: str, district: District, rss: PeakRss, checks: Checks) -> dict[str, Any]:
    db = Database(url)
    try:
        flows = ImportFlows(db, lambda: None)
        statements = StatementCounter(db)
        first = []
        for kind in ORDER:
            path = district.path(kind)
            parse_seconds = time_parse(kind, path)
            result = await import_one(flows, kind, path, rss, statements)
            result["parse_seconds"] = parse_seconds
            first.append(result)
            print(f"  import    {kind:<11} {result['rows']:>8,} rows  {result['seconds']:8.2f} s", flush=True)
            expected_created = 0 if kind == "boundaries" else district.rows[kind]
            checks.expect(
                result["rows"] == district.rows[kind] and result["created"] == expected_created,
                f"import {kind}: {result['rows']} rows, {result['created']} created; "
                f"expected {district.rows[kind]} rows, {expected_created} created",
            )
        in_db = await count_rows(db)
        for kind, n in in_db.items():
            checks.expect(
                n == district.rows[kind], f"{kind}: {n} in the database, {district.rows[kind]} in the file"
            )

        second = []
        for kind in ORDER:
            result = await import_one(flows, kind, district.path(kind), rss, statements)
            second.append(result)
            print(f"  re-import {kind:<11} {result['rows']:>8,} rows  {result['seconds']:8.2f} s", flush=True)
            checks.expect(
                result["unchanged"] == result["rows"] == district.rows[kind]
                and result["created"] == result["updated"] == 0,
                f"re-import {kind}: {result['created']} created, {result['updated']} updated, "
                f"{result['unchanged']} unchanged of {result['rows']} rows: expected all unchanged",
            )

        assert district.bad_file is not None
        before = (await count_rows(db))["households"]
        rss.mark()
        started = time.perf_counter()
        error: DomainError | None = None
        try:
            await flows.import_path(OPERATOR, pb.IMPORT_KIND_HOUSEHOLDS, district.bad_file)
        except DomainError as exc:
            error = exc
        seconds = time.perf_counter() - started
        peak = rss.mark()
        after = (await count_rows(db))["households"]
        first_violation = error.violations[0] if error and error.violations else ("", "")
        expected_field = f"line {district.bad_line}: block_path"
        bad = {
            "file": district.bad_file.name,
            "rows": district.rows["households"],
            "bad_line": district.bad_line,
            "bad_path": district.bad_path,
            "failed": error is not None,
            "message": error.message if error else None,
            "violations": len(error.violations) if error else 0,
            "reported": list(first_violation),
            "seconds": seconds,
            "peak_rss_mib": peak,
            "households_before": before,
            "households_after": after,
        }
        checks.expect(error is not None, "bad households file: the import did not fail")
        checks.expect(
            error is None or (len(error.violations) == 1 and first_violation[0] == expected_field),
            f"bad households file: reported {error.violations[:3] if error else None}, "
            f"expected one violation at {expected_field!r}",
        )
        checks.expect(before == after, f"bad households file: households went from {before} to {after}")
        return {"import": first, "reimport": second, "bad_row": bad, "in_db": in_db}
    finally:
        await db.close()


# ----------------------------------------------------------------------------- report


def mib(n_bytes: int) -> str:
    return f"{n_bytes / 2**20:.1f} MiB" if n_bytes >= 2**20 else f"{n_bytes / 1024:.0f} KiB"


def print_report(report: dict[str, Any]) -> None:
    d = report["district"]
    print_heading("blocks_import", report, report["platform"])
    print(
        f"district {d['streets']} streets, {d['communities']} communities, {d['blocks']} blocks "
        f"({d['grid'][0]}x{d['grid'][1]} grid)  seed {report['seed']}  generated in "
        f"{report['generate_seconds']:.1f} s"
    )
    print()
    header = f"{'file':<20} {'rows':>9} {'size':>10}"
    print(header)
    print("-" * len(header))
    for f in report["files"]:
        print(f"{f['file']:<20} {f['rows']:>9,} {mib(f['bytes']):>10}")
    total_bytes = sum(f["bytes"] for f in report["files"] if f["file"] != "households-bad.csv")
    print(f"{'(five files)':<20} {'':>9} {mib(total_bytes):>10}")

    def table(title: str, results: list[dict[str, Any]], parse: bool) -> None:
        print()
        header = (
            f"{title:<11} {'rows':>9} {'parse s':>8} {'total s':>8} {'rows/s':>9} {'created':>8} "
            f"{'updated':>8} {'unchanged':>9} {'SQL stmts':>9} {'peak RSS':>9}"
        )
        print(header)
        print("-" * len(header))
        for r in results:
            parse_s = f"{r['parse_seconds']:8.2f}" if parse else f"{'':>8}"
            print(
                f"{r['kind']:<11} {r['rows']:>9,} {parse_s} {r['seconds']:>8.2f} "
                f"{r['rows_per_second']:>9,.0f} {r['created']:>8,} {r['updated']:>8,} {r['unchanged']:>9,} "
                f"{r['statements']:>9,} {r['peak_rss_mib']:>5.0f} MiB"
            )
        rows = sum(r["rows"] for r in results)
        seconds = sum(r["seconds"] for r in results)
        print(f"{'all':<11} {rows:>9,} {'':>8} {seconds:>8.2f} {rows / seconds:>9,.0f}")

    table("import", report["import"], parse=True)
    table("re-import", report["reimport"], parse=False)
    bad = report["bad_row"]
    print()
    print(
        f"bad row     {bad['file']}: {bad['rows']:,} new households, line {bad['bad_line']:,} names "
        f"{bad['bad_path']}"
    )
    outcome = "failed" if bad["failed"] else "DID NOT FAIL"
    print(f"            {outcome} in {bad['seconds']:.2f} s: {bad['message']}")
    print(
        f"            households in the database: {bad['households_before']:,} before, "
        f"{bad['households_after']:,} after"
    )
    print()
    in_db = ", ".join(f"{n:,} {kind}" for kind, n in report["in_db"].items())
    print(f"in the database after the import: {in_db}")
    print(
        f"peak RSS {report['peak_rss_mib']:.0f} MiB sampled (imports), {report['max_rss_mib']:.0f} MiB "
        "ru_maxrss (whole run, generation included)"
    )
    if report["failures"]:
        print()
        for failure in report["failures"]:
            print(f"FAILED: {failure}")
    else:
        print("checks: all imported, every re-imported row unchanged, bad file rejected at its line: OK")


def run(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    print(f"generating {args.blocks} blocks and {args.households:,} households into {folder} ...", flush=True)
    started = time.perf_counter()
    district = generate(folder, args.blocks, args.households, args.seed)
    generated = time.perf_counter() - started
    files = [
        {"file": FILE_NAMES[kind], "rows": district.rows[kind], "bytes": district.path(kind).stat().st_size}
        for kind in ORDER
    ]
    assert district.bad_file is not None
    files.append(
        {
            "file": district.bad_file.name,
            "rows": district.rows["households"],
            "bytes": district.bad_file.stat().st_size,
        }
    )
    checks = Checks()
    with FreshDatabase(args.backend, folder, "blocks", "import") as database:
        database.migrate(MIGRATIONS)
        with PeakRss() as rss:
            results = asyncio.run(run_imports(database.url, district, rss, checks))
        version = database.version
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "backend": args.backend,
        "backend_version": version,
        **software_and_machine(),
        "seed": args.seed,
        "district": {
            "streets": district.streets,
            "communities": district.communities,
            "blocks": district.blocks,
            "grid": list(district.grid),
        },
        "generate_seconds": generated,
        "files": files,
        **results,
        "peak_rss_mib": rss.overall_peak / 2**20,
        "max_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "failures": checks.failures,
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_backend(parser)
    parser.add_argument("--blocks", type=int, default=700, help="blocks in the district (default 700)")
    parser.add_argument("--households", type=int, default=200_000, help="households (default 200000)")
    parser.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    parser.add_argument("--keep", action="store_true", help="keep the generated files (and SQLite database)")
    add_json(parser)
    args = parser.parse_args(argv)
    if args.blocks < 1 or args.households < args.blocks:
        parser.error("need --blocks >= 1 and --households >= --blocks")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with temp_folder("gov-bench-import-", keep=args.keep) as folder:
        try:
            report = run(args, folder)
        except DatabaseUnavailable as exc:
            print(f"error: could not prepare the database: {exc}", file=sys.stderr)
            return 2
        print_report(report)
        write_json(args.json, report)
        return 1 if report["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
