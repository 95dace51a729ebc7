"""The public view of tickets without the services: masking personal numbers (phones, id numbers
and e-mails go; dates, times, house numbers and small amounts stay) and which demo categories are public."""

from __future__ import annotations

import re

import pytest

from demo import tickets as demo
from services.tickets.masking import mask


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("请联系13812345678", "请联系***********"),
        ("电话：138 1234 5678，谢谢", "电话：*** **** ****，谢谢"),
        ("+86 138-1234-5678", "+** ***-****-****"),
        ("座机(0731) 58123456", "座机(****) ********"),
        ("0731-58123456", "****-********"),
        ("身份证430302199001011234", "身份证******************"),
        ("身份证43030219900101123X号", "身份证******************号"),
        ("１３８１２３４５６７８", "***********"),  # full-width digits
        ("call13812345678now", "call***********now"),
        ("邮箱 zhang.san@example.com 联系", "邮箱 ***@example.com 联系"),
    ],
)
def test_personal_numbers_are_masked(text: str, expected: str) -> None:
    assert mask(text) == expected


@pytest.mark.parametrize(
    "text",
    ["3栋2单元1201室", "2026-11-23 路灯不亮", "10:15 发现", "损失约1500元", "5号楼 3 层", "", "路灯不亮"],
)
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert mask(text) == text


def test_no_run_of_seven_digits_survives() -> None:
    text = "张三 13812345678 李四 0731 5812 3456 身份证 43030219900101123x 订单 1234567"
    masked = mask(text)
    assert not re.search(r"\d(?:[ -]?\d){6}", masked), masked
    assert masked.startswith("张三 ") and "李四" in masked


def test_demo_catalogue_marks_public_places_public_and_people_private() -> None:
    flags = {c.code: demo.category_message(c).public for c in demo.CATEGORIES}
    assert flags["streetlight-out"] and flags["road-damage"] and flags["garbage-overflow"]
    for private in ("neighbour-dispute", "family-dispute", "subsistence-allowance", "elderly-home-care"):
        assert flags[private] is False, private
