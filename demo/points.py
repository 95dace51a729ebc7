"""The points demo of 雨湖区, read from wanlou/points.toml, and the requests that carry it.

- `INDICATORS`: the district's reference indicators (about fifty, in Chinese), published at the
  district and inherited by the demo street.
- `LOVE_BANK`: an exchange point per community with its items.
- `CREDIT`: the partner bank's credit tiers for the district.
- `DEMO`: what the demo residents did (awards, one penalty in every few, one redemption each).

Reading checks every field against the API's rules (kinds, periods, point ranges, unique codes)
and every reference (the demo's indicator codes and item), naming the file and entry of a mistake
before anything is sent. `demo.seed_points` loads it into a running system over gRPC.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from demo.street import WANLOU, load_plan
from gov.points.v1 import points_pb2 as pb

PLAN = load_plan()
DISTRICT = PLAN.district_path
STREET = PLAN.street_path
FILE = WANLOU / "points.toml"

_KINDS = {"reward": pb.INDICATOR_KIND_REWARD, "penalty": pb.INDICATOR_KIND_PENALTY}
_PERIODS = {"": pb.PERIOD_UNSPECIFIED, "day": pb.PERIOD_DAY, "week": pb.PERIOD_WEEK,
            "month": pb.PERIOD_MONTH, "year": pb.PERIOD_YEAR}  # fmt: skip
_ITEM_KINDS = {"goods": pb.ITEM_KIND_GOODS, "service": pb.ITEM_KIND_SERVICE}


class DemoDataError(ValueError):
    """A mistake in the points demo file; the message names the file and the entry."""


@dataclass(frozen=True)
class IndicatorSpec:
    code: str
    name: str
    kind: int
    points: int
    evidence: bool
    approval: bool
    cap: int
    cap_period: int
    validity_months: int


@dataclass(frozen=True)
class ItemSpec:
    name: str
    kind: int
    price: int
    stock: int
    limit: int
    limit_period: int


@dataclass(frozen=True)
class TierSpec:
    name: str
    min_points: int
    clean_months: int
    credit_amount: int


@dataclass(frozen=True)
class DemoSpec:
    awards: tuple[str, ...]
    penalty: str
    penalty_every: int
    redeem: str


@dataclass(frozen=True)
class PointsDemo:
    indicators: tuple[IndicatorSpec, ...]
    point_suffix: str
    items: tuple[ItemSpec, ...]
    credit_window_months: int
    tiers: tuple[TierSpec, ...]
    demo: DemoSpec


def _pick(table: dict[str, int], value: str, where: str, key: str) -> int:
    if value not in table:
        raise DemoDataError(
            f"{FILE.name}: {where}: {key} {value!r} is not one of {sorted(k for k in table if k)}"
        )
    return table[value]


def _indicator(i: int, raw: dict[str, Any]) -> IndicatorSpec:
    where = f"indicators[{i}] ({raw.get('code', '?')})"
    try:
        spec = IndicatorSpec(
            code=str(raw["code"]),
            name=str(raw["name"]),
            kind=_pick(_KINDS, raw["kind"], where, "kind"),
            points=int(raw["points"]),
            evidence=bool(raw.get("evidence", False)),
            approval=bool(raw.get("approval", False)),
            cap=int(raw.get("cap", 0)),
            cap_period=_pick(_PERIODS, raw.get("cap_period", ""), where, "cap_period"),
            validity_months=int(raw.get("validity_months", 0)),
        )
    except KeyError as missing:
        raise DemoDataError(f"{FILE.name}: {where}: {missing.args[0]} is required") from None
    if not 1 <= spec.points <= 1000:
        raise DemoDataError(f"{FILE.name}: {where}: points must be 1..1000")
    if spec.cap and spec.cap_period == pb.PERIOD_UNSPECIFIED:
        raise DemoDataError(f"{FILE.name}: {where}: a cap needs a cap_period")
    if spec.kind == pb.INDICATOR_KIND_PENALTY and spec.validity_months:
        raise DemoDataError(f"{FILE.name}: {where}: penalties do not expire")
    return spec


def _item(i: int, raw: dict[str, Any]) -> ItemSpec:
    where = f"love_bank.items[{i}] ({raw.get('name', '?')})"
    try:
        spec = ItemSpec(
            name=str(raw["name"]),
            kind=_pick(_ITEM_KINDS, raw["kind"], where, "kind"),
            price=int(raw["price"]),
            stock=int(raw["stock"]),
            limit=int(raw.get("limit", 0)),
            limit_period=_pick(_PERIODS, raw.get("limit_period", ""), where, "limit_period"),
        )
    except KeyError as missing:
        raise DemoDataError(f"{FILE.name}: {where}: {missing.args[0]} is required") from None
    if spec.price < 1 or spec.stock < 0 or (spec.limit and spec.limit_period == pb.PERIOD_UNSPECIFIED):
        raise DemoDataError(f"{FILE.name}: {where}: price >= 1, stock >= 0, a limit needs a limit_period")
    return spec


def load(path: Path = FILE) -> PointsDemo:
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    indicators = tuple(_indicator(i, raw) for i, raw in enumerate(data["indicators"]))
    codes = [s.code for s in indicators]
    if len(set(codes)) != len(codes):
        raise DemoDataError(
            f"{path.name}: indicator codes repeat: {sorted({c for c in codes if codes.count(c) > 1})}"
        )
    items = tuple(_item(i, raw) for i, raw in enumerate(data["love_bank"]["items"]))
    tiers = tuple(
        TierSpec(str(t["name"]), int(t["min_points"]), int(t.get("clean_months", 0)), int(t["credit_amount"]))
        for t in data["credit"]["tiers"]
    )
    raw_demo = data["demo"]
    demo = DemoSpec(
        awards=tuple(raw_demo["awards"]),
        penalty=str(raw_demo["penalty"]),
        penalty_every=int(raw_demo["penalty_every"]),
        redeem=str(raw_demo["redeem"]),
    )
    by_code = {s.code: s for s in indicators}
    for code in (*demo.awards, demo.penalty):
        if code not in by_code:
            raise DemoDataError(f"{path.name}: demo: no indicator {code!r}")
    if any(by_code[c].kind != pb.INDICATOR_KIND_REWARD or by_code[c].approval for c in demo.awards):
        raise DemoDataError(f"{path.name}: demo.awards must be rewards that need no approval")
    if by_code[demo.penalty].kind != pb.INDICATOR_KIND_PENALTY or by_code[demo.penalty].approval:
        raise DemoDataError(f"{path.name}: demo.penalty must be a penalty that needs no approval")
    if demo.redeem not in {i.name for i in items}:
        raise DemoDataError(f"{path.name}: demo: no love-bank item {demo.redeem!r}")
    return PointsDemo(
        indicators=indicators,
        point_suffix=str(data["love_bank"]["name_suffix"]),
        items=items,
        credit_window_months=int(data["credit"]["window_months"]),
        tiers=tiers,
        demo=demo,
    )


def indicator_message(spec: IndicatorSpec) -> pb.Indicator:
    return pb.Indicator(
        node=DISTRICT,
        code=spec.code,
        display_name=spec.name,
        kind=spec.kind,
        points=spec.points,
        evidence_required=spec.evidence,
        approval_required=spec.approval,
        cap_count=spec.cap,
        cap_period=spec.cap_period,
        validity_months=spec.validity_months,
    )


def item_message(spec: ItemSpec) -> pb.Item:
    return pb.Item(
        display_name=spec.name,
        kind=spec.kind,
        price=spec.price,
        stock=spec.stock,
        limit_per_person=spec.limit,
        limit_period=spec.limit_period,
    )


def credit_policy(demo: PointsDemo) -> pb.CreditPolicy:
    return pb.CreditPolicy(
        district=DISTRICT,
        window_months=demo.credit_window_months,
        tiers=[
            pb.CreditTier(
                display_name=t.name,
                min_points=t.min_points,
                clean_months=t.clean_months,
                credit_amount=t.credit_amount,
            )
            for t in demo.tiers
        ],
    )
