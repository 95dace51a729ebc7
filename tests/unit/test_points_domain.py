"""Points' rules apart from the ledger: ids, periods, expiry dates, inheritance, who decides."""

from __future__ import annotations

import datetime as dt

import pytest

from govkit.errors import FailedPrecondition, InvalidArgument, PermissionDenied
from services.points import domain
from services.points.domain import AwardState, IndicatorKind, IndicatorTerms, Period


def test_account_ids_follow_their_owner() -> None:
    assert domain.account_id("users/abc") == "u-abc"
    assert domain.account_id("households/h1") == "h-h1"
    assert domain.owner_of("u-abc") == "users/abc"
    for bad in ("abc", "nodes/x", "users/", "users/a/b"):
        with pytest.raises(InvalidArgument):
            domain.account_id(bad)


def test_request_ids_are_required_and_plain() -> None:
    assert domain.request_id("award-2025-01:abc") == "award-2025-01:abc"
    for bad in ("", "has space", "x" * 65, "斜杠"):
        with pytest.raises(InvalidArgument):
            domain.request_id(bad)


def test_the_same_id_with_a_different_body_is_refused() -> None:
    body = {"recipient": "users/1", "points": 5}
    domain.same_request(domain.fingerprint(body), dict(body), "award", "a1")
    # The platform's one answer to a reused request id: INVALID_ARGUMENT naming request_id.
    with pytest.raises(InvalidArgument) as refused:
        domain.same_request(domain.fingerprint(body), {**body, "points": 6}, "award", "a1")
    assert refused.value.field == "request_id"


def test_periods_are_calendar_periods_in_china_standard_time() -> None:
    # 2025-03-31 17:00 UTC is already Tuesday 1 April in Beijing.
    moment = dt.datetime(2025, 3, 31, 17, 0, tzinfo=dt.UTC)
    cst = domain.CHINA_STANDARD_TIME
    assert domain.period_start(Period.DAY, moment) == dt.datetime(2025, 4, 1, tzinfo=cst)
    assert domain.period_start(Period.WEEK, moment) == dt.datetime(2025, 3, 31, tzinfo=cst)
    assert domain.period_start(Period.MONTH, moment) == dt.datetime(2025, 4, 1, tzinfo=cst)
    assert domain.period_start(Period.YEAR, moment) == dt.datetime(2025, 1, 1, tzinfo=cst)


def test_points_expire_whole_months_later_clamped_to_the_month_end() -> None:
    jan31 = dt.datetime(2024, 1, 31, 9, tzinfo=dt.UTC)
    assert domain.expiry_of(jan31, 1) == dt.datetime(2024, 2, 29, 9, tzinfo=dt.UTC)
    assert domain.expiry_of(jan31, 12) == dt.datetime(2025, 1, 31, 9, tzinfo=dt.UTC)
    assert domain.expiry_of(jan31, 13) == dt.datetime(2025, 2, 28, 9, tzinfo=dt.UTC)
    assert domain.expiry_of(jan31, 0) is None


def test_indicators_are_inherited_unless_switched_off_on_the_way_down() -> None:
    published = "yuhu"
    assert domain.in_force_at("yuhu/wanlou/taoyuan/b07", published, [])
    assert not domain.in_force_at("hetang/x", published, [])
    # Switched off for wanlou: off in wanlou and below, still on elsewhere in yuhu.
    assert not domain.in_force_at("yuhu/wanlou/taoyuan/b07", published, ["yuhu/wanlou"])
    assert not domain.in_force_at("yuhu/wanlou", published, ["yuhu/wanlou"])
    assert domain.in_force_at("yuhu/other/b01", published, ["yuhu/wanlou"])
    # A switch below the node does not matter to the node itself.
    assert domain.in_force_at("yuhu/wanlou", published, ["yuhu/wanlou/taoyuan"])


def terms(**changes: object) -> IndicatorTerms:
    base = {
        "kind": IndicatorKind.REWARD,
        "points": 5,
        "evidence_required": False,
        "approval_required": False,
        "cap_count": 0,
        "cap_period": None,
        "validity_months": 12,
    }
    return IndicatorTerms(**{**base, **changes})  # type: ignore[arg-type]


def test_indicator_terms_are_checked() -> None:
    domain.check_terms(terms())
    for bad, field in (
        (terms(points=0), "indicator.points"),
        (terms(cap_count=2), "indicator.cap_period"),
        (terms(validity_months=121), "indicator.validity_months"),
        (terms(kind=IndicatorKind.PENALTY, validity_months=3), "indicator.validity_months"),
    ):
        with pytest.raises(InvalidArgument) as err:
            domain.check_terms(bad)
        assert err.value.field == field


def test_caps_and_evidence() -> None:
    capped = terms(cap_count=2, cap_period=Period.MONTH)
    domain.check_cap(capped, 1)
    with pytest.raises(FailedPrecondition):
        domain.check_cap(capped, 2)
    with pytest.raises(InvalidArgument):
        domain.check_evidence(terms(evidence_required=True), [])


def test_two_person_rule() -> None:
    block = "yuhu/wanlou/taoyuan/b07"
    supervisor = frozenset({"supervisor"})
    domain.check_decider(AwardState.PENDING_APPROVAL, "users/gov", "users/sup", supervisor, block)
    with pytest.raises(PermissionDenied):  # their own
        domain.check_decider(AwardState.PENDING_APPROVAL, "users/sup", "users/sup", supervisor, block)
    with pytest.raises(PermissionDenied):  # not the supervisor (any more)
        domain.check_decider(
            AwardState.PENDING_APPROVAL, "users/gov", "users/x", frozenset({"assistant"}), block
        )
    with pytest.raises(FailedPrecondition):
        domain.check_decider(AwardState.POSTED, "users/gov", "users/sup", supervisor, block)
    with pytest.raises(PermissionDenied):
        domain.check_recorder(frozenset({"supervisor"}), block)
    domain.check_recorder(frozenset({"assistant"}), block)


def test_redemption_steps_and_limits() -> None:
    domain.check_redemption_step(domain.RedemptionState.RESERVED, domain.RedemptionState.FULFILLED)
    with pytest.raises(FailedPrecondition):
        domain.check_redemption_step(domain.RedemptionState.FULFILLED, domain.RedemptionState.CANCELLED)
    domain.check_limit(2, Period.MONTH, 1, 1)
    with pytest.raises(FailedPrecondition):
        domain.check_limit(2, Period.MONTH, 1, 2)


def test_credit_tiers_take_the_highest_reached_with_a_clean_record() -> None:
    now = dt.datetime(2025, 6, 15, tzinfo=dt.UTC)
    tiers = domain.check_tiers(
        [domain.Tier("二级", 50, 0, 50_000), domain.Tier("一级", 100, 6, 100_000)], window_months=12
    )
    assert [t.display_name for t in tiers] == ["一级", "二级"]
    assert domain.choose_tier(tiers, 120, None, now).display_name == "一级"  # type: ignore[union-attr]
    recent = dt.datetime(2025, 3, 1, tzinfo=dt.UTC)  # within six months: not clean enough for 一级
    assert domain.choose_tier(tiers, 120, recent, now).display_name == "二级"  # type: ignore[union-attr]
    long_ago = dt.datetime(2024, 11, 1, tzinfo=dt.UTC)
    assert domain.choose_tier(tiers, 120, long_ago, now).display_name == "一级"  # type: ignore[union-attr]
    assert domain.choose_tier(tiers, 49, None, now) is None
    with pytest.raises(InvalidArgument):
        domain.check_tiers([domain.Tier("a", 5, 0, 1), domain.Tier("b", 5, 0, 2)], 12)


def test_only_the_penalised_appeal_a_posted_penalty_once() -> None:
    domain.check_appeal(IndicatorKind.PENALTY, AwardState.POSTED, "", "users/a", "users/a")
    with pytest.raises(PermissionDenied):
        domain.check_appeal(IndicatorKind.PENALTY, AwardState.POSTED, "", "users/a", "users/b")
    with pytest.raises(FailedPrecondition):
        domain.check_appeal(IndicatorKind.REWARD, AwardState.POSTED, "", "users/a", "users/a")
    with pytest.raises(FailedPrecondition):
        domain.check_appeal(IndicatorKind.PENALTY, AwardState.POSTED, "open", "users/a", "users/a")


def test_names_on_lists_keep_the_surname_only() -> None:
    assert domain.mask_name("张三丰") == "张**"
    assert domain.mask_name("李四") == "李*"
    assert domain.mask_name("欧阳修") == "欧阳*"
    assert domain.mask_name("欧阳") == "欧*"  # a two-character name is surname + given name
    assert domain.mask_name("") == "*"


def test_equal_points_share_a_rank() -> None:
    assert domain.rank([("a", 5), ("b", 9), ("c", 5), ("d", 1)]) == [
        (1, "b", 9),
        (2, "a", 5),
        (2, "c", 5),
        (4, "d", 1),
    ]


def test_a_bad_code_is_refused_naming_the_field() -> None:
    assert domain.code("corridor-clear", "indicator.code") == "corridor-clear"
    for bad in ("", "Upper", "-dash", "x" * 41, "空格"):
        with pytest.raises(InvalidArgument) as err:
            domain.code(bad, "indicator.code")
        assert err.value.field == "indicator.code"
