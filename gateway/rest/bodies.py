"""Request bodies: pydantic models whose fields are written into protobuf messages by the descriptor.

A body field goes to the same-named proto field unless marked `Proto("other")`; `x_seconds` goes to the
Duration `x`. Enums become their proto numbers, times Timestamps, seconds Durations, dates ISO strings,
nested bodies nested messages; a field marked `Named("units")` (on its type, so lists of them too)
holds a short reference that the message keeps as a resource name. A None is left unset.
"""

from __future__ import annotations

import datetime as dt
import types
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, ClassVar, TypeVar, Union, get_args, get_origin, get_type_hints

from google.protobuf import duration_pb2, field_mask_pb2, timestamp_pb2
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from pydantic import BaseModel, create_model
from pydantic.fields import FieldInfo

from gateway.problems import Problem
from gateway.rest.enums import proto_number
from gateway.rest.fields import enum_type, fields_of

M = TypeVar("M", bound=Message)


@dataclass(frozen=True)
class Proto:
    """Where a body field goes when not to the same-named proto field, and how it is encoded."""

    field: str | None = None
    encode: Callable[[Any], object] | None = None


@dataclass(frozen=True)
class Named:
    """A short reference kept in the message as a resource name: `wanlou-rapid` -> `units/wanlou-rapid`."""

    collection: str


_K = TypeVar("_K", bound=Proto | Named)


class Body(BaseModel):
    """A request body that converts itself into a protobuf message."""

    clearable: ClassVar[frozenset[str]] = frozenset()
    """PATCH: the fields `null` may clear; null for any other is a 400."""

    def to_pb(self, message_type: type[M], *, skip: Iterable[str] = (), **fixed: Any) -> M:
        """A new message with `fixed` fields (from the URL) and every field of the body but `skip`."""
        message = message_type(**fixed)
        self.fill(message, [n for n in type(self).model_fields if n not in set(skip)])
        return message

    def patch(self, message_type: type[M], **fixed: Any) -> tuple[M, field_mask_pb2.FieldMask]:
        """A message with the fields present in the body, and the update mask naming them."""
        present = self.model_fields_set
        if not present:
            raise Problem(400, "name at least one field to change", slug="invalid-argument")
        for name in sorted(present - self.clearable):
            if getattr(self, name) is None:
                raise Problem(400, f"{name} cannot be null", slug="invalid-argument")
        message = message_type(**fixed)
        self.fill(message, present)
        fields = fields_of(message)
        paths = sorted(_target(fields, name, self._marker(name, Proto)) for name in present)
        return message, field_mask_pb2.FieldMask(paths=paths)

    def fill(self, message: Message, names: Iterable[str]) -> None:
        """Writes the named body fields into `message`; a subclass adds what no single field says."""
        fields = fields_of(message)
        for name in names:
            value = getattr(self, name)
            if value is None:
                continue
            proto = self._marker(name, Proto)
            fd = fields[_target(fields, name, proto)]
            if proto is not None and proto.encode is not None:
                setattr(message, fd.name, proto.encode(value))
                continue
            named = self._marker(name, Named)
            if fd.is_repeated:
                target = getattr(message, fd.name)
                for item in value:
                    if fd.type == FieldDescriptor.TYPE_MESSAGE:
                        _write_message(target.add(), item, name)
                    else:
                        target.append(encode(fd, item, named, name))
            elif fd.type == FieldDescriptor.TYPE_MESSAGE:
                _write_message(getattr(message, fd.name), value, name)
            else:
                setattr(message, fd.name, encode(fd, value, named, name))

    def _marker(self, name: str, kind: type[_K]) -> _K | None:
        info: FieldInfo = type(self).model_fields[name]
        return _find(kind, [*info.metadata, info.annotation])


def patch_of(
    new: type[Body],
    name: str,
    *,
    fixed: Iterable[str] = (),
    extra: Mapping[str, Any] | None = None,
    doc: str | None = None,
    clearable: Iterable[str] = (),
) -> type[Body]:
    """The PATCH body of a resource: the fields of its create body `new` but the `fixed` ones (set once),
    each optional with its type and limits (absent: unchanged), then the `extra` ones (optional too);
    `null` may clear the `clearable` ones."""
    hints = get_type_hints(new, include_extras=True)
    keep = [field for field in new.model_fields if field not in set(fixed)]
    fields: dict[str, Any] = {}
    for field in keep:
        annotation = hints[field]
        optional = type(None) in get_args(new.model_fields[field].annotation)
        fields[field] = (annotation if optional else annotation | None, None)
    for field, annotation in (extra or {}).items():
        fields[field] = (annotation | None, None)
    model: type[Body] = create_model(name, __base__=Body, __module__=new.__module__, __doc__=doc, **fields)
    model.clearable = frozenset(clearable)
    return model


def _find(kind: type[_K], places: list[Any]) -> _K | None:
    """The first `kind` marker in these metadata items and annotations (through Optional, list, Annotated)."""
    for place in places:
        if isinstance(place, kind):
            return place
        if get_origin(place) in (Annotated, Union, types.UnionType, list):
            inner: list[Any] = [*get_args(place), *getattr(place, "__metadata__", ())]
            found = _find(kind, inner)
            if found is not None:
                return found
    return None


def _target(fields: Mapping[str, FieldDescriptor], name: str, proto: Proto | None) -> str:
    if proto is not None and proto.field:
        return proto.field
    if name not in fields and name.endswith("_seconds"):
        return name.removesuffix("_seconds")
    return name


def _write_message(target: Message, value: object, name: str) -> None:
    full = target.DESCRIPTOR.full_name
    if isinstance(value, Body):
        target.SetInParent()
        value.fill(target, type(value).model_fields)
    elif full == "google.protobuf.Timestamp" and isinstance(value, dt.datetime):
        target.CopyFrom(timestamp(value, name))
    elif full == "google.protobuf.Duration" and isinstance(value, int | float):
        target.CopyFrom(duration(float(value)))
    else:
        raise TypeError(f"{name}: cannot write {type(value).__name__} into {full}")


def encode(fd: FieldDescriptor, value: object, named: Named | None, name: str) -> object:
    if isinstance(value, StrEnum) and fd.type == FieldDescriptor.TYPE_ENUM:
        return proto_number(enum_type(fd), value.value)
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value.isoformat()
    if named is not None and isinstance(value, str):
        return f"{named.collection}/{value}" if value else ""
    return value


def timestamp(value: dt.datetime, field: str) -> timestamp_pb2.Timestamp:
    """A datetime (naive means UTC) -> Timestamp; out of range is a 400 naming the field."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    out = timestamp_pb2.Timestamp()
    try:
        out.FromDatetime(value)
    except (ValueError, OverflowError):
        raise Problem(400, f"{field}: out of range", slug="invalid-argument") from None
    return out


def duration(seconds: float) -> duration_pb2.Duration:
    out = duration_pb2.Duration()
    out.FromNanoseconds(round(seconds * 1e9))
    return out
