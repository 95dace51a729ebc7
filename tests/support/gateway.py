"""Test-side helpers for calling the gateway's REST API."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from enum import Enum
from typing import Any

API = "/api/v1"
PROBLEM = "application/problem+json"


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def ref(path: str) -> str:
    """A resource path as the REST API spells it in a URL (dots for slashes)."""
    return path.replace("/", ".")


def assert_json_enums_match_the_proto(
    proto_enums: Mapping[type[Enum], tuple[Any, str]],
    from_pb: Callable[[Any, int], Any],
    to_pb: Callable[[Any], int],
    *,
    left_out: Mapping[type[Enum], set[str]] | None = None,
) -> None:
    """Each JSON enum spells exactly its proto enum's values (lower case, without the prefix; less
    those `left_out` on purpose), and every member survives the round trip to protobuf and back."""
    for cls, (enum, prefix) in proto_enums.items():
        names = {
            n.removeprefix(f"{prefix}_").lower()
            for n in enum.DESCRIPTOR.values_by_name
            if not n.endswith("UNSPECIFIED")
        }
        assert {m.value for m in cls} == names - (left_out or {}).get(cls, set()), cls
        for member in cls:
            assert from_pb(cls, to_pb(member)) == member
