"""JSON enums generated from protobuf enums: lower-case value names without the enum's prefix.

    class TicketStateName(ProtoEnum, proto=pb.TicketState): ...

makes `TICKET_STATE_IN_PROGRESS` the member `in_progress`; the zero (`_UNSPECIFIED`) value has no JSON
name and reads as null. A name that is a Python keyword gets a trailing underscore as its member name
(`return_`), keeping `return` as its value. The classes are real types (for annotations and mypy).
"""

from __future__ import annotations

import keyword
from collections.abc import Iterable
from enum import EnumType, StrEnum
from typing import Any, ClassVar, TypeVar

from google.protobuf.descriptor import EnumDescriptor
from google.protobuf.internal.enum_type_wrapper import EnumTypeWrapper

E = TypeVar("E", bound=StrEnum)

# The JSON enums declared for a protobuf enum, by (module, enum full name): a view's enum field shows
# the one its own module declared, else the first declared anywhere.
_BY_PROTO: dict[tuple[str, str], type[ProtoEnum]] = {}
_FIRST: dict[str, type[ProtoEnum]] = {}


def prefix_of(enum: EnumDescriptor) -> str:
    """The value-name prefix, read off the zero value: `TICKET_STATE_UNSPECIFIED` -> `TICKET_STATE`."""
    return enum.values_by_number[0].name.removesuffix("_UNSPECIFIED")


def json_name(enum: EnumDescriptor, number: int) -> str | None:
    """The JSON name of a value; None for the zero value and for numbers newer than this gateway."""
    value = enum.values_by_number.get(number)
    if value is None or number == 0:
        return None
    return value.name.removeprefix(f"{prefix_of(enum)}_").lower()


def proto_number(enum: EnumDescriptor, name: str) -> int:
    return int(enum.values_by_name[f"{prefix_of(enum)}_{name.upper()}"].number)


class _ProtoEnumType(EnumType):
    """Fills the class namespace with the proto enum's values before the Enum machinery sees it."""

    @classmethod
    def __prepare__(  # type: ignore[override]  # takes the class keywords proto and exclude
        metacls,
        cls: str,
        bases: tuple[type, ...],
        *,
        proto: EnumTypeWrapper | None = None,
        exclude: Iterable[str] = (),
        **kwargs: Any,
    ) -> Any:
        namespace = super().__prepare__(cls, bases, **kwargs)
        if proto is not None:
            skip = set(exclude)
            for value in proto.DESCRIPTOR.values:
                name = json_name(proto.DESCRIPTOR, value.number)
                if name is not None and name not in skip:
                    namespace[f"{name}_" if keyword.iskeyword(name) else name] = name
        return namespace

    def __new__(
        metacls,
        cls: str,
        bases: tuple[type, ...],
        namespace: Any,
        *,
        proto: EnumTypeWrapper | None = None,
        exclude: Iterable[str] = (),
        **kwargs: Any,
    ) -> _ProtoEnumType:
        enum = super().__new__(metacls, cls, bases, namespace, **kwargs)
        if proto is not None:
            enum.proto = proto  # type: ignore[attr-defined]  # ProtoEnum.proto, set per subclass
            full_name = proto.DESCRIPTOR.full_name
            _BY_PROTO.setdefault((namespace["__module__"], full_name), enum)  # type: ignore[arg-type]
            _FIRST.setdefault(full_name, enum)  # type: ignore[arg-type]  # a ProtoEnum
        return enum


class ProtoEnum(StrEnum, metaclass=_ProtoEnumType):
    """Base of the JSON enums; a subclass names its protobuf enum with `proto=` (and may `exclude=`)."""

    proto: ClassVar[EnumTypeWrapper]

    def to_pb(self) -> int:
        return proto_number(self.proto.DESCRIPTOR, str(self))

    @classmethod
    def from_pb(cls: type[E], value: int) -> E | None:
        """The member for a protobuf value; None when unspecified, newer than the gateway, or left out."""
        return _members_by_number(cls).get(value)


def _members_by_number(cls: type[E]) -> dict[int, E]:
    """Protobuf number -> member of a JSON enum, made on first use: a page converts thousands."""
    table: dict[int, E] | None = cls.__dict__.get("_by_number")
    if table is None:
        enum = cls.proto.DESCRIPTOR  # type: ignore[attr-defined]  # a ProtoEnum
        members = cls._value2member_map_
        table = {}
        for value in enum.values:
            name = json_name(enum, value.number)
            if name is not None and name in members:
                table[value.number] = members[name]  # type: ignore[assignment]  # a member of cls
        type.__setattr__(cls, "_by_number", table)
    return table


def json_values(cls: type[ProtoEnum]) -> dict[int, str]:
    """Protobuf number -> the member's JSON value: what a view writes, without the member."""
    return {number: str(member) for number, member in _members_by_number(cls).items()}  # StrEnum: its value


def json_enum_of(module: str, enum: EnumDescriptor) -> type[ProtoEnum]:
    found = _BY_PROTO.get((module, enum.full_name)) or _FIRST.get(enum.full_name)
    if found is None:
        raise LookupError(f"no JSON enum declared for {enum.full_name}")
    return found


def proto_enums(*classes: type[ProtoEnum]) -> dict[type[StrEnum], tuple[EnumTypeWrapper, str]]:
    """JSON enum -> (protobuf enum, value-name prefix), the table tests check against the proto."""
    return {cls: (cls.proto, prefix_of(cls.proto.DESCRIPTOR)) for cls in classes}


def to_pb(value: StrEnum | None) -> Any:
    """The protobuf number of a JSON enum member; 0 for None. Any, not int: message fields are typed by
    their protobuf enum, and which one depends on the member's class."""
    if value is None:
        return 0
    if not isinstance(value, ProtoEnum):
        raise TypeError(f"{type(value).__name__} is not a ProtoEnum")
    return value.to_pb()


def from_pb(cls: type[E], value: int) -> E | None:
    """The JSON member of a protobuf number; None when unspecified (or newer than the gateway)."""
    return cls.from_pb(value)  # type: ignore[attr-defined]  # cls is a ProtoEnum
