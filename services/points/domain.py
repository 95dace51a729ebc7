"""Points' rules apart from the ledger: the indicator catalogue, awards and who decides them,
redemptions, periods and expiry dates. Plain Python, no I/O."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, NoReturn

from govkit.auth.scopes import ancestors, covers
from govkit.errors import FailedPrecondition, InvalidArgument, PermissionDenied
from govkit.idempotency import KEY_FIELD

CHINA_STANDARD_TIME = dt.timezone(dt.timedelta(hours=8), "CST")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_CODE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
MAX_POINTS = 100_000  # one indicator or item price: far above any real convention's figures
MAX_VALIDITY_MONTHS = 120


class IndicatorKind(StrEnum):
    REWARD = "reward"
    PENALTY = "penalty"


class Period(StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    YEAR = "year"


class AwardState(StrEnum):
    PENDING_APPROVAL = "pending_approval"
    POSTED = "posted"
    REJECTED = "rejected"
    EXPIRED = "expired"
    REVERSED = "reversed"


class RedemptionState(StrEnum):
    RESERVED = "reserved"
    FULFILLED = "fulfilled"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


# Block staff roles as the blocks service names them (StaffRole without its prefix, lower case).
RECORDERS = frozenset({"governor", "assistant"})
APPROVERS = frozenset({"supervisor"})


# ---------------------------------------------------------------- ids


def request_id(value: str, field: str = "request_id") -> str:
    """A caller-supplied entry id: required, so a retry can name the same entry."""
    if not value:
        raise InvalidArgument("is required: it becomes the entry's id, so a retry is recognised", field=field)
    if not _REQUEST_ID.match(value):
        raise InvalidArgument("must be 1-64 of A-Z a-z 0-9 . _ : -", field=field)
    return value


def code(value: str, field: str) -> str:
    if not _CODE.match(value):
        raise InvalidArgument(
            "must be 1-40 of a-z, 0-9, '_' and '-', starting with a letter or digit", field=field
        )
    return value


def account_id(owner: str, field: str = "recipient") -> str:
    """`users/{id}` -> `u-{id}`, `households/{id}` -> `h-{id}`: one account per owner, found by name."""
    kind, _, rid = owner.partition("/")
    prefix = {"users": "u", "households": "h"}.get(kind)
    if prefix is None or not rid or "/" in rid or len(rid) > 64:
        raise InvalidArgument("must be users/{id} or households/{id}", field=field)
    return f"{prefix}-{rid}"


def owner_of(account: str) -> str:
    prefix, _, rid = account.partition("-")
    return {"u": "users/", "h": "households/"}.get(prefix, "") + rid


def fingerprint(body: Mapping[str, Any]) -> str:
    """What a request asked for, so the same id with a different body is recognised and refused."""
    raw = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(raw.encode()).hexdigest()


def same_request(stored: str, body: Mapping[str, Any], what: str, rid: str) -> None:
    if stored != fingerprint(body):
        raise_conflict(what, rid)


def raise_conflict(what: str, rid: str) -> NoReturn:
    # The platform's one answer to a reused request id (govkit.idempotency): INVALID_ARGUMENT on
    # `request_id`, which the gateway turns into 422 /problems/idempotency-key-reused.
    raise InvalidArgument(
        f"{what} {rid} was already made by a different request; send the same request again or use a new id",
        field=KEY_FIELD,
    )


# ---------------------------------------------------------------- time


def period_start(period: Period, moment: dt.datetime) -> dt.datetime:
    """Start of the calendar period containing `moment`, in China Standard Time, as UTC."""
    local = moment.astimezone(CHINA_STANDARD_TIME)
    day = local.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == Period.DAY:
        start = day
    elif period == Period.WEEK:
        start = day - dt.timedelta(days=day.weekday())
    elif period == Period.MONTH:
        start = day.replace(day=1)
    else:
        start = day.replace(month=1, day=1)
    return start.astimezone(dt.UTC)


def add_months(moment: dt.datetime, months: int) -> dt.datetime:
    """Same day-of-month `months` later (clamped to the month's end): 31 Jan + 1 month = 28/29 Feb."""
    month0 = moment.month - 1 + months
    year, month = moment.year + month0 // 12, month0 % 12 + 1
    next_month = dt.date(year + month // 12, month % 12 + 1, 1)
    last_day = (next_month - dt.timedelta(days=1)).day
    return moment.replace(year=year, month=month, day=min(moment.day, last_day))


def expiry_of(earned: dt.datetime, validity_months: int) -> dt.datetime | None:
    return add_months(earned, validity_months) if validity_months > 0 else None


# ---------------------------------------------------------------- indicators


@dataclass(frozen=True)
class IndicatorTerms:
    """The parts of an indicator an award depends on: one version of them."""

    kind: IndicatorKind
    points: int
    evidence_required: bool
    approval_required: bool
    cap_count: int
    cap_period: Period | None
    validity_months: int


def check_terms(terms: IndicatorTerms, prefix: str = "indicator") -> IndicatorTerms:
    if not 1 <= terms.points <= MAX_POINTS:
        raise InvalidArgument(f"must be 1..{MAX_POINTS}", field=f"{prefix}.points")
    if terms.cap_count < 0:
        raise InvalidArgument("must not be negative", field=f"{prefix}.cap_count")
    if terms.cap_count and terms.cap_period is None:
        raise InvalidArgument("is required with a cap_count", field=f"{prefix}.cap_period")
    if not 0 <= terms.validity_months <= MAX_VALIDITY_MONTHS:
        raise InvalidArgument(
            f"must be 0 (never) .. {MAX_VALIDITY_MONTHS}", field=f"{prefix}.validity_months"
        )
    if terms.kind == IndicatorKind.PENALTY and terms.validity_months:
        raise InvalidArgument("penalties do not expire; leave it 0", field=f"{prefix}.validity_months")
    return terms


def in_force_at(node: str, published_at: str, switched_off: Iterable[str]) -> bool:
    """An indicator published at `published_at` applies at `node` unless a node on the way down
    (the publisher itself included) switched it off."""
    if not covers(published_at, node):
        return False
    path = set(ancestors(node))
    return not any(off in path and covers(published_at, off) for off in switched_off)


# ---------------------------------------------------------------- awards


def check_recorder(staff_roles: frozenset[str], block: str) -> None:
    if not staff_roles & RECORDERS:
        raise PermissionDenied(f"only the governor or an assistant of {block} records awards there")


def check_decider(
    state: AwardState, recorded_by: str, decider: str, staff_roles: frozenset[str], block: str
) -> None:
    """The two-person rule: the block's supervisor decides, and never on an award they recorded."""
    if not staff_roles & APPROVERS:
        raise PermissionDenied(f"only the supervisor of {block} decides awards there")
    if decider == recorded_by:
        raise PermissionDenied("the person who recorded an award cannot decide it")
    if state != AwardState.PENDING_APPROVAL:
        raise FailedPrecondition(f"the award is {state}, not waiting for approval")


def check_cap(terms: IndicatorTerms, awarded_in_period: int) -> None:
    if terms.cap_count and awarded_in_period >= terms.cap_count:
        assert terms.cap_period is not None
        raise FailedPrecondition(
            f"this indicator is capped at {terms.cap_count} per resident per {terms.cap_period}"
        )


def check_evidence(terms: IndicatorTerms, uris: list[str]) -> None:
    if terms.evidence_required and not uris:
        raise InvalidArgument("this indicator requires evidence", field="award.evidence_uris")


# ---------------------------------------------------------------- redemptions

REDEMPTION_NEXT: dict[RedemptionState, frozenset[RedemptionState]] = {
    RedemptionState.RESERVED: frozenset(
        {RedemptionState.FULFILLED, RedemptionState.CANCELLED, RedemptionState.EXPIRED}
    ),
}


def check_redemption_step(state: RedemptionState, to: RedemptionState) -> None:
    if to not in REDEMPTION_NEXT.get(state, frozenset()):
        raise FailedPrecondition(f"the redemption is {state}; it cannot become {to}")


def check_limit(limit: int, period: Period | None, taken_in_period: int, quantity: int) -> None:
    if limit and taken_in_period + quantity > limit:
        raise FailedPrecondition(
            f"at most {limit} per person per {period}: {taken_in_period} already taken in this period"
        )


# ---------------------------------------------------------------- credit tiers


@dataclass(frozen=True)
class Tier:
    display_name: str
    min_points: int
    clean_months: int
    credit_amount: int


def check_tiers(tiers: list[Tier], window_months: int) -> list[Tier]:
    """Highest threshold first; INVALID_ARGUMENT naming the bad tier."""
    if not 1 <= window_months <= 60:
        raise InvalidArgument("must be 1..60", field="policy.window_months")
    if not 1 <= len(tiers) <= 10:
        raise InvalidArgument("give 1 to 10 tiers", field="policy.tiers")
    for i, t in enumerate(tiers):
        if not t.display_name.strip() or len(t.display_name) > 64:
            raise InvalidArgument(
                "is required (up to 64 characters)", field=f"policy.tiers[{i}].display_name"
            )
        if t.min_points < 1 or t.credit_amount < 0 or not 0 <= t.clean_months <= 60:
            raise InvalidArgument(
                "min_points >= 1, credit_amount >= 0, clean_months 0..60", field=f"policy.tiers[{i}]"
            )
    if len({t.min_points for t in tiers}) != len(tiers):
        raise InvalidArgument("each tier needs its own min_points", field="policy.tiers")
    return sorted(tiers, key=lambda t: t.min_points, reverse=True)


def choose_tier(
    tiers: list[Tier], net_points: int, last_penalty: dt.datetime | None, now: dt.datetime
) -> Tier | None:
    """The highest tier whose threshold the net conduct reaches and whose clean period holds."""
    for tier in sorted(tiers, key=lambda t: t.min_points, reverse=True):
        clean = (
            tier.clean_months == 0
            or last_penalty is None
            or last_penalty < add_months(now, -tier.clean_months)
        )
        if net_points >= tier.min_points and clean:
            return tier
    return None


# ---------------------------------------------------------------- appeals


class AppealState(StrEnum):
    OPEN = "open"
    UPHELD = "upheld"
    REVERSED = "reversed"


def check_appeal(kind: IndicatorKind, state: AwardState, appeal: str, recipient: str, caller: str) -> None:
    if recipient != caller:
        raise PermissionDenied("only the person penalised appeals")
    if kind != IndicatorKind.PENALTY or state != AwardState.POSTED:
        raise FailedPrecondition("only a posted penalty can be appealed")
    if appeal:
        raise FailedPrecondition(f"this penalty was already appealed ({appeal})")


# ---------------------------------------------------------------- red and black lists

# Two-character surnames common enough to matter on a community notice board.
_COMPOUND_SURNAMES = frozenset(
    {
        "欧阳",
        "司马",
        "上官",
        "诸葛",
        "东方",
        "皇甫",
        "尉迟",
        "公孙",
        "慕容",
        "长孙",
        "宇文",
        "司徒",
        "夏侯",
        "令狐",
    }
)


def mask_name(name: str) -> str:
    """张三丰 -> 张**, 欧阳修 -> 欧阳*: the surname stays, each character of the given name masked."""
    name = name.strip()
    if not name:
        return "*"
    surname = name[:2] if name[:2] in _COMPOUND_SURNAMES and len(name) > 2 else name[:1]
    return surname + "*" * max(1, len(name) - len(surname))


def rank(scores: list[tuple[str, int]]) -> list[tuple[int, str, int]]:
    """(rank, key, score), highest score first; equal scores share a rank (1, 2, 2, 4)."""
    ordered = sorted(scores, key=lambda s: (-s[1], s[0]))
    places: list[tuple[int, str, int]] = []
    for i, (key, score) in enumerate(ordered):
        place = places[-1][0] if places and places[-1][2] == score else i + 1
        places.append((place, key, score))
    return places
