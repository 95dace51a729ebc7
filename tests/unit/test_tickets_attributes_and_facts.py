"""Typed category attributes, and the log buckets the cockpit's medians come from."""

from __future__ import annotations

import random

import pytest

from govkit.errors import InvalidArgument
from services.tickets import facts
from services.tickets.attributes import Definition, check_definitions, check_values

LIFT = [
    Definition("building", "楼栋", "string", required=True),
    Definition("floor", "楼层", "number"),
    Definition("since", "开始时间", "datetime"),
    Definition("trapped", "是否困人", "single_value_list", options=(("yes", "是"), ("no", "否"))),
    Definition(
        "kinds", "类型", "multi_value_list", options=(("door", "门"), ("noise", "异响"), ("stop", "停运"))
    ),
    Definition("details", "详情", "text"),
]


def test_values_are_checked_and_normalised() -> None:
    values = check_values(
        LIFT,
        [
            ("building", [" 3栋 "]),
            ("floor", ["-1"]),
            ("since", ["2026-11-23T08:15:00+08:00"]),
            ("trapped", ["yes"]),
            ("kinds", ["door", "stop"]),
            ("details", ["第一行\n第二行"]),
        ],
    )
    assert values["building"] == ["3栋"] and values["kinds"] == ["door", "stop"]
    assert values["since"] == ["2026-11-23T08:15:00+08:00"]


@pytest.mark.parametrize(
    ("given", "field"),
    [
        ([], "ticket.attributes.building"),  # required
        ([("building", ["3栋"]), ("floor", ["three"])], "ticket.attributes.floor"),
        ([("building", ["3栋"]), ("floor", ["nan"])], "ticket.attributes.floor"),
        ([("building", ["3栋"]), ("since", ["2026-11-23 08:15"])], "ticket.attributes.since"),  # no offset
        ([("building", ["3栋"]), ("trapped", ["maybe"])], "ticket.attributes.trapped"),
        ([("building", ["3栋"]), ("trapped", ["yes", "no"])], "ticket.attributes.trapped"),
        ([("building", ["3栋"]), ("kinds", ["door", "door"])], "ticket.attributes.kinds"),
        ([("building", ["a\nb"])], "ticket.attributes.building"),  # a string is one line
        ([("building", ["3栋"]), ("colour", ["red"])], "ticket.attributes.colour"),
        ([("building", ["3栋"]), ("building", ["4栋"])], "ticket.attributes.building"),
    ],
)
def test_bad_values_name_the_attribute(given: list[tuple[str, list[str]]], field: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        check_values(LIFT, given)
    assert err.value.field == field


def test_definitions_are_checked() -> None:
    check_definitions(LIFT)
    for bad in (
        [Definition("Bad Code", "x", "string")],
        [Definition("a", "x", "string"), Definition("a", "y", "number")],
        [Definition("a", "x", "single_value_list")],  # a list without options
        [Definition("a", "x", "string", options=(("k", "v"),))],  # options on a non-list
        [Definition("a", "x", "colour")],
    ):
        with pytest.raises(InvalidArgument):
            check_definitions(bad)
    assert Definition.from_json(LIFT[3].to_json()) == LIFT[3]


def test_bucketed_quantiles_stay_within_two_and_a_half_percent() -> None:
    rng = random.Random(7)
    durations = [rng.lognormvariate(9, 1.5) for _ in range(20_000)]  # seconds: minutes to weeks
    counts: dict[int, int] = {}
    for d in durations:
        counts[facts.bucket(d)] = counts.get(facts.bucket(d), 0) + 1
    ordered = sorted(durations)
    for q in (0.5, 0.9):
        exact = ordered[max(0, int(q * len(ordered) + 0.999999) - 1)]  # nearest rank
        approx = facts.quantile(counts.items(), q)
        assert approx is not None and abs(approx - exact) / exact <= 0.025, (q, exact, approx)
    assert facts.quantile([], 0.5) is None
    assert facts.bucket(0.5) == 0 and facts.bucket_value(0) == 0.0
    assert facts.bucket(60) <= facts.bucket(61) < facts.bucket(64)
