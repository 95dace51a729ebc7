"""Open311 arguments into tickets' terms: the POST form (with `attribute[…]` fields) and list filters.

Every refusal is a 400 naming the Open311 argument.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from gateway.blocks_resources import ID_PATTERN, NODE_REF_MAX_LENGTH, NODE_REF_PATTERN, path_of
from gateway.open311.errors import invalid
from gateway.open311.mapping import CST, STATES_BY_STATUS
from gov.tickets.v1 import tickets_pb2 as pb

_ATTRIBUTE = re.compile(r"^attribute\[([^\[\]]{1,64})\](\[\])?$")
_ID = re.compile(ID_PATTERN)
_SERVICE_CODE = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
_NODE_REF = re.compile(NODE_REF_PATTERN)
_CJK = re.compile("[\u3400-\u9fff\uf900-\ufaff]")
# A '+' of an offset that arrived unencoded in a query string has become a space.
_SPACED_OFFSET = re.compile(r" (\d\d:?\d\d)$")
TITLE_LENGTH = 50
MAX_IDS = 100
MAX_SERVICE_CODES = 20


def parse_attributes(items: Iterable[tuple[str, object]]) -> list[tuple[str, list[str]]]:
    """`attribute[code]=v`, and `attribute[code][]=v1&attribute[code][]=v2` for a multi-value list,
    as (code, values) in the order first seen. Attributes left blank are dropped."""
    found: dict[str, list[str]] = {}
    for key, value in items:
        if not key.startswith("attribute["):
            continue
        match = _ATTRIBUTE.match(key)
        if match is None:
            raise invalid(key, "expected attribute[code] or attribute[code][]")
        if not isinstance(value, str):
            raise invalid(key, "must be text, not a file")
        found.setdefault(match.group(1), []).append(value)
    return [(code, values) for code, values in found.items() if any(v.strip() for v in values)]


def jurisdiction(value: str | None) -> str:
    """`yuhu.wanlou` (or `yuhu/wanlou`) -> the region node's path `yuhu/wanlou`; empty if not given."""
    if not value:
        return ""
    ref = value.strip().replace("/", ".")
    if len(ref) > NODE_REF_MAX_LENGTH or not _NODE_REF.match(ref):
        raise invalid("jurisdiction_id", "expected a region node such as yuhu.wanlou")
    return path_of(ref)


def parse_datetime(name: str, value: str, *, end: bool = False) -> dt.datetime:
    """A W3C datetime (2026-11-23T10:15:00+08:00, or Z) or a date (China Standard Time). An `end`
    is inclusive, so the instant returned is just after it: the next day for a date, the next second
    for a time given to the second."""
    text = _SPACED_OFFSET.sub(r"+\1", value.strip())
    try:
        if len(text) == 10:
            day = dt.datetime.combine(dt.date.fromisoformat(text), dt.time(), CST)
            return day + dt.timedelta(days=1) if end else day
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise invalid(name, "expected a W3C datetime such as 2026-11-23T10:15:00+08:00") from None
    if moment.tzinfo is None:
        raise invalid(name, "needs a timezone offset, such as +08:00 or Z")
    if end:
        moment += dt.timedelta(microseconds=1) if moment.microsecond else dt.timedelta(seconds=1)
    return moment


def split_list(value: str | None) -> list[str]:
    """A comma-separated argument, blanks and repeats dropped."""
    seen: dict[str, None] = {}
    for part in (value or "").split(","):
        if part.strip():
            seen[part.strip()] = None
    return list(seen)


def _matching_list(
    value: str | None, name: str, maximum: tuple[int, str], pattern: re.Pattern[str], what: str
) -> list[str]:
    """A comma-separated argument of at most `maximum` (count, plural noun) values matching `pattern`."""
    values = split_list(value)
    if len(values) > maximum[0]:
        raise invalid(name, f"at most {maximum[0]} {maximum[1]}")
    for v in values:
        if not pattern.match(v):
            raise invalid(name, f"{v!r} is not a {what}")
    return values


def request_ids(value: str | None) -> list[str]:
    return _matching_list(value, "service_request_id", (MAX_IDS, "ids"), _ID, "service request id")


def service_codes(value: str | None) -> list[str]:
    return _matching_list(value, "service_code", (MAX_SERVICE_CODES, "codes"), _SERVICE_CODE, "service code")


def statuses(value: str | None) -> tuple[pb.TicketState, ...]:
    """The ticket states `open`, `closed` or both stand for; () is every state."""
    wanted = split_list((value or "").lower())
    for status in wanted:
        if status not in STATES_BY_STATUS:
            raise invalid("status", f"{status!r} is not open or closed")
    if len(wanted) != 1:
        return ()
    return STATES_BY_STATUS[wanted[0]]


def contact_name(first: str, last: str) -> str:
    """`first last`, or family name first without a space for Chinese names (张 + 三 = 张三)."""
    first, last = first.strip(), last.strip()
    if _CJK.search(first + last):
        return last + first
    return " ".join(p for p in (first, last) if p)


def title_of(description: str, fallback: str) -> str:
    """Tickets need a title and Open311 has none: the description's first line, shortened."""
    lines = [line.strip() for line in description.strip().splitlines() if line.strip()]
    if not lines:
        return fallback
    first = lines[0]
    return first if len(first) <= TITLE_LENGTH else first[: TITLE_LENGTH - 1] + "…"


@dataclass
class Report:
    """The fields of POST requests that become a ticket (email, device_id and account_id do not:
    the platform keeps a reporter's name and phone only)."""

    service_code: str = ""
    lat: float | None = None
    long: float | None = None
    address_string: str = ""
    address_id: str = ""
    jurisdiction_id: str = ""
    first_name: str = ""
    last_name: str = ""
    phone: str = ""
    description: str = ""
    media_url: str = ""
    attributes: list[tuple[str, list[str]]] = field(default_factory=list)

    def check(self) -> None:
        if not self.service_code.strip():
            raise invalid("service_code", "is required")
        if not _SERVICE_CODE.match(self.service_code.strip()):
            raise invalid("service_code", f"{self.service_code!r} is not a service code")
        if (self.lat is None) != (self.long is None):
            raise invalid("long" if self.long is None else "lat", "lat and long go together")
        node = jurisdiction(self.jurisdiction_id)
        if self.address_id and not _ID.match(self.address_id.strip()):
            raise invalid("address_id", "is not a household id")
        if self.lat is None and not self.address_id.strip():
            if not self.address_string.strip():
                raise invalid("lat", "lat and long, address_string or address_id is required")
            if not node:
                raise invalid("jurisdiction_id", "is required when address_string is the only location")
        if self.media_url and not self.media_url.strip().lower().startswith(("http://", "https://")):
            raise invalid("media_url", "must be an http(s) URL")

    def location(self) -> pb.Location:
        location = pb.Location(address=self.address_string.strip())
        if self.lat is not None and self.long is not None:
            location.latitude, location.longitude, location.has_point = self.lat, self.long, True
        if self.address_id.strip():
            location.household = f"households/{self.address_id.strip()}"
        return location

    def ticket(self, service_name: str) -> pb.Ticket:
        """The ticket to create; `service_name` titles a report without a description."""
        self.check()
        location = self.location()
        address_only = not location.has_point and not location.household
        return pb.Ticket(
            category=f"categories/{self.service_code.strip()}",
            source=pb.TicketSource.TICKET_SOURCE_RESIDENT,
            title=title_of(self.description, service_name),
            description=self.description.strip(),
            media_uris=[self.media_url.strip()] if self.media_url.strip() else [],
            location=location,
            node=jurisdiction(self.jurisdiction_id) if address_only else "",
            contact=pb.Contact(
                display_name=contact_name(self.first_name, self.last_name), phone=self.phone.strip()
            ),
            attributes=[pb.TicketAttribute(code=code, values=values) for code, values in self.attributes],
        )
