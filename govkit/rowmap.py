"""Database rows to protobuf messages, declared per message and compiled once.

`RowMap(pb.Node, models.Node, name=fmt("nodes/{path}"), parent="parent_path")` converts a row of
`models.Node` (an ORM instance or a Core row with the mapped attribute names) to a `pb.Node`. Each
message field takes the row attribute of the same name, as the field's type wants it: an enum from
the lower-case name the tables store (`govkit.protobuf.from_stored_name`: empty or None is unset), a
Timestamp from a datetime (`govkit.protobuf.timestamp`: None is unset), anything else as it is
(None is unset). A declaration per field says what differs:

    parent="parent_path"                     another attribute, converted as the field's type wants
    name=fmt("nodes/{block_path}/staff/{id}")   a resource name from attributes
    user=fmt("users/{user_id}", optional=True)  the same, or "" when an attribute is empty or None
    tags=computed(split_tags, "tags")           fn(*the attributes' values)
    secret=None                                 left unset
    household_ids=None                          ... or given per call: `STAFF(row, household_ids=[...])`

A row's attributes are read from its mapping (Core row) or `__dict__` (ORM instance) by key: SQLAlchemy
serves both through Python-level `__getattr__`/descriptors, which cost more than the conversion did.
"""

from __future__ import annotations

import dataclasses
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, Generic, Protocol, TypeVar, cast

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.internal.enum_type_wrapper import EnumTypeWrapper
from google.protobuf.message import Message
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.engine import Row
from sqlalchemy.orm import Mapper

from govkit import protobuf

M = TypeVar("M", bound=Message)


@dataclass(frozen=True)
class Computed:
    """A field computed from row attributes: `fn(*values)`."""

    fn: Callable[..., Any]
    attrs: tuple[str, ...]


def computed(fn: Callable[..., Any], *attrs: str) -> Computed:
    return Computed(fn, attrs)


def fmt(template: str, *, optional: bool = False) -> Computed:
    """A resource name from the attributes a `str.format` template names (`"units/{code}"`);
    `optional`: "" when any of them is empty or None, as a reference that is not set."""
    parts = list(string.Formatter().parse(template))
    attrs = tuple(name for _, name, _, _ in parts if name)
    positional = "".join(text + ("{}" if name else "") for text, name, _, _ in parts)
    if optional:
        return Computed(lambda *values: positional.format(*values) if all(values) else "", attrs)
    return Computed(positional.format, attrs)


# A field's declaration: another attribute's name, a computed value, or None (not from the row).
Declaration = str | Computed | None


class _Values(Protocol):
    def __getitem__(self, key: str, /) -> Any: ...


class _Attributes:
    """An object's attributes by key, for rows whose `__dict__` lacks some (a property, a column
    an unflushed instance has not set yet)."""

    __slots__ = ("_row",)

    def __init__(self, row: object) -> None:
        self._row = row

    def __getitem__(self, key: str) -> Any:
        return getattr(self._row, key)


class _StoredNames(dict[Any, Any]):
    """Stored lower-case name -> enum value, prefilled; other names (another case, unknown) go
    through `protobuf.from_stored_name`, which raises ValueError for an unknown one."""

    def __init__(self, enum: EnumTypeWrapper) -> None:
        prefix = enum.Name(0).removesuffix("UNSPECIFIED")
        super().__init__({"": None, None: None})
        self.update({name.removeprefix(prefix).lower(): number for name, number in enum.items() if number})
        self._enum = cast(type[int], enum)

    def __missing__(self, name: str) -> Any:
        return protobuf.from_stored_name(self._enum, name)


def _mapped(source: type) -> bool:
    return sa_inspect(source, raiseerr=False) is not None


def _attributes(source: type) -> frozenset[str]:
    if _mapped(source):
        mapper: Mapper[Any] = sa_inspect(source)
        return frozenset(mapper.column_attrs.keys())
    # A dataclass's fields without a default are no class attributes.
    fields = {f.name for f in dataclasses.fields(source)} if dataclasses.is_dataclass(source) else set()
    return frozenset(name for name in {*dir(source), *fields} if not name.startswith("_"))


def _by_type(field: FieldDescriptor) -> Callable[[Any], Any] | None:
    """How a row value becomes this field's value, None when it is taken as it is."""
    if field.enum_type is not None and not field.is_repeated:
        return _StoredNames(EnumTypeWrapper(field.enum_type)).__getitem__
    if field.message_type is not None and field.message_type.full_name == "google.protobuf.Timestamp":
        return protobuf.timestamp
    if field.message_type is not None or field.is_repeated:
        raise TypeError(f"{field.full_name}: declare how a row gives this field (computed)")
    return None


def _star(fn: Callable[..., Any]) -> Callable[[Sequence[Any]], Any]:
    return lambda values: fn(*values)


class RowMap(Generic[M]):
    """The conversion of `source` rows to `message`, planned once from the message's descriptor."""

    def __init__(self, message: type[M], source: type, **fields: Declaration) -> None:
        known = _attributes(source)
        descriptor = message.DESCRIPTOR
        unknown = set(fields) - set(descriptor.fields_by_name)
        if unknown:
            raise TypeError(f"{descriptor.full_name} has no field {', '.join(sorted(unknown))}")
        named = {a for d in fields.values() if d for a in (d.attrs if isinstance(d, Computed) else (d,))}
        if named - known:
            raise TypeError(f"{source.__name__} has no attribute {', '.join(sorted(named - known))}")
        copied: list[tuple[str, str]] = []
        # (field, getter, transform): itemgetters, and transforms that are C calls but for computed fields.
        self._plan: list[tuple[str, Callable[[_Values], Any], Callable[[Any], Any]]] = []
        for field in cast(Sequence[FieldDescriptor], descriptor.fields):
            declared = fields.get(field.name, field.name if field.name in known else None)
            if declared is None:
                continue
            if isinstance(declared, Computed):
                getter = itemgetter(*declared.attrs)
                one = len(declared.attrs) == 1
                self._plan.append((field.name, getter, declared.fn if one else _star(declared.fn)))
                continue
            transform = _by_type(field)
            if transform is None:
                copied.append((field.name, declared))
            else:
                self._plan.append((field.name, itemgetter(declared), transform))
        self._message = message
        self._copied = tuple(f for f, _ in copied)
        attrs = [a for _, a in copied]
        self._copy: Callable[[_Values], Sequence[Any]] = (
            itemgetter(*attrs) if len(attrs) > 1 else (lambda values: tuple(values[a] for a in attrs))
        )
        # Mapped classes' rows are read by key; other sources (dataclasses, properties) by getattr.
        self._by_key = _mapped(source)

    def __call__(self, row: object, /, **given: Any) -> M:
        """The message for `row`; `given` sets fields the row does not hold (or overrides them)."""
        if not self._by_key:
            return self._build(_Attributes(row), given)
        values = row._mapping if isinstance(row, Row) else getattr(row, "__dict__", None)
        if values is None:  # a row without a __dict__ (a named tuple, slots): by attribute
            return self._build(_Attributes(row), given)
        try:
            return self._build(values, given)
        except KeyError:
            return self._build(_Attributes(row), given)

    def _build(self, values: _Values, given: dict[str, Any]) -> M:
        out = dict(zip(self._copied, self._copy(values), strict=True))
        for field, getter, transform in self._plan:
            out[field] = transform(getter(values))
        if given:
            out.update(given)
        return self._message(**out)
