"""Page tokens are client input: every forged one is INVALID_ARGUMENT on page_token, never a crash."""

from __future__ import annotations

import base64
import datetime as dt
import json

import pytest

from govkit import pagination
from govkit.errors import InvalidArgument

FP = pagination.fingerprint("users/1", "yuhu")
ISSUED = {"t": "2026-11-23T08:30:00.123456+00:00", "id": "3f2b9c1e-0000-4000-8000-000000000001"}


def forge(cursor: object, fp: object = FP) -> str:
    raw = json.dumps({"c": cursor, "f": fp}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def raw_token(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def test_an_issued_token_comes_back_typed() -> None:
    created = dt.datetime(2026, 11, 23, 8, 30, 0, 123456, tzinfo=dt.UTC)
    token = pagination.encode_token({"t": created, "id": ISSUED["id"]}, FP)
    assert pagination.decode_token(token, FP, t=dt.datetime, id=str) == {"t": created, "id": ISSUED["id"]}
    # Written as a string by an older encoder, read the same.
    assert pagination.decode_token(forge(ISSUED), FP, t=dt.datetime, id=str)["t"] == created


def test_other_offsets_are_the_same_instant_in_utc() -> None:
    cursor = pagination.decode_token(forge({"t": "2026-11-23T16:30:00+08:00"}), FP, t=dt.datetime)
    assert cursor == {"t": dt.datetime(2026, 11, 23, 8, 30, tzinfo=dt.UTC)}
    assert cursor["t"].tzinfo is dt.UTC


def test_integers_and_strings() -> None:
    assert pagination.decode_token(forge({"s": 41}), FP, s=int) == {"s": 41}
    assert pagination.decode_token(forge({"g": "市容环境", "c": "road"}), FP, g=str, c=str) == {
        "g": "市容环境",
        "c": "road",
    }


def test_no_token_is_the_first_page() -> None:
    assert pagination.decode_token("", FP, t=dt.datetime, id=str) is None


@pytest.mark.parametrize(
    "cursor",
    [
        {"t": 123, "id": ISSUED["id"]},  # the reported forgery: fromisoformat(int)
        {"t": ISSUED["t"], "id": [1]},  # the other one: a list bound as a SQL parameter
        {"t": None, "id": ISSUED["id"]},
        {"t": ISSUED["t"], "id": None},
        {"t": ISSUED["t"], "id": {"a": 1}},
        {"t": ISSUED["t"], "id": 5},
        {"t": ISSUED["t"], "id": True},
        {"t": "yesterday", "id": ISSUED["id"]},
        {"t": "2026-11-23T08:30:00", "id": ISSUED["id"]},  # naive: UtcDateTime refuses it
        {"t": "9999-12-31T23:00:00-05:00", "id": ISSUED["id"]},  # past year 9999 in UTC
        {"t": "0001-01-01T00:00:00+05:00", "id": ISSUED["id"]},  # before year 1 in UTC
        {"t": "2026-11-23T08:30:00+24:00", "id": ISSUED["id"]},
        {"t": "2" * 500, "id": ISSUED["id"]},
        {"t": ISSUED["t"], "id": "a\x00b"},  # PostgreSQL text cannot hold NUL
        {"t": ISSUED["t"], "id": "\ud800"},  # a lone surrogate: no UTF-8 for the driver
        {"t": ISSUED["t"], "id": "x" * 501},
        {"t": ISSUED["t"]},  # a field missing
        {"t": ISSUED["t"], "id": ISSUED["id"], "x": 1},  # a field too many
        {},
        [ISSUED["t"], ISSUED["id"]],
        "cursor",
        None,
    ],
)
def test_forged_cursors_are_invalid_argument(cursor: object) -> None:
    with pytest.raises(InvalidArgument) as err:
        pagination.decode_token(forge(cursor), FP, t=dt.datetime, id=str)
    assert err.value.field == "page_token"


@pytest.mark.parametrize("value", [True, 1.5, "41", 2**63, -(2**63) - 1, None])
def test_integer_fields_take_only_64_bit_integers(value: object) -> None:
    with pytest.raises(InvalidArgument):
        pagination.decode_token(forge({"s": value}), FP, s=int)


@pytest.mark.parametrize(
    "token",
    [
        "!!!",
        "e30",  # {}
        raw_token(b"not json"),
        raw_token(b"\xff\xfe\x00"),
        raw_token(b"[1, 2]"),
        raw_token(b'{"c": {}, "f": "x", "extra": 1}'),
        raw_token(b"[" * 700 + b"]" * 700),  # deep, within the length limit
        raw_token(b"[" * 100_000),  # deeper than the parser recurses, beyond the limit
        "あいう",
        "A" * (pagination.MAX_TOKEN_LENGTH + 1),
    ],
)
def test_unreadable_tokens_are_invalid_argument(token: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        pagination.decode_token(token, FP, t=dt.datetime, id=str)
    assert err.value.field == "page_token"


def test_a_token_for_other_filters_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="different filters"):
        other = pagination.fingerprint("users/2")
        pagination.decode_token(forge(ISSUED, fp=other), FP, t=dt.datetime, id=str)
    with pytest.raises(InvalidArgument):
        pagination.decode_token(forge(ISSUED, fp=[FP]), FP, t=dt.datetime, id=str)


def test_a_list_must_declare_its_cursor() -> None:
    with pytest.raises(TypeError):
        pagination.decode_token(forge(ISSUED), FP)
    with pytest.raises(TypeError):
        pagination.decode_token(forge(ISSUED), FP, t=dt.date)
