"""Response views: pydantic models whose fields are typed from a message descriptor.

    class Unit(View, message=pb.Unit, fields={"code": None, "name": "Resource name, `units/{code}`"}): ...

A view lists its JSON fields in order, each with its description (or an `Out`). Each reads the
same-named proto field unless it names another (`Out("display_name")`); a JSON name `x_seconds` reads
the Duration `x`. Types follow the descriptor: strings, numbers and booleans as they are, enums as their
JSON enum (null when unspecified), Timestamps as RFC 3339 times (null when unset), Durations as seconds
(null when unset), maps as objects, nested messages as their own view (null when unset or empty, if
the declaration says `nullable`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from operator import attrgetter
from typing import TYPE_CHECKING, Any, ClassVar, Self, get_args

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from pydantic import BaseModel, Field
from pydantic._internal._model_construction import ModelMetaclass
from pydantic_core import to_json

from gateway.rest.enums import json_enum_of, json_values
from gateway.rest.fields import descriptor_of, enum_type, message_type

Reader = Callable[[Message], object]

_TIMESTAMP = "google.protobuf.Timestamp"
_DURATION = "google.protobuf.Duration"
_INTEGERS = {
    FieldDescriptor.TYPE_INT32,
    FieldDescriptor.TYPE_INT64,
    FieldDescriptor.TYPE_UINT32,
    FieldDescriptor.TYPE_UINT64,
    FieldDescriptor.TYPE_SINT32,
    FieldDescriptor.TYPE_SINT64,
    FieldDescriptor.TYPE_FIXED32,
    FieldDescriptor.TYPE_FIXED64,
    FieldDescriptor.TYPE_SFIXED32,
    FieldDescriptor.TYPE_SFIXED64,
}
_FLOATS = {FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT}


@dataclass(frozen=True)
class Out:
    """One JSON field of a view; every part optional."""

    source: str | None = None
    """The proto field it reads; default the JSON name."""
    description: str | None = None
    convert: Callable[[Any], object] | None = None
    """Applied to the proto value (to each item of a repeated field): shortens names, parses JSON."""
    annotation: object = None
    """The JSON type when `convert` or `compute` changes it."""
    nullable: bool = False
    """An empty string, a zero or an empty message reads as null."""
    compute: Callable[[Any], object] | None = None
    """Reads the whole message instead of one field (then `annotation` is required)."""


Spec = Out | str | None
"""A declaration: an `Out`, a description alone, or None for the plain field."""


class _ViewType(ModelMetaclass):
    """Adds the declared fields, typed from the descriptor, before pydantic builds the model."""

    def __new__(
        mcs,
        name: str,
        bases: tuple[type[Any], ...],
        namespace: dict[str, Any],
        *,
        message: type[Message] | None = None,
        fields: Mapping[str, Spec] | None = None,
        item: type[View] | None = None,
        source: str | None = None,
        **kwargs: Any,
    ) -> type:
        readers: dict[str, Reader] = {}
        plain_readers: dict[str, Reader] = {}
        annotations: dict[str, Any] = {}
        module: str = namespace["__module__"]
        if message is not None:
            descriptor = descriptor_of(message)
            for field_name, spec in (fields or {}).items():
                out = spec if isinstance(spec, Out) else Out(description=spec)
                annotations[field_name], readers[field_name] = _field(module, descriptor, field_name, out)
                plain_readers[field_name] = _field(module, descriptor, field_name, out, plain=True)[1]
                namespace[field_name] = Field(description=out.description)
        elif item is not None and source is not None:
            annotations = {"items": list[item], "next_page_token": str}  # type: ignore[valid-type]
            namespace.setdefault("next_page_token", "")  # a page may describe it (Field)
            token: Reader = lambda m: getattr(m, "next_page_token")  # noqa: B009, E731  # any list reply
            readers = {"items": lambda m: list(map(item.of, getattr(m, source))), "next_page_token": token}
            plain_readers = {
                "items": lambda m: list(map(item.plain, getattr(m, source))),
                "next_page_token": token,
            }
        namespace["__annotations__"] = {**annotations, **namespace.get("__annotations__", {})}
        cls = super().__new__(mcs, name, bases, namespace, **kwargs)
        if readers:
            cls.readers = readers  # type: ignore[attr-defined]  # View.readers
            cls.plain_readers = plain_readers  # type: ignore[attr-defined]  # View.plain_readers
        # The plain path gives the model's JSON only when the readers fill every field, in its order.
        cls.plain_complete = list(cls.model_fields) == list(cls.plain_readers)  # type: ignore[attr-defined]
        if message is not None:
            cls.message_type = message  # type: ignore[attr-defined]  # View.message_type
            full_name = message.DESCRIPTOR.full_name
            _VIEWS.setdefault((namespace["__module__"], full_name), cls)
            _FIRST_VIEWS.setdefault(full_name, cls)
        return cls


class View(BaseModel, metaclass=_ViewType):
    """A response shape declared over a message:

        class Unit(View, message=pb.Unit, fields={"code": None, "name": "Resource name, `units/{code}`"}):
            ...

    `of` converts the message. A list response is `class UnitPage(View, item=Unit, source="units")`:
    `items` read from the repeated field `source`, and `next_page_token`.
    """

    readers: ClassVar[dict[str, Reader]] = {}
    plain_readers: ClassVar[dict[str, Reader]] = {}
    """The same fields as the values their JSON shows: nested views as dicts, enums as their JSON
    values, times as RFC 3339 text; no model built."""
    plain_complete: ClassVar[bool] = False
    message_type: ClassVar[type[Message] | None] = None
    """The message the view reads (None for a page and for a view declared without one)."""

    def __init_subclass__(
        cls,
        *,
        message: type[Message] | None = None,
        fields: Mapping[str, Spec] | None = None,
        item: type[View] | None = None,
        source: str | None = None,
        **kwargs: Any,
    ) -> None:
        # The declaration keywords are the metaclass's; only pydantic's own go on.
        super().__init_subclass__(**kwargs)

    @classmethod
    def of(cls, message: Message, **overrides: object) -> Self:
        """The JSON shape of `message`; `overrides` give fields the message does not carry."""
        if not overrides:  # a list page's items, and most replies: no test per field
            return cls(**{name: read(message) for name, read in cls.readers.items()})
        values = {name: read(message) for name, read in cls.readers.items() if name not in overrides}
        return cls(**values, **overrides)

    @classmethod
    def plain(cls, message: Message) -> dict[str, object]:
        """What the view's JSON shows, as plain values (see `plain_readers`)."""
        return {name: read(message) for name, read in cls.plain_readers.items()}

    @classmethod
    def json_of(cls, message: Message) -> bytes:
        """`of(message).model_dump_json()`, byte for byte, without building the models: the plain
        readers give each field's JSON value, and pydantic's own serializer writes them as the
        model's would (tests/unit/test_view_json.py checks every view). A page of tickets is 20
        views with several nested ones each; building and validating them cost more than reading
        the messages (bench/README.md, sixth pass)."""
        if not cls.plain_complete:
            return cls.of(message).model_dump_json().encode()
        return to_json(cls.plain(message))

    if TYPE_CHECKING:
        # The fields come from the declaration, which a type checker does not run.
        def __getattr__(self, name: str) -> Any: ...


# The views declared for a message type, by (module, message full name): a nested field of that type
# shows the view its own module declared, else the first declared anywhere.
_VIEWS: dict[tuple[str, str], type[View]] = {}
_FIRST_VIEWS: dict[str, type[View]] = {}


def _nested_view(module: str, full_name: str) -> type[View]:
    found = _VIEWS.get((module, full_name)) or _FIRST_VIEWS.get(full_name)
    if found is None:
        raise LookupError(f"no view declared for {full_name}; declare it before the views that nest it")
    return found


def _field(
    module: str, descriptor: Descriptor, name: str, out: Out, *, plain: bool = False
) -> tuple[object, Reader]:
    """The field's JSON type and reader. `plain`: a nested view reads as its dict (View.plain) rather
    than its model, and a declared type that excludes null is checked here, as the model would."""
    annotation, read = _reader(module, descriptor, name, out, plain)
    if not plain or out.annotation is None or _admits_none(annotation):
        return annotation, read
    where = f"{descriptor.name}.{name}"

    def checked(m: Message) -> object:
        value = read(m)
        if value is None:
            raise ValueError(f"{where}: null where the view's type has none")
        return value

    return annotation, checked


def _admits_none(annotation: object) -> bool:
    return annotation is None or annotation is type(None) or type(None) in get_args(annotation)


def _reader(module: str, descriptor: Descriptor, name: str, out: Out, plain: bool) -> tuple[object, Reader]:
    # The readers run for every field of every item of a page: each is built here as the least
    # work its declaration needs (a C-level attrgetter for a plain field).
    if out.compute is not None:
        if out.annotation is None:
            raise TypeError(f"{descriptor.name}.{name}: a computed field needs its annotation")
        return out.annotation, out.compute
    source = out.source or name
    if source not in descriptor.fields_by_name and name.endswith("_seconds"):
        source = name.removesuffix("_seconds")
    fd = descriptor.fields_by_name[source]
    get = attrgetter(source)
    if _is_map(fd):
        return dict[str, str], lambda m: dict(get(m))
    item_type, read_one = _scalar(module, fd, out, plain)
    if fd.is_repeated:
        if out.annotation is not None:
            item_type = out.annotation
        if read_one is None:  # plain values, never None
            return list[item_type], lambda m: list(get(m))  # type: ignore[valid-type]  # from the descriptor
        one = read_one
        return list[item_type], lambda m: [  # type: ignore[valid-type]  # a type from the descriptor
            v for v in map(one, get(m)) if v is not None
        ]
    if fd.type == FieldDescriptor.TYPE_MESSAGE:
        return _message(module, fd, source, out, plain)
    if out.annotation is not None:
        item_type = out.annotation
    elif out.nullable:
        item_type = item_type | None
    if read_one is None:
        if not out.nullable:
            return item_type, get
        return item_type, lambda m: get(m) or None
    one = read_one
    if not out.nullable:
        return item_type, lambda m: one(get(m))

    def read(m: Message) -> object:
        value = one(get(m))
        return value or None

    return item_type, read


def _scalar(
    module: str, fd: FieldDescriptor, out: Out, plain: bool
) -> tuple[Any, Callable[[Any], object] | None]:
    """The JSON type of one value of the field and its reader (before `nullable`); None for a value
    shown as it is."""
    convert = out.convert
    # `plain` readers give what the JSON shows, as str, int, float, bool, None, lists and dicts:
    # pydantic's serializer writes those several times faster than enum members and datetimes.
    if fd.type == FieldDescriptor.TYPE_ENUM:
        cls = json_enum_of(module, enum_type(fd))
        return (cls | None) if not fd.is_repeated else cls, json_values(cls).get if plain else cls.from_pb
    if fd.type == FieldDescriptor.TYPE_MESSAGE:
        full = message_type(fd).full_name
        if full == _TIMESTAMP:
            return dt.datetime | None, _time_text if plain else _time
        if full == _DURATION:
            return float | None, lambda d: d.seconds + d.nanos / 1e9
        nested = _nested_view(module, full)
        return nested, nested.plain if plain else nested.of
    if fd.type in _INTEGERS:
        return int, convert
    if fd.type in _FLOATS:
        return float, convert
    if fd.type == FieldDescriptor.TYPE_BOOL:
        return bool, convert
    return str, convert


def _message(module: str, fd: FieldDescriptor, source: str, out: Out, plain: bool) -> tuple[object, Reader]:
    annotation, read_one = _scalar(module, fd, out, plain)
    assert read_one is not None  # a message always has its reader
    one = read_one
    get = attrgetter(source)
    full = message_type(fd).full_name
    if full in (_TIMESTAMP, _DURATION):
        # Unset reads as null, as proto3 JSON leaves it out.
        return annotation, lambda m: one(get(m)) if m.HasField(source) else None
    if not out.nullable:
        return annotation, lambda m: one(get(m))

    def read(m: Message) -> object:
        value = get(m)
        return one(value) if m.HasField(source) and value.ByteSize() else None

    return annotation | None, read


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _time(value: Message) -> dt.datetime | None:
    """What `Timestamp.ToDatetime(tzinfo=UTC)` gives (nanoseconds cut to microseconds), in a third
    of its time; None for the zero time."""
    seconds, nanos = getattr(value, "seconds", 0), getattr(value, "nanos", 0)
    if not seconds and not nanos:
        return None
    return _EPOCH + dt.timedelta(seconds=seconds, microseconds=nanos // 1000)


_NAIVE_EPOCH = dt.datetime(1970, 1, 1)


def _time_text(value: Message) -> str | None:
    """The JSON of `_time(value)` as pydantic writes an aware UTC datetime: RFC 3339 with `Z`, the
    microseconds only when there are some."""
    seconds, nanos = getattr(value, "seconds", 0), getattr(value, "nanos", 0)
    if not seconds and not nanos:
        return None
    return (_NAIVE_EPOCH + dt.timedelta(seconds=seconds, microseconds=nanos // 1000)).isoformat() + "Z"


def _is_map(fd: FieldDescriptor) -> bool:
    return fd.type == FieldDescriptor.TYPE_MESSAGE and message_type(fd).GetOptions().map_entry
