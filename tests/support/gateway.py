"""Test-side helpers for calling the gateway's REST API."""

from __future__ import annotations

API = "/api/v1"
PROBLEM = "application/problem+json"


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def ref(path: str) -> str:
    """A resource path as the REST API spells it in a URL (dots for slashes)."""
    return path.replace("/", ".")
