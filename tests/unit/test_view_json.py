"""View.json_of writes, byte for byte, what `of(message).model_dump_json()` writes, for every view the
gateway declares: the routes answer with the first, the OpenAPI document describes the second."""

from __future__ import annotations

import random
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any, cast

import pytest
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

import gateway.app  # noqa: F401  # declares every view
from gateway.rest import View

_STRINGS = [
    "units/u1",
    "tickets/T20261130-0001/timeline/7",
    "nodes/yuhu/wanlou/b3/staff/s1",
    "users/42",
    "张三 3栋2单元",
    '{"type":"Point","coordinates":[112.9,27.8]}',
    "",
]
_FLOATS = [27.843263, 0.1, 1e16, -0.0, 1234567.5, 1e-7]
_TIMES = [  # (seconds, nanos): fractions or none, before the epoch, the last second of year 9999
    (1_764_500_000, 123_456_789),
    (86_400, 0),
    (1_764_500_000, 500_000_000),
    (0, 999),
    (0, 1_000),
    (-315_619_200, 250_000),
    (253_402_300_799, 999_999_999),
]


def _views() -> Iterator[type[View]]:
    seen: set[type[View]] = set()
    stack = list(View.__subclasses__())
    while stack:
        view = stack.pop()
        if view not in seen:
            seen.add(view)
            stack.extend(view.__subclasses__())
    yield from sorted(seen, key=lambda v: f"{v.__module__}.{v.__qualname__}")


def _fill(message: Message, rng: random.Random, depth: int = 0) -> Message:
    """Every field set to a value its type allows, nested messages too (to depth 3)."""
    descriptor = cast(Descriptor, message.DESCRIPTOR)
    for fd in descriptor.fields:
        if fd.message_type is not None and fd.message_type.GetOptions().map_entry:
            getattr(message, fd.name).update({"k": rng.choice(_STRINGS), "b": "2"})
            continue
        count = rng.choice([0, 1, 2]) if fd.is_repeated else 1
        for _ in range(count):
            if fd.message_type is not None:
                if depth >= 3:
                    break
                target = getattr(message, fd.name).add() if fd.is_repeated else getattr(message, fd.name)
                if fd.message_type.full_name == "google.protobuf.Timestamp":
                    target.seconds, target.nanos = rng.choice(_TIMES)
                elif fd.message_type.full_name == "google.protobuf.Duration":
                    target.seconds, target.nanos = rng.choice([(90, 500_000_000), (3_600, 0)])
                else:
                    _fill(target, rng, depth + 1)
                continue
            value = _value(fd, rng)
            if fd.is_repeated:
                getattr(message, fd.name).append(value)
            else:
                setattr(message, fd.name, value)
    return message


def _value(fd: FieldDescriptor, rng: random.Random) -> Any:
    if fd.enum_type is not None:
        return rng.choice([v.number for v in fd.enum_type.values])
    if fd.type == FieldDescriptor.TYPE_BOOL:
        return rng.choice([True, False])
    if fd.type in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return rng.choice(_FLOATS)
    if fd.type == FieldDescriptor.TYPE_STRING:
        return rng.choice(_STRINGS)
    if fd.type == FieldDescriptor.TYPE_BYTES:
        return b"\x00x"
    return rng.choice([0, 7, 2**31 - 1])


def _expected(view: type[View], message: object) -> bytes | type[Exception]:
    try:
        return view.of(cast(Message, message)).model_dump_json().encode()
    except Exception as e:  # a converter that refuses this sample: json_of must refuse it too
        return type(e)


def _cases() -> Iterator[tuple[type[View], str]]:
    for view in _views():
        if view.message_type is not None or "items" in view.plain_readers:
            yield view, f"{view.__module__.removeprefix('gateway.')}.{view.__qualname__}"


CASES = list(_cases())


def test_the_gateway_declares_many_views_and_builds_all_of_them_plainly() -> None:
    assert len(CASES) > 60
    assert [name for view, name in CASES if not view.plain_complete] == []


@pytest.mark.parametrize("view", [v for v, _ in CASES], ids=[n for _, n in CASES])
def test_json_of_writes_what_the_model_writes(view: type[View]) -> None:
    rng = random.Random(view.__qualname__)
    compared = 0
    for attempt in range(25):
        if view.message_type is not None:
            message: object = view.message_type() if attempt == 0 else _fill(view.message_type(), rng)
        else:  # a page: any reply with the repeated field and a token
            item = cast(type[View], view.model_fields["items"].annotation.__args__[0])  # type: ignore[union-attr]
            assert item.message_type is not None
            items = [_fill(item.message_type(), rng) for _ in range(attempt % 3)]
            source = _page_source(view)
            message = SimpleNamespace(**{source: items, "next_page_token": rng.choice(["", "n"])})
        expected = _expected(view, message)
        if isinstance(expected, bytes):
            assert view.json_of(cast(Message, message)) == expected
            compared += 1
        else:  # a refusal either way (pydantic's ValidationError is a ValueError)
            with pytest.raises((expected, ValueError)):
                view.json_of(cast(Message, message))
    assert compared >= 5, "too few samples converted to compare"


def _page_source(view: type[View]) -> str:
    """The repeated field a page reads, found by asking its reader."""

    class Recorder(SimpleNamespace):
        asked = ""

        def __getattr__(self, name: str) -> list[object]:
            self.asked = name
            return []

    recorder = Recorder(next_page_token="")
    view.plain_readers["items"](cast(Message, recorder))
    return recorder.asked
