from __future__ import annotations

import itertools
import re
from collections import Counter, defaultdict

import pytest
from shapely import unary_union
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from demo.generate import wanlou_demo
from demo.street import WANLOU, DemoFiles, load_street
from services.blocks.importfiles import (
    BoundaryRow,
    BuildingRow,
    HouseholdRow,
    NodeRow,
    ResidentRow,
    StaffRow,
    parse_boundaries,
    parse_buildings,
    parse_households,
    parse_nodes,
    parse_residents,
    parse_staff,
)

HOUSEHOLDS = 3000


class Parsed:
    def __init__(self, files: DemoFiles) -> None:
        self.nodes: list[NodeRow] = parse_nodes(files.nodes_csv)
        self.boundaries: list[BoundaryRow] = parse_boundaries(files.boundaries_geojson)
        self.buildings: list[BuildingRow] = parse_buildings(files.buildings_csv)
        self.households: list[HouseholdRow] = parse_households(files.households_csv)
        self.residents: list[ResidentRow] = parse_residents(files.residents_csv)
        self.staff: list[StaffRow] = parse_staff(files.staff_csv)
        self.shapes: dict[str, BaseGeometry] = {b.path: shape(b.geometry) for b in self.boundaries}

    def paths(self, kind: str) -> list[str]:
        return [n.path for n in self.nodes if n.kind == kind]


@pytest.fixture(scope="module")
def files() -> DemoFiles:
    """The committed files that `make run` imports."""
    return load_street()


@pytest.fixture(scope="module")
def demo(files: DemoFiles) -> Parsed:
    return Parsed(files)  # any ImportFileError here fails the tests that use it


def test_the_committed_files_are_what_the_generator_makes_and_another_seed_is_not(files: DemoFiles) -> None:
    # `python -m demo.generate` rewrites them from street.toml; the same seed, the same bytes.
    assert wanlou_demo() == files, f"regenerate {WANLOU} with `python -m demo.generate`"
    assert wanlou_demo(seed=20241123, households=HOUSEHOLDS) == files
    other = wanlou_demo(seed=7, households=HOUSEHOLDS)
    assert other.residents_csv != files.residents_csv
    assert other.boundaries_geojson != files.boundaries_geojson


def test_the_region_tree_is_wanlou(demo: Parsed) -> None:
    assert demo.paths("district") == ["yuhu"]
    assert demo.paths("street") == ["yuhu/wanlou"]
    assert 3 <= len(demo.paths("community")) <= 4
    blocks = demo.paths("block")
    assert sorted(p.rsplit("/", 1)[1] for p in blocks) == [f"b{i:02d}" for i in range(1, 18)]
    names = {n.path: n.name for n in demo.nodes}
    assert names["yuhu"] == "雨湖区" and names["yuhu/wanlou"] == "万楼街道"
    assert all(names[p].endswith("社区") for p in demo.paths("community"))


def test_there_is_a_boundary_for_the_street_every_community_and_every_block(demo: Parsed) -> None:
    expected = {"yuhu/wanlou", *demo.paths("community"), *demo.paths("block")}
    assert set(demo.shapes) == expected
    assert all(g.geom_type == "Polygon" and g.is_valid for g in demo.shapes.values())


def test_blocks_tile_the_street_without_gaps_or_overlaps(demo: Parsed) -> None:
    street = demo.shapes["yuhu/wanlou"]
    blocks = [demo.shapes[p] for p in demo.paths("block")]
    assert abs(unary_union(blocks).area - street.area) <= street.area * 1e-4
    assert unary_union(blocks).symmetric_difference(street).area <= street.area * 1e-9
    assert max(a.intersection(b).area for a, b in itertools.combinations(blocks, 2)) <= street.area * 1e-9
    assert abs(sum(b.area for b in blocks) - street.area) <= street.area * 1e-9


def test_each_community_is_the_union_of_its_blocks(demo: Parsed) -> None:
    for community in demo.paths("community"):
        mine = [demo.shapes[p] for p in demo.paths("block") if p.startswith(community + "/")]
        assert mine, community
        assert unary_union(mine).symmetric_difference(demo.shapes[community]).area < 1e-12


def test_the_street_is_near_xiangtan_and_about_wanlous_size(demo: Parsed) -> None:
    street = demo.shapes["yuhu/wanlou"]
    lng0, lat0, lng1, lat1 = street.bounds
    assert 112.89 < lng0 < lng1 < 112.94 and 27.83 < lat0 < lat1 < 27.88
    km2 = street.area * 111.32**2 * 0.884  # degrees² to km² at latitude 27.85
    assert 7.5 < km2 < 10.5


def test_buildings_per_block(demo: Parsed) -> None:
    per_block = Counter(b.block_path for b in demo.buildings)
    assert set(per_block) == set(demo.paths("block"))
    assert all(4 <= n <= 12 for n in per_block.values())
    assert all(re.fullmatch(r"\d+栋", b.name) for b in demo.buildings)


def test_households_are_spread_over_the_blocks_with_plausible_addresses(demo: Parsed) -> None:
    assert len(demo.households) == HOUSEHOLDS
    per_block = Counter(h.block_path for h in demo.households)
    assert set(per_block) == set(demo.paths("block"))
    assert all(100 <= n <= 250 for n in per_block.values())
    buildings = {(b.block_path, b.code) for b in demo.buildings}
    in_buildings = [h for h in demo.households if h.building_code is not None]
    assert len(in_buildings) > 0.9 * HOUSEHOLDS
    assert all((h.block_path, h.building_code) in buildings for h in in_buildings)
    assert all(re.fullmatch(r"万楼街道\w+社区\d+栋\d单元\d+0\d", h.address) for h in in_buildings)
    assert len({h.address for h in demo.households}) == HOUSEHOLDS


def test_about_eight_percent_are_vulnerable_mostly_elderly_living_alone(demo: Parsed) -> None:
    tagged = [h for h in demo.households if h.tags]
    assert 0.05 < len(tagged) / HOUSEHOLDS < 0.12
    counts = Counter(tag for h in tagged for tag in h.tags)
    assert counts.most_common(1)[0][0] == "elderly_alone"
    members = Counter(r.household_code for r in demo.residents)
    assert all(members[h.code] == 1 for h in tagged if "elderly_alone" in h.tags)


def test_residents_one_to_five_per_household_with_one_head(demo: Parsed) -> None:
    codes = {h.code for h in demo.households}
    by_household: dict[str, list[ResidentRow]] = defaultdict(list)
    for r in demo.residents:
        by_household[r.household_code].append(r)
    assert set(by_household) == codes
    assert {len(rs) for rs in by_household.values()} == {1, 2, 3, 4, 5}
    assert all([r.relation for r in rs].count("head") == 1 for rs in by_household.values())
    assert all(2 <= len(r.name) <= 4 for r in demo.residents)
    assert all(r.birth_year is None or 1925 <= r.birth_year <= 2024 for r in demo.residents)


def test_most_adults_have_a_phone_and_children_none(demo: Parsed) -> None:
    adults = [r for r in demo.residents if r.birth_year and r.birth_year <= 2006]
    children = [r for r in demo.residents if r.birth_year and r.birth_year > 2006]
    assert sum(r.phone is not None for r in adults) > 0.75 * len(adults)
    assert all(r.phone is None for r in children)


def test_phones_are_unique_across_residents_and_staff(demo: Parsed) -> None:
    phones = [r.phone for r in demo.residents if r.phone] + [s.phone for s in demo.staff]
    assert len(phones) == len(set(phones))


def test_every_block_is_staffed_one_plus_n_plus_one(demo: Parsed) -> None:
    roles: dict[str, dict[str, list[StaffRow]]] = defaultdict(lambda: defaultdict(list))
    for s in demo.staff:
        roles[s.path][s.role].append(s)
    for block in demo.paths("block"):
        staff = roles[block]
        assert len(staff["governor"]) == 1 and len(staff["supervisor"]) == 1, block
        assert 2 <= len(staff["assistant"]) <= 4, block
        kinds = [a.kind for a in staff["assistant"]]
        assert len(set(kinds)) == len(kinds), block  # mixed kinds
        watched = {s.phone for s in staff["governor"] + staff["assistant"]}
        assert staff["supervisor"][0].phone not in watched, block
        assert staff["group_leader"] and staff["neighbour_head"], block
    assert [s.role for s in demo.staff if s.path == "yuhu"] == ["leader"]
    assert [s.role for s in demo.staff if s.path == "yuhu/wanlou"] == ["dispatcher"]
    assert all([s.role for s in demo.staff if s.path == c] == ["area_head"] for c in demo.paths("community"))


def test_household_count_is_a_parameter_and_has_a_floor() -> None:
    small = Parsed(wanlou_demo(seed=1, households=40))
    assert len(small.households) == 40
    assert len(small.paths("block")) == 17
    with pytest.raises(ValueError, match="at least 17"):
        wanlou_demo(households=16)
