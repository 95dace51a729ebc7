"""The points demo file (demo/wanlou/points.toml): what it holds, that each indicator passes the
service's own rules, and that a mistake is reported by file and entry."""

from __future__ import annotations

from pathlib import Path

import pytest

from demo import points as demo_points
from gov.points.v1 import points_pb2 as pb
from services.points import domain
from services.points.domain import IndicatorKind, IndicatorTerms, Period


def test_about_fifty_reference_indicators_of_both_kinds_that_the_service_accepts() -> None:
    data = demo_points.load()
    assert 45 <= len(data.indicators) <= 60
    kinds = [i.kind for i in data.indicators]
    assert kinds.count(pb.INDICATOR_KIND_REWARD) >= 25 and kinds.count(pb.INDICATOR_KIND_PENALTY) >= 15
    names = {i.name for i in data.indicators}
    for conduct in (
        "保持楼道畅通",
        "垃圾分类投放准确",
        "参加志愿服务",
        "关爱独居老人",
        "违章搭建",
        "噪音扰民",
        "乱扔垃圾",
    ):
        assert conduct in names
    periods = {
        pb.PERIOD_DAY: Period.DAY,
        pb.PERIOD_WEEK: Period.WEEK,
        pb.PERIOD_MONTH: Period.MONTH,
        pb.PERIOD_YEAR: Period.YEAR,
    }
    for spec in data.indicators:
        domain.code(spec.code, "code")
        domain.check_terms(
            IndicatorTerms(
                kind=IndicatorKind.REWARD if spec.kind == pb.INDICATOR_KIND_REWARD else IndicatorKind.PENALTY,
                points=spec.points,
                evidence_required=spec.evidence,
                approval_required=spec.approval,
                cap_count=spec.cap,
                cap_period=periods.get(spec.cap_period),
                validity_months=spec.validity_months,
            )
        )
    # The demo residents can afford the item they redeem with the awards they get.
    by_code = {i.code: i for i in data.indicators}
    price = next(i.price for i in data.items if i.name == data.demo.redeem)
    assert sum(by_code[c].points for c in data.demo.awards) >= price
    assert [t.min_points for t in data.tiers] == sorted((t.min_points for t in data.tiers), reverse=True)


def test_a_mistake_names_the_file_and_the_entry(tmp_path: Path) -> None:
    text = demo_points.FILE.read_text(encoding="utf-8")
    broken = tmp_path / "points.toml"
    broken.write_text(
        text.replace('kind = "penalty"\npoints = 5', 'kind = "fine"\npoints = 5', 1), encoding="utf-8"
    )
    with pytest.raises(
        demo_points.DemoDataError, match=r"points.toml: indicators\[\d+\] \(noise\): kind 'fine'"
    ):
        demo_points.load(broken)
    broken.write_text(text.replace('redeem = "洗衣液 2kg"', 'redeem = "彩电"'), encoding="utf-8")
    with pytest.raises(demo_points.DemoDataError, match="no love-bank item '彩电'"):
        demo_points.load(broken)
