"""Opaque page tokens (AIP-158): keyset cursors bound to the filters they were issued for.

A token is base64url JSON, so a client can read and alter it. It is not signed, because it grants
nothing: it only says where the next page starts, and every filter and the caller's scope are applied
again on every page. What a token must never do is reach the database as something other than the
list expects, so `decode_token` checks every cursor field against the types the list declares
(`decode_token(token, fp, t=dt.datetime, id=str)`) and answers INVALID_ARGUMENT on anything else.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import re
from collections.abc import Callable
from typing import Any, TypeVar

from govkit.errors import InvalidArgument

T = TypeVar("T")

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200

# Far above any cursor this platform issues (ids, node paths, ISO times), far below harm.
MAX_TOKEN_LENGTH = 2000
MAX_TEXT_LENGTH = 500
# A signed 64-bit integer: what SQLite and a PostgreSQL BIGINT hold; larger ones fail in the driver.
_INT_RANGE = range(-(2**63), 2**63)
# PostgreSQL text cannot hold NUL; no cursor value has any other control character either.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

CursorType = type[str] | type[int] | type[dt.datetime]
_KINDS = (str, int, dt.datetime)
_FORGED = "is not a token this API issued"


def page_size(requested: int, *, default: int = DEFAULT_PAGE_SIZE, maximum: int = MAX_PAGE_SIZE) -> int:
    if requested < 0:
        raise InvalidArgument("must not be negative", field="page_size")
    return default if requested == 0 else min(requested, maximum)


def fingerprint(*filters: Any) -> str:
    return hashlib.sha256(json.dumps(filters, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _json_value(value: object) -> object:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    raise TypeError(f"a cursor value cannot be {type(value).__name__}")


def encode_token(cursor: dict[str, Any], filters_fingerprint: str) -> str:
    """Datetimes are written as ISO 8601; `decode_token(..., name=dt.datetime)` reads them back."""
    raw = json.dumps({"c": cursor, "f": filters_fingerprint}, separators=(",", ":"), default=_json_value)
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_token(token: str, filters_fingerprint: str, /, **fields: CursorType) -> dict[str, Any] | None:
    """The cursor in `token`, each field of the type declared for it; None for the first page.

    `fields` names every key the cursor has and its type: str, int or datetime (timezone-aware).
    A token with a key missing or extra, a value of another type, or anything unreadable is
    INVALID_ARGUMENT on `page_token`, never an error further down.
    """
    if not fields or any(kind not in _KINDS for kind in fields.values()):
        raise TypeError("declare every cursor field as str, int or datetime")
    if not token:
        return None
    if len(token) > MAX_TOKEN_LENGTH:
        raise InvalidArgument(_FORGED, field="page_token")
    try:
        padded = token + "=" * (-len(token) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, binascii.Error, RecursionError):
        raise InvalidArgument(_FORGED, field="page_token") from None
    if not isinstance(data, dict) or set(data) != {"c", "f"}:
        raise InvalidArgument(_FORGED, field="page_token")
    if data["f"] != filters_fingerprint:
        raise InvalidArgument("was issued for different filters", field="page_token")
    cursor = data["c"]
    if not isinstance(cursor, dict) or set(cursor) != set(fields):
        raise InvalidArgument(_FORGED, field="page_token")
    return {name: _typed(cursor[name], kind) for name, kind in fields.items()}


def _typed(value: object, kind: CursorType) -> Any:
    # bool is an int to Python, never to a cursor.
    if kind is int and type(value) is int and value in _INT_RANGE:
        return value
    if kind is str and isinstance(value, str) and len(value) <= MAX_TEXT_LENGTH and _storable(value):
        return value
    if kind is dt.datetime and isinstance(value, str) and (parsed := _utc_time(value)) is not None:
        return parsed
    raise InvalidArgument(_FORGED, field="page_token")


def _utc_time(text: str) -> dt.datetime | None:
    """An ISO 8601 time with an offset, in UTC. Naive times are ambiguous (UtcDateTime columns refuse
    them), and an offset that moves a time past year 1 or 9999 cannot be converted."""
    if len(text) > 40:
        return None
    try:
        parsed = dt.datetime.fromisoformat(text)
        return parsed.astimezone(dt.UTC) if parsed.tzinfo is not None else None
    except (ValueError, OverflowError):
        return None


def _storable(text: str) -> bool:
    """No control character, and valid UTF-8 (JSON lets a lone surrogate through; drivers do not)."""
    if _CONTROL.search(text):
        return False
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def cut(
    rows: list[T], size: int, filters_fingerprint: str, cursor: Callable[[T], dict[str, Any]]
) -> tuple[list[T], str]:
    """A page from `size + 1` fetched rows, and the token for the next page ("" on the last)."""
    if len(rows) <= size:
        return rows, ""
    rows = rows[:size]
    return rows, encode_token(cursor(rows[-1]), filters_fingerprint)
