"""JSON enums (lowercase names such as `in_progress`) and the protobuf enums they stand for."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, TypeVar

from google.protobuf.internal.enum_type_wrapper import EnumTypeWrapper

E = TypeVar("E", bound=StrEnum)


class ProtoEnums:
    """Converts registered JSON enums to protobuf values and back, by the value-name prefix."""

    def __init__(self, pairs: dict[type[StrEnum], tuple[EnumTypeWrapper, str]]) -> None:
        self.pairs = pairs

    def to_pb(self, value: StrEnum | None) -> Any:
        """The protobuf enum value (0 for None). Any, not int: which protobuf enum it belongs to
        depends on the table entry for the value's class, and message fields are typed by enum."""
        if value is None:
            return 0
        enum, prefix = self.pairs[type(value)]
        return enum.Value(f"{prefix}_{value.value.upper()}")

    def from_pb(self, cls: type[E], value: int) -> E | None:
        """The JSON name of a protobuf value; None when unspecified (or newer than the gateway)."""
        enum, prefix = self.pairs[cls]
        if value == 0:
            return None
        try:
            return cls(enum.Name(value).removeprefix(f"{prefix}_").lower())
        except ValueError:
            return None
