"""Open311 bodies on the wire: JSON, or XML built with xml.etree (escaped, UTF-8, declared).

Handlers build plain dicts and lists; `render` turns them into either format. In XML a dict becomes
child elements in order, a list repeats the item element its parent's name calls for
(`<services><service>…`), booleans are `true`/`false` and None an empty element; in JSON None is null.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from typing import Any

from fastapi import Response

JSON = "json"
XML = "xml"
# Exactly as the specification's examples give them: strict validators compare the whole header,
# and UTF-8 is the default of both (RFC 8259 for JSON, the XML declaration for XML).
MEDIA_TYPES = {JSON: "application/json", XML: "text/xml"}
# As discovery lists them.
FORMAT_TYPES = ["text/xml", "application/json"]

XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'

# The element of each item of a list, by the list's element.
ITEM_TAGS = {
    "services": "service",
    "attributes": "attribute",
    "values": "value",
    "endpoints": "endpoint",
    "formats": "format",
    "service_requests": "request",
    "errors": "error",
}

# Characters XML 1.0 cannot carry at all, not even escaped; they are dropped.
_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(value: Any) -> str | None:
    """A scalar as element text (ElementTree escapes &, < and > itself)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return _NOT_XML.sub("", str(value)) or None


def _fill(element: ET.Element, value: Any) -> None:
    if isinstance(value, dict):
        for key, child in value.items():
            _fill(ET.SubElement(element, key), child)
    elif isinstance(value, list | tuple):
        tag = ITEM_TAGS[element.tag]
        for item in value:
            _fill(ET.SubElement(element, tag), item)
    else:
        element.text = xml_text(value)


def to_xml(root: str, body: Any) -> bytes:
    element = ET.Element(root)
    _fill(element, body)
    return (XML_DECLARATION + ET.tostring(element, encoding="unicode")).encode()


def to_json(body: Any) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def render(
    fmt: str, root: str, body: Any, *, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """`root` names the XML document element; JSON has none."""
    content = to_xml(root, body) if fmt == XML else to_json(body)
    # Set as a header, not as media_type: Starlette would append "; charset=utf-8" to text/xml.
    return Response(
        content, status_code=status, headers={**(headers or {}), "content-type": MEDIA_TYPES[fmt]}
    )


def error_body(status: int, description: str) -> list[dict[str, Any]]:
    return [{"code": status, "description": description}]


def render_error(fmt: str, status: int, description: str, headers: dict[str, str] | None = None) -> Response:
    return render(fmt, "errors", error_body(status, description), status=status, headers=headers)


def negotiate(suffix: str | None, accept: str) -> str:
    """The format a response takes: the path's suffix if known, else JSON if asked for, else XML
    (the format GeoReport v2 requires)."""
    if suffix is not None and suffix in MEDIA_TYPES:
        return suffix
    return JSON if "json" in accept.lower() else XML
