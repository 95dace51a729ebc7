from __future__ import annotations

import datetime as dt
import json

import pytest

from govkit.errors import InvalidArgument
from services.blocks import importfiles
from services.blocks.importfiles import (
    BoundaryRow,
    HouseholdRow,
    ImportFileError,
    NodeRow,
    ResidentRow,
    RowError,
    parse_boundaries,
    parse_buildings,
    parse_households,
    parse_nodes,
    parse_residents,
    parse_staff,
)

BLOCK = "yuhu/wanlou/yaowan/b01"
SQUARE = {
    "type": "Polygon",
    "coordinates": [[[112.90, 27.84], [112.91, 27.84], [112.91, 27.85], [112.90, 27.84]]],
}


def errors_of(parser, text: str) -> list[tuple[int, str]]:
    with pytest.raises(ImportFileError) as err:
        parser(text)
    return [(e.line, e.field) for e in err.value.errors]


def messages_of(parser, text: str) -> list[str]:
    with pytest.raises(ImportFileError) as err:
        parser(text)
    return [e.message for e in err.value.errors]


# --- nodes -------------------------------------------------------------------------------------


def test_nodes_parse_and_come_back_parents_first() -> None:
    text = (
        "path,name,kind\n"
        f"{BLOCK},窑湾社区第1区块,block\n"
        "yuhu/wanlou,万楼街道,street\n"
        "yuhu/wanlou/yaowan,窑湾社区,community\n"
        "yuhu,雨湖区,district\n"
    )
    rows = parse_nodes(text)
    assert [r.path for r in rows] == ["yuhu", "yuhu/wanlou", "yuhu/wanlou/yaowan", BLOCK]
    assert rows[-1] == NodeRow(line=2, path=BLOCK, name="窑湾社区第1区块", kind="block")


def test_a_parent_missing_from_the_file_is_left_to_the_caller() -> None:
    assert [r.path for r in parse_nodes(f"path,name,kind\n{BLOCK},一区,block\n")] == [BLOCK]


def test_bom_crlf_blank_lines_column_order_and_header_case_are_accepted() -> None:
    text = (
        "\ufeffKind, Path ,name\r\n"
        "community,yuhu/wanlou/yaowan,窑湾社区\r\n"
        "\r\n"
        ",,\r\n"
        "street,yuhu/wanlou, 万楼街道 \r\n"
    )
    rows = parse_nodes(text)
    assert [(r.line, r.path, r.name, r.kind) for r in rows] == [
        (5, "yuhu/wanlou", "万楼街道", "street"),
        (2, "yuhu/wanlou/yaowan", "窑湾社区", "community"),
    ]


def test_line_numbers_count_physical_lines_past_a_quoted_newline() -> None:
    text = 'path,name,kind\nyuhu,"雨湖\n区",district\nYUHU/wanlou,万楼街道,street\n'
    assert errors_of(parse_nodes, text)[-1] == (4, "path")


def test_csv_the_reader_cannot_read_is_an_error_on_its_line() -> None:
    text = 'path,name,kind\nyuhu,雨湖区,district\nyuhu/wanlou,"' + "长" * 200_000 + '",street\n'
    with pytest.raises(ImportFileError) as err:
        parse_nodes(text)
    assert [(e.line, e.field) for e in err.value.errors] == [(3, "row")]
    assert "is not valid CSV" in err.value.errors[0].message


@pytest.mark.parametrize(
    ("path", "kind"),
    [("yuhu/wanlou", "block"), (BLOCK, "community"), ("hetang", "street"), (BLOCK + "/x", "block")],
)
def test_kind_must_match_the_depth_of_the_path(path: str, kind: str) -> None:
    text = f"path,name,kind\nyuhu,雨湖区,district\n{path},某地,{kind}\n"
    assert errors_of(parse_nodes, text) == [(3, "kind")]


def test_every_bad_node_row_is_reported_with_its_line_and_field() -> None:
    text = (
        "path,name,kind\n"
        "yuhu,雨湖区,district\n"  # fine
        "Yuhu/wanlou,万楼街道,street\n"  # upper case code
        "yuhu/wanlou,,street\n"  # no name
        "yuhu/wanlou/yaowan,窑湾社区,village\n"  # unknown kind
        f"{BLOCK},{'长' * 65},block\n"  # name too long
        "yuhu,雨湖区,district,extra\n"  # too many cells
        "*,全部,district\n"  # the global scope is not a node
    )
    assert errors_of(parse_nodes, text) == [
        (3, "path"),
        (4, "name"),
        (5, "kind"),
        (6, "name"),
        (7, "row"),
        (8, "path"),
    ]


def test_a_duplicate_path_names_the_first_line() -> None:
    text = "path,name,kind\nyuhu,雨湖区,district\nyuhu/wanlou,万楼街道,street\nyuhu,雨湖区,district\n"
    with pytest.raises(ImportFileError) as err:
        parse_nodes(text)
    assert err.value.errors == [RowError(4, "path", "duplicate path: already on line 2")]


@pytest.mark.parametrize(
    ("header", "needle"),
    [
        ("path,name", "missing column 'kind'"),
        ("path,name,kind,remark", "unknown column 'remark'"),
        ("path,name,kind,name", "'name' appears more than once"),
        ("", "the file is empty"),
    ],
)
def test_a_wrong_header_is_a_file_level_error_on_line_1(header: str, needle: str) -> None:
    text = f"{header}\nyuhu,雨湖区,district\n" if header else ""
    with pytest.raises(ImportFileError) as err:
        parse_nodes(text)
    assert [(e.line, e.field) for e in err.value.errors] == [(1, "header")]
    assert needle in err.value.errors[0].message


def test_files_over_the_row_limit_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importfiles, "MAX_ROWS", 3)
    rows = "".join(f"yuhu/s{i},街道{i},street\n" for i in range(4))
    with pytest.raises(ImportFileError) as err:
        parse_nodes("path,name,kind\n" + rows)
    assert [(e.line, e.field) for e in err.value.errors] == [(1, "file")]
    assert "more than 3 data rows" in err.value.errors[0].message
    assert len(parse_nodes("path,name,kind\n" + rows[: rows.index("yuhu/s3")])) == 3


def test_error_text_lists_twenty_and_counts_the_rest() -> None:
    text = "path,name,kind\n" + "BAD,名,district\n" * 25
    with pytest.raises(ImportFileError) as err:
        parse_nodes(text)
    assert isinstance(err.value, InvalidArgument)  # unhandled, it still maps to INVALID_ARGUMENT
    lines = str(err.value).splitlines()
    assert lines[0] == "nodes file rejected: 25 errors"
    assert lines[1].startswith("line 2, path: 'BAD' is not a code")
    assert len(lines) == 22 and lines[-1] == "... and 5 more"


def test_past_the_listing_cap_errors_are_counted_not_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importfiles, "MAX_LISTED_ERRORS", 5)
    with pytest.raises(ImportFileError) as err:
        parse_nodes("path,name,kind\n" + "BAD,名,district\n" * 8)
    assert len(err.value.errors) == 6
    assert err.value.errors[-1].message == "3 more errors not listed"


# --- buildings ---------------------------------------------------------------------------------


def test_buildings_parse() -> None:
    rows = parse_buildings(
        f"block_path,code,name,address\n{BLOCK},3,3栋,万楼街道窑湾社区3栋\n{BLOCK},4,4栋,\n"
    )
    assert [(r.code, r.name, r.address) for r in rows] == [
        ("3", "3栋", "万楼街道窑湾社区3栋"),
        ("4", "4栋", ""),
    ]


def test_bad_buildings_are_all_reported() -> None:
    text = (
        "block_path,code,name,address\n"
        "yuhu/wanlou/yaowan,3,3栋,\n"  # a community, not a block
        f"{BLOCK},3栋,3栋,\n"  # code is not a code
        f"{BLOCK},4,,{'址' * 201}\n"  # no name, address too long
        f"{BLOCK},5,5栋,\n"
        f"{BLOCK},5,5栋,\n"  # duplicate
    )
    assert errors_of(parse_buildings, text) == [
        (2, "block_path"),
        (3, "code"),
        (4, "name"),
        (4, "address"),
        (6, "code"),
    ]
    assert "already on line 5" in messages_of(parse_buildings, text)[-1]


# --- households --------------------------------------------------------------------------------


def test_households_parse_with_tags_deduplicated_in_canonical_order() -> None:
    text = (
        "code,block_path,building_code,address,tags\n"
        f"WL-B01-0001,{BLOCK},3,万楼街道窑湾社区3栋2单元401,disability; elderly_alone;disability\n"
        f"WL-B01-0002,{BLOCK},,万楼街道窑湾社区窑湾街1巷2号,\n"
        f"WL-B01-0003,{BLOCK},3,万楼街道窑湾社区3栋1单元101,subsistence_allowance；extreme_hardship\n"
    )
    rows = parse_households(text)
    assert rows[0] == HouseholdRow(
        2, "WL-B01-0001", BLOCK, "3", "万楼街道窑湾社区3栋2单元401", ("elderly_alone", "disability")
    )
    assert rows[1].building_code is None and rows[1].tags == ()
    assert rows[2].tags == ("subsistence_allowance", "extreme_hardship")


def test_bad_households_are_all_reported() -> None:
    text = (
        "code,block_path,building_code,address,tags\n"
        f"WL 1,{BLOCK},3,地址,\n"  # space in code
        "WL-2,yuhu/wanlou,3,地址,\n"  # not a block
        f"WL-3,{BLOCK},3,,elderly\n"  # no address, unknown tag
        f"WL-4,{BLOCK},3栋,地址,\n"  # bad building code
        f"WL-5,{BLOCK},,地址,\n"
        f"WL-5,{BLOCK},,地址,\n"  # duplicate code
    )
    assert errors_of(parse_households, text) == [
        (2, "code"),
        (3, "block_path"),
        (4, "address"),
        (4, "tags"),
        (5, "building_code"),
        (7, "code"),
    ]
    assert "unknown tag(s) elderly" in messages_of(parse_households, text)[3]


# --- residents ---------------------------------------------------------------------------------

RESIDENTS_HEADER = "household_code,name,relation,phone,birth_year,id_suffix\n"


def test_residents_parse_with_phone_normalized() -> None:
    text = RESIDENTS_HEADER + "WL-1,张建国,head,138 1234 5678,1958,123x\nWL-1,李秀英,Spouse,,,\n"
    assert parse_residents(text) == [
        ResidentRow(2, "WL-1", "张建国", "head", "+8613812345678", 1958, "123X"),
        ResidentRow(3, "WL-1", "李秀英", "spouse", None, None, None),
    ]


@pytest.mark.parametrize("full_id", ["430302196001011234", "43030219600101123X", "430302600101123"])
def test_a_full_national_id_is_refused_and_never_echoed(full_id: str) -> None:
    text = RESIDENTS_HEADER + f"WL-1,张建国,head,,1960,{full_id}\n"
    with pytest.raises(ImportFileError) as err:
        parse_residents(text)
    assert [(e.line, e.field) for e in err.value.errors] == [(2, "id_suffix")]
    assert "only the last 4 characters are stored" in err.value.errors[0].message
    assert full_id not in str(err.value)


def test_every_bad_resident_row_is_reported() -> None:
    text = RESIDENTS_HEADER + (
        "WL-1,张建国,head,13812345678,1958,1234\n"  # fine
        "WL-1,张建国,spouse,,,\n"  # same name twice in a household
        "WL-1,李秀英,wife,1381234567,1899,12A4\n"  # relation, phone, year, suffix
        "WL-1,王伟,child,,2999,123\n"  # future year, suffix lost its leading 0
        ",,head,1.38123E+10,19xx,\n"  # no household, no name, spreadsheet number, not a year
    )
    with pytest.raises(ImportFileError) as err:
        parse_residents(text)
    assert [(e.line, e.field) for e in err.value.errors] == [
        (3, "name"),
        (4, "relation"),
        (4, "phone"),
        (4, "birth_year"),
        (4, "id_suffix"),
        (5, "birth_year"),
        (5, "id_suffix"),
        (6, "household_code"),
        (6, "name"),
        (6, "phone"),
        (6, "birth_year"),
    ]
    messages = [e.message for e in err.value.errors]
    assert messages[0] == "duplicate resident name in this household: already on line 2"
    assert "dropped a leading 0" in messages[6]
    assert "format as text" in messages[9]


def test_the_same_name_in_different_households_is_fine() -> None:
    text = RESIDENTS_HEADER + "WL-1,王伟,head,,,\nWL-2,王伟,head,,,\n"
    assert len(parse_residents(text)) == 2


# --- staff -------------------------------------------------------------------------------------

STAFF_HEADER = "block_path,role,kind,name,phone\n"


def test_staff_parse() -> None:
    text = STAFF_HEADER + (
        f"{BLOCK},governor,,宋思琪,13792639526\n"
        f"{BLOCK},assistant,party_group_leader,朱国庆,18423508375\n"
        f"{BLOCK},supervisor,,袁艳,18585310341\n"
        "yuhu/wanlou,dispatcher,,张子轩,17669799920\n"
        "yuhu,leader,,文志强,19144720374\n"
        "yuhu/wanlou/yaowan,area_head,,谭湘云,13243519728\n"
    )
    rows = parse_staff(text)
    assert [(r.role, r.kind) for r in rows][:2] == [("governor", None), ("assistant", "party_group_leader")]
    assert rows[0].phone == "+8613792639526"


def test_bad_staff_rows_are_all_reported() -> None:
    text = STAFF_HEADER + (
        f"{BLOCK},governor,,宋思琪,13792639526\n"
        f"{BLOCK},governor,,龙伟,15085056599\n"  # a second governor
        f"{BLOCK},assistant,,朱国庆,18423508375\n"  # assistant without kind
        f"{BLOCK},supervisor,liaison_cadre,袁艳,18585310341\n"  # kind on a non-assistant
        f"{BLOCK},supervisor,,宋思琪,13792639526\n"  # the governor watching themself
        "yuhu,dispatcher,,张子轩,17669799920\n"  # dispatchers sit at a street
        f"{BLOCK},mayor,,文志强,\n"  # unknown role, no phone
        f"{BLOCK},supervisor,,袁艳,13900001111\n"  # a second supervisor
    )
    with pytest.raises(ImportFileError) as err:
        parse_staff(text)
    assert [(e.line, e.field, e.message) for e in err.value.errors] == [
        (3, "role", "a block has one governor: already on line 2"),
        (4, "kind", "an assistant needs a kind: one of " + ", ".join(importfiles.ASSISTANT_KINDS)),
        (5, "kind", "is only for assistants: leave it empty"),
        (6, "phone", "the supervisor must not be this block's governor or an assistant"),
        (7, "block_path", "a dispatcher sits at a street: this path is a district"),
        (8, "role", "must be one of: " + ", ".join(importfiles.STAFF_ROLES)),
        (8, "phone", "is required"),
        (9, "role", "a block has one supervisor: already on line 6"),
    ]


# --- boundaries --------------------------------------------------------------------------------


def collection(*features: object, **extra: object) -> str:
    return json.dumps({"type": "FeatureCollection", "features": list(features), **extra})


def feature(path: object, geometry: object = SQUARE, name: object = None) -> dict[str, object]:
    props = {"path": path} if name is None else {"path": path, "name": name}
    return {"type": "Feature", "properties": props, "geometry": geometry}


def test_boundaries_parse() -> None:
    multi = {"type": "MultiPolygon", "coordinates": [SQUARE["coordinates"]]}
    text = "\ufeff" + collection(feature("yuhu/wanlou", name="万楼街道"), feature(BLOCK, multi, name=" "))
    assert parse_boundaries(text) == [
        BoundaryRow(1, "yuhu/wanlou", "万楼街道", SQUARE),
        BoundaryRow(2, BLOCK, None, multi),
    ]


def test_bad_features_are_all_reported_by_feature_number() -> None:
    text = collection(
        feature(BLOCK),
        feature("Yuhu"),  # bad path
        {"type": "Feature", "properties": None, "geometry": SQUARE},  # no path
        feature(BLOCK, {"type": "Point", "coordinates": [112.9, 27.8]}),  # duplicate, and a point
        feature("yuhu/wanlou", {"type": "Polygon", "coordinates": []}, name=7),
        "not a feature",
    )
    with pytest.raises(ImportFileError) as err:
        parse_boundaries(text)
    assert [(e.line, e.field) for e in err.value.errors] == [
        (2, "properties.path"),
        (3, "properties.path"),
        (4, "properties.path"),
        (4, "geometry.type"),
        (5, "properties.name"),
        (5, "geometry.coordinates"),
        (6, "type"),
    ]
    assert err.value.errors[2].message == f"feature 4: duplicate boundary for {BLOCK}: already on feature 1"
    assert all(e.message.startswith(f"feature {e.line}: ") for e in err.value.errors)
    assert "\nfeature 4, geometry.type: must be Polygon or MultiPolygon, not 'Point'" in str(err.value)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("{not json", "is not JSON"),
        (json.dumps({"type": "Feature"}), "FeatureCollection"),
        (json.dumps({"type": "FeatureCollection"}), "'features' list"),
        (
            collection(feature(BLOCK), crs={"type": "name", "properties": {"name": "EPSG:4547"}}),
            "longitude/latitude",
        ),
    ],
)
def test_a_file_that_is_not_a_feature_collection_is_refused(text: str, needle: str) -> None:
    with pytest.raises(ImportFileError) as err:
        parse_boundaries(text)
    assert [(e.line, e.field) for e in err.value.errors] == [(1, "file")]
    assert needle in err.value.errors[0].message
    assert str(err.value).splitlines()[1].startswith("file: ")


def test_a_geographic_crs_member_is_accepted() -> None:
    crs = {"type": "name", "properties": {"name": "urn:ogc:def:crs:OGC:1.3:CRS84"}}
    assert len(parse_boundaries(collection(feature(BLOCK), crs=crs))) == 1


# --- cells a spreadsheet would run -----------------------------------------------------------------

FORMULAS = ('=HYPERLINK("http://x.example","点我")', "=cmd|' /C calc'!A0", "@SUM(1+1)*cmd", "+1+1", "-2+3")


@pytest.mark.parametrize("formula", FORMULAS)
def test_text_cells_that_start_like_a_formula_are_refused_in_every_file(formula: str) -> None:
    cell = '"' + formula.replace('"', '""') + '"'
    expected = f"starts with '{formula[0]}': a spreadsheet would run it as a formula"
    cases = [
        (parse_nodes, f"path,name,kind\nyuhu,{cell},district\n", "name"),
        (parse_buildings, f"block_path,code,name,address\n{BLOCK},1,{cell},\n", "name"),
        (parse_buildings, f"block_path,code,name,address\n{BLOCK},1,1栋,{cell}\n", "address"),
        (parse_households, f"code,block_path,building_code,address,tags\nWL-1,{BLOCK},,{cell},\n", "address"),
        (
            parse_residents,
            f"household_code,name,relation,phone,birth_year,id_suffix\nWL-1,{cell},head,,,\n",
            "name",
        ),
        (parse_staff, f"block_path,role,kind,name,phone\n{BLOCK},governor,,{cell},13800138000\n", "name"),
    ]
    for parser, text, field in cases:
        with pytest.raises(ImportFileError) as err:
            parser(text)
        [error] = err.value.errors
        assert (error.line, error.field) == (2, field), parser
        assert error.message.startswith(expected), error.message
    feature = {"type": "Feature", "properties": {"path": BLOCK, "name": formula}, "geometry": SQUARE}
    with pytest.raises(ImportFileError) as err:
        parse_boundaries(json.dumps({"type": "FeatureCollection", "features": [feature]}))
    assert [e.field for e in err.value.errors] == ["properties.name"]


def test_leading_tabs_and_returns_do_not_hide_a_formula() -> None:
    text = f'code,block_path,building_code,address,tags\nWL-1,{BLOCK},,"\t\r=1+1",\n'
    assert errors_of(parse_households, text) == [(2, "address")]


def test_fields_with_a_grammar_keep_their_plus_and_minus() -> None:
    # +86 is how international numbers are written; the grammar of a phone leaves no room for a formula.
    [resident] = parse_residents(
        "household_code,name,relation,phone,birth_year,id_suffix\nWL-1,张三,head,+86 138 1234 5678,1960,\n"
    )
    assert resident.phone == "+8613812345678"
    # A negative year is refused as a year, not as a formula.
    messages = messages_of(
        parse_residents, "household_code,name,relation,phone,birth_year,id_suffix\nWL-1,张三,head,,-1960,\n"
    )
    assert messages == [f"must be a year from 1900 to {dt.date.today().year}"]
    # Text that merely contains the characters is fine.
    [household] = parse_households(
        f"code,block_path,building_code,address,tags\nWL-1,{BLOCK},,3栋-201 @物业,\n"
    )
    assert household.address == "3栋-201 @物业"


def test_a_household_code_may_not_start_with_a_minus() -> None:
    text = f"code,block_path,building_code,address,tags\n-2-3,{BLOCK},,地址,\nA-2,{BLOCK},,地址,\n"
    assert errors_of(parse_households, text) == [(2, "code")]


# --- large files, row by row ------------------------------------------------------------------------


def test_rows_stream_from_an_open_file_and_repeats_are_found_at_the_end(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "households.csv"
    lines = ["code,block_path,building_code,address,tags"]
    lines += [f"H{i},{BLOCK},,地址{i}," for i in range(1, 12_001)]
    lines[9_000] = f"H17,{BLOCK},,重复,"  # line 9,001 repeats the code of line 18
    path.write_text("\ufeff" + "\r\n".join(lines) + "\r\n", encoding="utf-8")
    check = importfiles.Checker("households")
    with path.open(encoding="utf-8-sig", newline="") as source:
        rows = importfiles.iter_households(source, check)
        first = next(rows)
        assert first.line == 2 and not check.errors  # rows come out before the file is read
        rest = list(rows)
    assert len(rest) + 1 == 12_000
    assert check.errors == [RowError(9_001, "code", "duplicate household code: already on line 18")]


def test_repeats_in_a_file_are_found_from_hashes_with_their_first_line() -> None:
    keys = importfiles._Keys()
    for line, key in enumerate(["a", "b", "a", ("x", 1), "b", "a", ("x", 1)], start=2):
        keys.add(key, line)
    assert sorted(keys.repeats()) == [(4, 2), (6, 3), (7, 2), (8, 5)]
    assert len(keys.hashes) * keys.hashes.itemsize + len(keys.lines) * keys.lines.itemsize == 7 * 12


def test_in_lists_are_padded_to_a_few_lengths_so_prepared_statements_stay_few() -> None:
    from services.blocks.importwrites import padded

    assert padded([]) == [] and padded(["a", "a", "b"]) == ["a", "b"]
    assert padded(["a", "b", "c"]) == ["a", "b", "c", "c"]
    lengths = {len(padded(str(i) for i in range(n))) for n in (*range(1, 5_001, 13), 511, 512, 513, 5_000)}
    assert len(lengths) <= 20 and all(n >= 1 for n in lengths)
    assert set(padded(str(i) for i in range(2_200))) == {str(i) for i in range(2_200)}
