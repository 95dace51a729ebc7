"""Conversions between Python values and protobuf well-known types."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any, Protocol, TypeVar, cast

from google.protobuf import duration_pb2, field_mask_pb2, timestamp_pb2
from google.protobuf.internal.enum_type_wrapper import EnumTypeWrapper
from google.protobuf.message import Message

from govkit.errors import InvalidArgument

# A generated protobuf enum class, e.g. `tickets_pb2.TicketState`.
ProtoEnum = TypeVar("ProtoEnum", bound=int)


def enum_type(enum: type[ProtoEnum]) -> EnumTypeWrapper:
    """The enum's Name/Value/DESCRIPTOR side. protoc's stubs give it as the class's metaclass,
    which a type checker does not look through for `type[...]` parameters."""
    return cast(EnumTypeWrapper, enum)


def enum_value(enum: type[ProtoEnum], name: str) -> ProtoEnum:
    """`Enum.Value(name)` typed as the enum: the stubs say int, message fields want the enum."""
    return cast(ProtoEnum, enum_type(enum).Value(name))


def _stored_prefix(enum: EnumTypeWrapper) -> str:
    return enum.Name(0).removesuffix("UNSPECIFIED")


def stored_name(enum: EnumTypeWrapper, value: int, field: str, *, required: bool = True) -> str:
    """An enum value as the lower-case name the tables store (`TICKET_STATE_IN_PROGRESS` ->
    `in_progress`); unset ("" when not required) or unknown values are INVALID_ARGUMENT on field."""
    if value == 0:
        if required:
            raise InvalidArgument("is required", field=field)
        return ""
    try:
        return enum.Name(value).removeprefix(_stored_prefix(enum)).lower()
    except ValueError:
        raise InvalidArgument(f"unknown value {value}", field=field) from None


# (enum, stored name) -> value: converters look the same few names up for every row they convert.
_FROM_STORED: dict[tuple[object, str], Any] = {}


def from_stored_name(enum: type[ProtoEnum], name: str) -> ProtoEnum | None:
    """A stored lower-case name back as the enum value (`in_progress` -> `TICKET_STATE_IN_PROGRESS`);
    an empty name leaves the field unset (None)."""
    if not name:
        return None
    key = (enum, name)
    found = _FROM_STORED.get(key)
    if found is None:
        # An unknown name raises ValueError here, as before, and is not remembered.
        found = _FROM_STORED[key] = enum_value(enum, _stored_prefix(enum_type(enum)) + name.upper())
    return cast(ProtoEnum, found)


M = TypeVar("M", bound=Message)


def project(source: Message, target: type[M], **fields: Any) -> M:
    """A `target` message holding every field it shares by name with `source` (an event's facts
    from the resource they are about), then `fields` for the rest."""
    shared = source.DESCRIPTOR.fields_by_name
    copied: dict[str, Any] = {}
    for field in target.DESCRIPTOR.fields:
        name = field.name
        if name in fields or name not in shared:
            continue
        if field.message_type is not None and not field.is_repeated and not source.HasField(name):
            continue
        copied[name] = getattr(source, name)
    return target(**copied, **fields)


def duration(value: dt.timedelta) -> duration_pb2.Duration:
    out = duration_pb2.Duration()
    out.FromTimedelta(value)
    return out


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def timestamp(value: dt.datetime | None) -> timestamp_pb2.Timestamp | None:
    """An aware datetime as a Timestamp (a naive one is taken as UTC, as FromDatetime does); None
    stays unset.

    Integer arithmetic on the timedelta, not `Timestamp.FromDatetime`, which costs about eight
    times as much (~20 us): a list page of tickets converts some 200 of them. Same result,
    normalized like FromDatetime's (before 1970: negative seconds, nanos in [0, 1e9))."""
    if value is None:
        return None
    delta = (value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)) - _EPOCH
    return timestamp_pb2.Timestamp(
        seconds=delta.days * 86400 + delta.seconds, nanos=delta.microseconds * 1000
    )


def optional_time(message: Message, field: str) -> dt.datetime | None:
    """A Timestamp field as an aware UTC datetime, or None when the caller left it unset."""
    return getattr(message, field).ToDatetime(tzinfo=dt.UTC) if message.HasField(field) else None


def period(message: Message) -> tuple[dt.datetime | None, dt.datetime | None]:
    """The [start_time, end_time) of a request, either side open; INVALID_ARGUMENT if empty."""
    start, end = optional_time(message, "start_time"), optional_time(message, "end_time")
    if start is not None and end is not None and end <= start:
        raise InvalidArgument("must be after start_time", field="end_time")
    return start, end


class UpdateRequest(Protocol):
    """An AIP-134 Update request: any message with an `update_mask`."""

    @property
    def update_mask(self) -> field_mask_pb2.FieldMask: ...


def update_paths(request: UpdateRequest, allowed: Iterable[str]) -> list[str]:
    """The update_mask's paths (AIP-134): required, and each one a field that may change."""
    paths = list(request.update_mask.paths)
    if not paths:
        raise InvalidArgument("is required", field="update_mask")
    bad = sorted(set(paths) - set(allowed))
    if bad:
        raise InvalidArgument(f"cannot update {', '.join(bad)}", field="update_mask")
    return paths
