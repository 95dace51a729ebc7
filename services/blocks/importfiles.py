"""Parsing and validation of the ops bulk-import files: nodes, boundaries, buildings, households,
residents and staff.

Pure functions over a file's text: no database and no I/O. Each parser returns typed rows or raises
ImportFileError listing every problem it found, each with its line, so ops can fix a file in one round
trip instead of one error per upload. Checks that need the database (does the parent node exist, does
the household exist, 1+N+1 staffing across imports) and the all-or-nothing transaction are the caller's.

CSV files have a header row naming the columns (any order, names case-insensitive); a UTF-8 BOM and
CRLF line ends are accepted, surrounding spaces in cells are ignored and blank rows are skipped. Line
numbers count physical lines from 1 (the header), so they match what a text editor shows. GeoJSON
features are numbered from 1 in the same `line` slot and messages say "feature N".

Buildings, households and residents files can be large (a district: 450,000 residents), so they are
also read row by row (`iter_buildings`, `iter_households`, `iter_residents` over an open text file):
rows come out as they are read, errors collect in a `Checker`, and uniqueness within the file is
checked at the end from 12 bytes per row (`_Keys`), not by keeping every key.

Free text that starts like a spreadsheet formula (`=`, `+`, `-`, `@`) is refused (see
govkit.spreadsheet): these files come from and go to spreadsheets. Fields with a strict grammar
(codes, paths, phone numbers such as +8613812345678, years, id suffixes) cannot hold a formula.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from array import array
from collections.abc import Hashable, Iterator
from dataclasses import dataclass
from typing import Any, TextIO

import numpy as np

from govkit import validation
from govkit.auth.scopes import validate_path
from govkit.errors import InvalidArgument
from govkit.spreadsheet import formula_start

MAX_ROWS = 500_000
# Beyond this many the rest are only counted: nobody reads a million errors, and keeping them would
# cost memory proportional to a bad file's size.
MAX_LISTED_ERRORS = 10_000
_SUMMARY_ERRORS = 20

NODE_KINDS = ("district", "street", "community", "block")
BLOCK_DEPTH = NODE_KINDS.index("block") + 1
VULNERABILITY_TAGS = (
    "elderly_alone",
    "subsistence_allowance",
    "extreme_hardship",
    "left_behind_child",
    "distressed_child",
    "disability",
)
RELATIONS = ("head", "spouse", "child", "parent", "grandchild", "grandparent", "sibling", "other")
STAFF_ROLES = (
    "governor",
    "assistant",
    "supervisor",
    "dispatcher",
    "leader",
    "area_head",
    "group_leader",
    "neighbour_head",
)
ASSISTANT_KINDS = (
    "liaison_cadre",
    "party_group_leader",
    "owners_committee_member",
    "resident_representative",
)
# Which levels of the tree each staff role sits at: 1 district, 2 street, 3 community, 4 block.
STAFF_DEPTHS: dict[str, tuple[int, ...]] = {
    "governor": (4,),
    "assistant": (4,),
    "supervisor": (4,),
    "dispatcher": (2,),
    "leader": (1, 2),
    "area_head": (3, 4),
    "group_leader": (4,),
    "neighbour_head": (4,),
}

NODE_COLUMNS = ("path", "name", "kind")
BUILDING_COLUMNS = ("block_path", "code", "name", "address")
HOUSEHOLD_COLUMNS = ("code", "block_path", "building_code", "address", "tags")
RESIDENT_COLUMNS = ("household_code", "name", "relation", "phone", "birth_year", "id_suffix")
STAFF_COLUMNS = ("block_path", "role", "kind", "name", "phone")

_CODE = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")  # one code of a region path, see govkit.auth.scopes
# Not starting with '-': a spreadsheet would read "-2-3" as a sum.
_HOUSEHOLD_CODE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,39}")
_ID_SUFFIX = re.compile(r"\d{3}[\dX]")
_FULL_ID = re.compile(r"\d{15}|\d{17}[\dX]")
_TAG_SEPARATORS = re.compile(r"[;；]")  # Chinese input methods often type the full-width semicolon
_YEAR = re.compile(r"\d{4}")
_NODE_KIND_DEPTH = {kind: depth for depth, kind in enumerate(NODE_KINDS, start=1)}
_TAG_ORDER = {tag: i for i, tag in enumerate(VULNERABILITY_TAGS)}
_BLOCK_PATH_MESSAGE = f"must be a block path (district/street/community/block, {BLOCK_DEPTH} levels)"


@dataclass(frozen=True, slots=True)
class RowError:
    line: int
    field: str
    message: str


class ImportFileError(InvalidArgument):
    """A rejected file with every error found; an InvalidArgument, so unhandled it still maps to 400."""

    def __init__(self, kind: str, errors: list[RowError]) -> None:
        self.kind = kind
        self.errors = errors
        super().__init__(_summary(kind, errors))


def _summary(kind: str, errors: list[RowError]) -> str:
    unit = "feature" if kind == "boundaries" else "line"
    lines = [f"{kind} file rejected: {len(errors)} error{'s' if len(errors) != 1 else ''}"]
    for err in errors[:_SUMMARY_ERRORS]:
        if unit == "line":
            lines.append(f"line {err.line}, {err.field}: {err.message}")
        elif err.field == "file":
            lines.append(f"file: {err.message}")
        else:  # boundary messages already start "feature N: "
            message = err.message.removeprefix(f"feature {err.line}: ")
            lines.append(f"feature {err.line}, {err.field}: {message}")
    if len(errors) > _SUMMARY_ERRORS:
        lines.append(f"... and {len(errors) - _SUMMARY_ERRORS} more")
    return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class NodeRow:
    line: int
    path: str
    name: str
    kind: str


@dataclass(frozen=True, slots=True)
class BoundaryRow:
    line: int
    path: str
    name: str | None
    geometry: dict[str, Any]


@dataclass(frozen=True, slots=True)
class BuildingRow:
    line: int
    block_path: str
    code: str
    name: str
    address: str


@dataclass(frozen=True, slots=True)
class HouseholdRow:
    line: int
    code: str
    block_path: str
    building_code: str | None
    address: str
    tags: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ResidentRow:
    line: int
    household_code: str
    name: str
    relation: str
    phone: str | None
    birth_year: int | None
    id_suffix: str | None


@dataclass(frozen=True, slots=True)
class StaffRow:
    """One staff binding. `path` is the file's block_path column: a block for 1+N+1 roles, the
    street for a dispatcher, the district or street for a leader."""

    line: int
    path: str
    role: str
    kind: str | None
    name: str
    phone: str


class _Keys:
    """Keys that must be unique in a file, kept as a hash and a line number each (12 bytes a row,
    where the keys themselves would take a few hundred). Two rows whose hashes agree are reported as
    a duplicate; for different keys that happens with odds of about 1 in 10^8 for a 450,000-row file."""

    def __init__(self) -> None:
        self.hashes = array("q")
        self.lines = array("I")

    def add(self, key: Hashable, line: int) -> None:
        self.hashes.append(hash(key))
        self.lines.append(line)

    def repeats(self) -> Iterator[tuple[int, int]]:
        """(line, line of the first occurrence) of every repeat. Sorted with numpy: a Python sort of
        450,000 keys would briefly take ~70 MiB, this takes ~15."""
        if len(self.hashes) < 2:
            return
        hashes = np.frombuffer(self.hashes, dtype=np.int64)
        lines = np.frombuffer(self.lines, dtype=np.uint32)
        order = np.argsort(hashes, kind="stable")  # equal hashes keep file order: the first comes first
        ordered = hashes[order]
        repeat = np.empty(len(ordered), dtype=bool)
        repeat[0] = False
        np.equal(ordered[1:], ordered[:-1], out=repeat[1:])
        if not repeat.any():
            return
        # For each position, where its run of equal hashes starts.
        starts = np.maximum.accumulate(np.where(repeat, 0, np.arange(len(ordered))))
        for at in np.flatnonzero(repeat):
            yield int(lines[order[at]]), int(lines[order[starts[at]]])


class Checker:
    """Collects the errors of one file. Each check returns the clean value, or None after recording
    an error, so a row's fields are all checked and every problem is reported, not just the first."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.unit = "feature" if kind == "boundaries" else "line"
        self.line = 1
        self.errors: list[RowError] = []
        self.omitted = 0
        self._valid_paths: set[str] = set()  # files repeat the same few hundred block paths
        self._unique: dict[tuple[str, str], _Keys] = {}

    @property
    def count(self) -> int:
        return len(self.errors) + self.omitted

    def fail(self, field: str, message: str, line: int | None = None) -> None:
        line = self.line if line is None else line
        if self.unit == "feature" and field != "file":
            message = f"feature {line}: {message}"  # `line` alone would mislead for a JSON file
        if len(self.errors) < MAX_LISTED_ERRORS:
            self.errors.append(RowError(line, field, message))
        else:
            self.omitted += 1

    def sorted_errors(self, more: list[RowError] | None = None) -> list[RowError]:
        """This file's errors and `more` (found elsewhere), by line, with a note for any not listed."""
        errors = sorted([*self.errors, *(more or [])], key=lambda e: e.line)  # stable: file-level first
        if len(errors) > MAX_LISTED_ERRORS:
            self.omitted += len(errors) - MAX_LISTED_ERRORS
            del errors[MAX_LISTED_ERRORS:]
        if self.omitted:
            errors.append(RowError(errors[-1].line, "file", f"{self.omitted} more errors not listed"))
        return errors

    def raise_if_failed(self) -> None:
        if not self.count:
            return
        raise ImportFileError(self.kind, self.sorted_errors())

    def path(self, value: str, field: str) -> str | None:
        if value in self._valid_paths:
            return value
        try:
            validate_path(value, field=field, allow_global=False)
        except InvalidArgument as exc:
            self.fail(exc.field or field, exc.message)
            return None
        self._valid_paths.add(value)
        return value

    def block_path(self, value: str, field: str = "block_path") -> str | None:
        path = self.path(value, field)
        if path is not None and path.count("/") + 1 != BLOCK_DEPTH:
            self.fail(field, _BLOCK_PATH_MESSAGE)
            return None
        return path

    def text(self, value: str, field: str, *, max_len: int, required: bool = True) -> str | None:
        try:
            clean = validation.text(value, field, max_len=max_len, required=required)
        except InvalidArgument as exc:
            self.fail(field, exc.message)
            return None
        refused = formula_start(clean)
        if refused is not None:
            self.fail(field, refused)
            return None
        return clean

    def code(self, value: str, field: str) -> str | None:
        if _CODE.fullmatch(value):
            return value
        if not value:
            self.fail(field, "is required")
        else:
            self.fail(field, "must be 1-32 of a-z, 0-9, '_' and '-', starting with a letter or digit")
        return None

    def household_code(self, value: str, field: str) -> str | None:
        if _HOUSEHOLD_CODE.fullmatch(value):
            return value
        self.fail(
            field,
            "is required"
            if not value
            else "must be 1-40 of A-Z, a-z, 0-9, '_' and '-', not starting with '-'",
        )
        return None

    def choice(self, value: str, field: str, choices: tuple[str, ...]) -> str | None:
        value = value.lower()
        if value in choices:
            return value
        self.fail(field, "is required" if not value else f"must be one of: {', '.join(choices)}")
        return None

    def phone(self, value: str, field: str = "phone") -> str | None:
        if not value:
            self.fail(field, "is required")
            return None
        try:
            return validation.normalize_phone(value, field)
        except InvalidArgument as exc:
            if "E+" in value.upper():  # 1.38123E+10: what a spreadsheet saves for a number column
                self.fail(field, f"{exc.message} (a spreadsheet turned it into a number: format as text)")
            else:
                self.fail(field, exc.message)
            return None

    def first(self, seen: dict[Any, int], key: Any, field: str, what: str) -> None:
        """Record `key` at this line, or report it as a duplicate of its first occurrence."""
        first = seen.setdefault(key, self.line)
        if first != self.line:
            self.fail(field, f"duplicate {what}: already on {self.unit} {first}")

    def unique(self, key: Hashable, field: str, what: str) -> None:
        """Like `first`, for large files: repeats are found and reported by `finish`."""
        self._unique.setdefault((field, what), _Keys()).add(key, self.line)

    def finish(self) -> None:
        """Report the repeats of keys given to `unique` (once the whole file has been read)."""
        for (field, what), keys in self._unique.items():
            for line, first in keys.repeats():
                self.fail(field, f"duplicate {what}: already on {self.unit} {first}", line)
        self._unique.clear()


def _csv_rows(source: str | TextIO, columns: tuple[str, ...], check: Checker) -> Iterator[list[str]]:
    """Yield each data row's cells in `columns` order, with `check.line` set to the row's first line.
    `source` is the file's text, or the file opened as text (newline="", encoding "utf-8-sig")."""
    if isinstance(source, str):
        source = io.StringIO(source.removeprefix("\ufeff"), newline="")
    reader = csv.reader(source)
    records = _records(reader, check)
    header = next(records, None)
    if header is None:
        if not check.count:
            check.fail("header", f"the file is empty: expected a header row {','.join(columns)}", 1)
        return
    order = _column_order(header, columns, check)
    if order is None:
        return
    width = len(header)
    rows = 0
    for row in records:
        if not "".join(row).strip():  # blank lines and spreadsheet ",,,," rows
            continue
        rows += 1
        if rows > MAX_ROWS:
            check.fail("file", f"has more than {MAX_ROWS} data rows: split it into several files", 1)
            return
        if len(row) != width:
            check.fail("row", f"has {len(row)} fields but the header has {width}")
            continue
        yield [row[i].strip() for i in order]


def _records(reader: Any, check: Checker) -> Iterator[list[str]]:
    """The reader's records with `check.line` set to where each starts; a quoted field can span lines.
    CSV the module cannot read (an unclosed quote at the end, a field over its size limit) ends the
    file with an error on that line rather than escaping as an unexpected exception."""
    previous_end = 0
    while True:
        check.line = previous_end + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            check.fail("row", f"is not valid CSV: {exc}")
            return
        previous_end = reader.line_num
        yield row


def _column_order(header: list[str], columns: tuple[str, ...], check: Checker) -> list[int] | None:
    """Index of each expected column in the header, or None after reporting a bad header."""
    names = [name.strip().lower() for name in header]
    expected = ",".join(columns)
    ok = True
    for name in sorted({n for n in names if n and n not in columns}):
        check.fail("header", f"unknown column {name!r}: expected {expected}", 1)
        ok = False
    for name in columns:
        if name not in names:
            check.fail("header", f"missing column {name!r}: expected {expected}", 1)
            ok = False
        elif names.count(name) > 1:
            check.fail("header", f"column {name!r} appears more than once", 1)
            ok = False
    return [names.index(name) for name in columns] if ok else None


def parse_nodes(text: str) -> list[NodeRow]:
    """nodes.csv (path,name,kind) -> rows sorted parents first. A parent missing from the file is not
    an error here: it may already exist in the database."""
    check = Checker("nodes")
    rows: list[NodeRow] = []
    seen: dict[str, int] = {}
    for raw_path, raw_name, raw_kind in _csv_rows(text, NODE_COLUMNS, check):
        before = check.count
        path = check.path(raw_path, "path")
        name = check.text(raw_name, "name", max_len=64)
        kind = check.choice(raw_kind, "kind", NODE_KINDS)
        if path is not None:
            check.first(seen, path, "path", "path")
            depth = path.count("/") + 1
            if kind is not None and depth != _NODE_KIND_DEPTH[kind]:
                check.fail("kind", _depth_message(kind, depth))
        if check.count == before and path and name and kind:
            rows.append(NodeRow(check.line, path, name, kind))
    check.raise_if_failed()
    rows.sort(key=lambda r: (r.path.count("/"), r.path))
    return rows


def _depth_message(kind: str, depth: int) -> str:
    levels = "/".join(NODE_KINDS[: _NODE_KIND_DEPTH[kind]])
    return f"a {kind} needs a path of {_NODE_KIND_DEPTH[kind]} level(s) ({levels}), this path has {depth}"


def parse_buildings(text: str) -> list[BuildingRow]:
    """buildings.csv (block_path,code,name,address); (block_path, code) is unique in the file."""
    return _parsed("buildings", iter_buildings, text)


def _parsed(kind: str, rows: Any, text: str) -> list[Any]:
    check = Checker(kind)
    found = list(rows(text, check))
    check.raise_if_failed()
    return found


def iter_buildings(source: str | TextIO, check: Checker) -> Iterator[BuildingRow]:
    """The good rows of buildings.csv as they are read; errors go to `check` (repeats at the end)."""
    for raw_block, raw_code, raw_name, raw_address in _csv_rows(source, BUILDING_COLUMNS, check):
        before = check.count
        block_path = check.block_path(raw_block)
        code = check.code(raw_code, "code")
        name = check.text(raw_name, "name", max_len=64)
        address = check.text(raw_address, "address", max_len=200, required=False)
        if block_path and code:
            check.unique((block_path, code), "code", f"building {code!r} in this block")
        if check.count == before and block_path and code and name and address is not None:
            yield BuildingRow(check.line, block_path, code, name, address)
    check.finish()


def parse_households(text: str) -> list[HouseholdRow]:
    """households.csv (code,block_path,building_code,address,tags); code is the household's stable
    external id, unique in the file. Tags come back deduplicated in VULNERABILITY_TAGS order."""
    return _parsed("households", iter_households, text)


def iter_households(source: str | TextIO, check: Checker) -> Iterator[HouseholdRow]:
    """The good rows of households.csv as they are read; errors go to `check` (repeats at the end)."""
    for raw_code, raw_block, raw_building, raw_address, raw_tags in _csv_rows(
        source, HOUSEHOLD_COLUMNS, check
    ):
        before = check.count
        code = check.household_code(raw_code, "code")
        block_path = check.block_path(raw_block)
        building_code = check.code(raw_building, "building_code") if raw_building else None
        address = check.text(raw_address, "address", max_len=200)
        tags = _tags(raw_tags, check)
        if code:
            check.unique(code, "code", "household code")
        if check.count == before and code and block_path and address and tags is not None:
            yield HouseholdRow(check.line, code, block_path, building_code, address, tags)
    check.finish()


def _tags(raw: str, check: Checker) -> tuple[str, ...] | None:
    if not raw:
        return ()
    tags = {tag.strip().lower() for tag in _TAG_SEPARATORS.split(raw)} - {""}
    unknown = sorted(tags - _TAG_ORDER.keys())
    if unknown:
        check.fail("tags", f"unknown tag(s) {', '.join(unknown)}: use {';'.join(VULNERABILITY_TAGS)}")
        return None
    return tuple(sorted(tags, key=_TAG_ORDER.__getitem__))


def parse_residents(text: str) -> list[ResidentRow]:
    """residents.csv (household_code,name,relation,phone,birth_year,id_suffix); (household_code, name)
    is unique in the file. Whether the household exists is the caller's check."""
    return _parsed("residents", iter_residents, text)


def iter_residents(source: str | TextIO, check: Checker) -> Iterator[ResidentRow]:
    """The good rows of residents.csv as they are read; errors go to `check` (repeats at the end)."""
    this_year = dt.date.today().year
    for household, raw_name, relation, phone, year, suffix in _csv_rows(source, RESIDENT_COLUMNS, check):
        before = check.count
        household_code = check.household_code(household, "household_code")
        name = check.text(raw_name, "name", max_len=64)
        relation_ = check.choice(relation, "relation", RELATIONS)
        phone_ = check.phone(phone) if phone else None
        birth_year = _birth_year(year, this_year, check) if year else None
        id_suffix = _id_suffix(suffix, check) if suffix else None
        if household_code and name:
            check.unique((household_code, name), "name", "resident name in this household")
        if check.count == before and household_code and name and relation_:
            yield ResidentRow(check.line, household_code, name, relation_, phone_, birth_year, id_suffix)
    check.finish()


def _birth_year(raw: str, this_year: int, check: Checker) -> int | None:
    year = int(raw) if _YEAR.fullmatch(raw) else None
    if year is None or not 1900 <= year <= this_year:
        check.fail("birth_year", f"must be a year from 1900 to {this_year}")
        return None
    return year


def _id_suffix(raw: str, check: Checker) -> str | None:
    """Only the last 4 characters of a national id are kept: a full id number is personal data the
    platform has no need for, so it is refused rather than truncated silently. Messages never echo it."""
    value = raw.upper()
    if _ID_SUFFIX.fullmatch(value):
        return value
    if _FULL_ID.fullmatch(value):
        check.fail("id_suffix", "looks like a full national id number: only the last 4 characters are stored")
    elif value.isdigit() and len(value) < 4:  # 0123 saved from a number column loses its leading 0
        check.fail("id_suffix", "must be 4 characters: a spreadsheet may have dropped a leading 0")
    else:
        check.fail("id_suffix", "must be the last 4 characters of the national id (digits, or X last)")
    return None


def parse_staff(text: str) -> list[StaffRow]:
    """staff.csv (block_path,role,kind,name,phone). kind is required for assistants and must be empty
    otherwise. Within the file a block has at most one governor and one supervisor, and the supervisor is
    not also the block's governor or an assistant; full 1+N+1 staffing is the caller's check."""
    check = Checker("staff")
    rows: list[StaffRow] = []
    seen: dict[tuple[str, str, str], int] = {}
    for raw_path, raw_role, raw_kind, raw_name, raw_phone in _csv_rows(text, STAFF_COLUMNS, check):
        before = check.count
        path = check.path(raw_path, "block_path")
        role = check.choice(raw_role, "role", STAFF_ROLES)
        kind = _staff_kind(role, raw_kind, check)
        name = check.text(raw_name, "name", max_len=64)
        phone = check.phone(raw_phone)
        if path and role and path.count("/") + 1 not in STAFF_DEPTHS[role]:
            levels = " or ".join(NODE_KINDS[d - 1] for d in STAFF_DEPTHS[role])
            check.fail("block_path", f"a {role} sits at a {levels}: this path is a {_level(path)}")
        if path and role and phone:
            check.first(seen, (path, role, phone), "phone", f"{role} with this phone here")
        if check.count == before and path and role and name and phone:
            rows.append(StaffRow(check.line, path, role, kind, name, phone))
    _check_block_staff(rows, check)
    check.raise_if_failed()
    return rows


def _level(path: str) -> str:
    depth = path.count("/") + 1
    return NODE_KINDS[depth - 1] if depth <= len(NODE_KINDS) else f"path {depth} levels deep"


def _staff_kind(role: str | None, raw: str, check: Checker) -> str | None:
    if role != "assistant":
        if raw:
            check.fail("kind", "is only for assistants: leave it empty")
        return None
    if not raw:
        check.fail("kind", f"an assistant needs a kind: one of {', '.join(ASSISTANT_KINDS)}")
        return None
    return check.choice(raw, "kind", ASSISTANT_KINDS)


def _check_block_staff(rows: list[StaffRow], check: Checker) -> None:
    """One governor and one supervisor per block, and the supervisor watches others, not themself."""
    single: dict[tuple[str, str], StaffRow] = {}
    watched: dict[str, set[str]] = {}
    for row in rows:
        if row.role in ("governor", "supervisor"):
            first = single.setdefault((row.path, row.role), row)
            if first is not row:
                check.fail("role", f"a block has one {row.role}: already on line {first.line}", row.line)
        if row.role in ("governor", "assistant"):
            watched.setdefault(row.path, set()).add(row.phone)
    for row in rows:
        if row.role == "supervisor" and row.phone in watched.get(row.path, ()):
            check.fail("phone", "the supervisor must not be this block's governor or an assistant", row.line)


def parse_boundaries(text: str) -> list[BoundaryRow]:
    """boundaries.geojson: a FeatureCollection of Polygon/MultiPolygon features with properties.path and
    an optional properties.name. Only the shape of the JSON is checked; geometry is the caller's."""
    check = Checker("boundaries")
    features = _features(text, check)
    rows: list[BoundaryRow] = []
    seen: dict[str, int] = {}
    for index, feature in enumerate(features):
        check.line = index + 1
        before = check.count
        row = _boundary(feature, check, seen)
        if row is not None and check.count == before:
            rows.append(row)
    check.raise_if_failed()
    return rows


def _features(text: str, check: Checker) -> list[Any]:
    try:
        data = json.loads(text.removeprefix("\ufeff"))
    except json.JSONDecodeError as exc:
        check.fail("file", f"is not JSON (line {exc.lineno} column {exc.colno}: {exc.msg})", 1)
        return []
    if not isinstance(data, dict) or data.get("type") != "FeatureCollection":
        check.fail("file", "must be a GeoJSON FeatureCollection", 1)
        return []
    if not _is_lon_lat(data.get("crs")):
        check.fail("file", "coordinates must be longitude/latitude (WGS 84 or CGCS2000), not a projection", 1)
        return []
    features = data.get("features")
    if not isinstance(features, list):
        check.fail("file", "must have a 'features' list", 1)
        return []
    if len(features) > MAX_ROWS:
        check.fail("file", f"has more than {MAX_ROWS} features: split it into several files", 1)
        return []
    return features


def _is_lon_lat(crs: Any) -> bool:
    """RFC 7946 GeoJSON has no crs member; older exports from Chinese GIS tools may name a projected
    one (e.g. EPSG:4547), whose metre coordinates would land nowhere near the street."""
    if crs is None:
        return True
    props = crs.get("properties") if isinstance(crs, dict) else None
    name = str(props.get("name", "")) if isinstance(props, dict) else ""
    return any(known in name for known in ("CRS84", "4326", "4490"))


def _boundary(feature: Any, check: Checker, seen: dict[str, int]) -> BoundaryRow | None:
    n = check.line
    if not isinstance(feature, dict) or feature.get("type") != "Feature":
        check.fail("type", "must be a GeoJSON Feature")
        return None
    props = feature.get("properties")
    props = props if isinstance(props, dict) else {}
    raw_path = props.get("path")
    path = None
    if not isinstance(raw_path, str) or not raw_path.strip():
        check.fail("properties.path", "is required, e.g. 'yuhu/wanlou/yaowan/b01'")
    else:
        path = check.path(raw_path.strip(), "properties.path")
    if path is not None:
        check.first(seen, path, "properties.path", f"boundary for {path}")
    name = _feature_name(props.get("name"), check)
    geometry = _geometry(feature.get("geometry"), check)
    if path is None or geometry is None:
        return None
    return BoundaryRow(n, path, name, geometry)


def _feature_name(raw: Any, check: Checker) -> str | None:
    if raw is None:
        return None
    if not isinstance(raw, str):
        check.fail("properties.name", "must be text")
        return None
    return check.text(raw, "properties.name", max_len=64, required=False) or None


def _geometry(geometry: Any, check: Checker) -> dict[str, Any] | None:
    if not isinstance(geometry, dict):
        check.fail("geometry", "must be a Polygon or MultiPolygon geometry")
        return None
    kind = geometry.get("type")
    coordinates = geometry.get("coordinates")
    if kind not in ("Polygon", "MultiPolygon"):
        check.fail("geometry.type", f"must be Polygon or MultiPolygon, not {kind!r}")
        return None
    if not isinstance(coordinates, list) or not coordinates:
        check.fail("geometry.coordinates", "must be a non-empty list")
        return None
    return {"type": kind, "coordinates": coordinates}
