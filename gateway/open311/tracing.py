"""Keep api_keys out of traces.

GET requests carry the api_key in the query string, and the OpenTelemetry ASGI middleware records
the whole URL on the server span (`http.url`, `url.full`, `url.query`). Before anything else an
Open311 route does, the key's value in those attributes is replaced.
"""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import Request
from opentelemetry import trace

REDACTED = "REDACTED"
_URL_ATTRIBUTES = ("http.url", "url.full")
_QUERY_ATTRIBUTES = ("url.query", "http.target")


def redact_api_key(request: Request) -> None:
    if "api_key" not in request.query_params:
        return
    span = trace.get_current_span()
    recorded = getattr(span, "attributes", None)
    if not span.is_recording() or not recorded:
        return
    query = urlencode([(k, REDACTED if k == "api_key" else v) for k, v in request.query_params.multi_items()])
    for key in _URL_ATTRIBUTES:
        if key in recorded:
            span.set_attribute(key, str(request.url.replace(query=query)))
    for key in _QUERY_ATTRIBUTES:
        value = recorded.get(key)
        if isinstance(value, str) and "api_key" in value:
            span.set_attribute(key, f"{request.url.path}?{query}" if key == "http.target" else query)
