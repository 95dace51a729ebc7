"""Test-side helpers for calling the gateway's REST API."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from enum import Enum
from typing import Any

import httpx

from tests.support.tickets import Person

API = "/api/v1"
PROBLEM = "application/problem+json"


def auth(caller: Person | str, key: str | None = None) -> dict[str, str]:
    """The bearer header of a person (or a bare token), and an Idempotency-Key when given."""
    token = caller if isinstance(caller, str) else caller.token
    headers = {"Authorization": f"Bearer {token}"}
    if key is not None:
        headers["Idempotency-Key"] = key
    return headers


def idempotency_key() -> str:
    return f"k-{uuid.uuid4().hex}"


def ok(reply: httpx.Response, status: int = 200) -> Any:
    """The JSON of a reply with this status."""
    assert reply.status_code == status, reply.text
    return reply.json()


async def all_items(
    http: httpx.AsyncClient, url: str, params: Mapping[str, Any], headers: Mapping[str, str]
) -> list[Any]:
    """The items of every page of a list, following `next_page_token` (each page a 200)."""
    items: list[Any] = []
    token = ""
    while True:
        page = ok(await http.get(url, params={**params, "page_token": token}, headers=headers))
        items += page["items"]
        token = page["next_page_token"]
        if not token:
            return items


def is_problem(reply: httpx.Response, status: int) -> dict[str, Any]:
    """The reply is an RFC 9457 problem of this status, for this request (its path and request id)."""
    assert reply.status_code == status, reply.text
    assert reply.headers["content-type"] == PROBLEM
    body: dict[str, Any] = reply.json()
    assert body["status"] == status and body["instance"] == reply.request.url.path
    assert body["request_id"] == reply.headers["x-request-id"]
    return body


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
