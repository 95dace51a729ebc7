"""Typed extra attributes: a category defines them, a reporter fills them in.

Definitions and values are stored as JSON; the types are Open311 GeoReport v2's, so a
category is also an Open311 service definition.
"""

from __future__ import annotations

import datetime as dt
import decimal
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from govkit.errors import InvalidArgument

TYPES = ("string", "number", "datetime", "text", "single_value_list", "multi_value_list")
LIST_TYPES = ("single_value_list", "multi_value_list")
MAX_ATTRIBUTES = 30
MAX_OPTIONS = 100
_CODE = re.compile(r"^[a-z0-9][a-z0-9_]{0,39}$")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass(frozen=True)
class Definition:
    code: str
    display_name: str
    type: str
    required: bool = False
    description: str = ""
    options: tuple[tuple[str, str], ...] = field(default_factory=tuple)  # (key, display name)

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        data["options"] = [list(o) for o in self.options]
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Definition:
        options = tuple((str(k), str(n)) for k, n in data.get("options", ()))
        return cls(
            code=str(data["code"]),
            display_name=str(data["display_name"]),
            type=str(data["type"]),
            required=bool(data.get("required", False)),
            description=str(data.get("description", "")),
            options=options,
        )


def check_definitions(definitions: Sequence[Definition], field_name: str = "category.attributes") -> None:
    if len(definitions) > MAX_ATTRIBUTES:
        raise InvalidArgument(f"at most {MAX_ATTRIBUTES} attributes", field=field_name)
    seen: set[str] = set()
    for i, d in enumerate(definitions):
        where = f"{field_name}[{i}]"
        if not _CODE.match(d.code):
            raise InvalidArgument("code: 1-40 of a-z, 0-9 and '_'", field=f"{where}.code")
        if d.code in seen:
            raise InvalidArgument(f"code {d.code!r} appears twice", field=f"{where}.code")
        seen.add(d.code)
        if not d.display_name.strip() or len(d.display_name) > 64:
            raise InvalidArgument("is required (at most 64 characters)", field=f"{where}.display_name")
        if d.type not in TYPES:
            raise InvalidArgument("is required", field=f"{where}.type")
        if d.type in LIST_TYPES:
            if not d.options:
                raise InvalidArgument("a list attribute needs options", field=f"{where}.options")
            if len(d.options) > MAX_OPTIONS:
                raise InvalidArgument(f"at most {MAX_OPTIONS} options", field=f"{where}.options")
            keys = [k for k, _ in d.options]
            if len(set(keys)) != len(keys) or not all(k.strip() and len(k) <= 40 for k, _ in d.options):
                raise InvalidArgument("option keys are unique, 1-40 characters", field=f"{where}.options")
        elif d.options:
            raise InvalidArgument("only list attributes have options", field=f"{where}.options")


def _check_value(d: Definition, value: str, where: str) -> str:
    if _CONTROL.search(value):
        raise InvalidArgument("must not contain control characters", field=where)
    if d.type == "string":
        value = value.strip()
        if len(value) > 200 or "\n" in value:
            raise InvalidArgument("one line of at most 200 characters", field=where)
    elif d.type == "text":
        if len(value) > 2000:
            raise InvalidArgument("at most 2,000 characters", field=where)
    elif d.type == "number":
        try:
            number = decimal.Decimal(value.strip())
        except decimal.InvalidOperation:
            raise InvalidArgument("must be a number", field=where) from None
        if not number.is_finite():
            raise InvalidArgument("must be a finite number", field=where)
        value = value.strip()
    elif d.type == "datetime":
        try:
            parsed = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            raise InvalidArgument("must be an RFC 3339 date-time", field=where) from None
        if parsed.tzinfo is None:
            raise InvalidArgument("must carry a timezone offset (e.g. +08:00)", field=where)
        value = parsed.isoformat()
    elif value not in {k for k, _ in d.options}:
        raise InvalidArgument(f"{value!r} is not one of the options", field=where)
    return value


def check_values(
    definitions: Sequence[Definition], values: Iterable[tuple[str, Sequence[str]]]
) -> dict[str, list[str]]:
    """The reporter's values, checked against the definitions and normalised."""
    by_code = {d.code: d for d in definitions}
    result: dict[str, list[str]] = {}
    for code, given in values:
        where = f"ticket.attributes.{code}"
        d = by_code.get(code)
        if d is None:
            raise InvalidArgument("this category has no such attribute", field=where)
        if code in result:
            raise InvalidArgument("appears twice", field=where)
        cleaned = [v for v in given if v.strip()]
        if not cleaned:
            continue
        if d.type != "multi_value_list" and len(cleaned) > 1:
            raise InvalidArgument("takes one value", field=where)
        if len(set(cleaned)) != len(cleaned):
            raise InvalidArgument("a value appears twice", field=where)
        result[code] = [_check_value(d, v, where) for v in cleaned]
    for d in definitions:
        if d.required and d.code not in result:
            raise InvalidArgument(f"is required ({d.display_name})", field=f"ticket.attributes.{d.code}")
    return result
