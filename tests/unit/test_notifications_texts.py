"""Message texts: sandboxed templates, locale fallback, SMS splitting."""

from __future__ import annotations

import pytest

from govkit.errors import InvalidArgument
from services.notifications import sms, templates
from services.notifications.texts import BUILT_IN, PARAMETERS, sample


def test_every_kind_has_built_in_texts_in_both_locales_that_render() -> None:
    for kind in PARAMETERS:
        for locale in ("zh-CN", "en"):
            assert kind in BUILT_IN[locale], (kind, locale)
            out = templates.render(kind, "inbox", locale, sample(kind), {})
            assert out.subject and out.body and "{{" not in out.body


def test_zh_cn_by_default_english_on_request_and_unknown_locales_fall_back() -> None:
    params = sample("ticket.accepted")
    assert "已受理" in templates.render("ticket.accepted", "inbox", "zh-CN", params, {}).body
    assert "accepted" in templates.render("ticket.accepted", "email", "en", params, {}).body
    assert "已受理" in templates.render("ticket.accepted", "inbox", "fr", params, {}).body


def test_edited_english_template_is_used_when_no_chinese_edit_or_text_exists() -> None:
    edits = {("custom.kind", "inbox", "en"): ("Hi", "Only English {{ link }}")}
    out = templates.render("custom.kind", "sms", "zh-CN", {"link": "x"}, edits)
    assert out.body == "Only English x"


def test_an_edit_for_the_channel_wins_over_the_inbox_text() -> None:
    edits = {("ticket.accepted", "sms", "zh-CN"): ("", "短信 {{ ticket_id }}")}
    assert templates.render("ticket.accepted", "sms", "zh-CN", {"ticket_id": "T9"}, edits).body == "短信 T9"
    assert "已受理" in templates.render("ticket.accepted", "inbox", "zh-CN", {"ticket_id": "T9"}, edits).body


def test_the_sandbox_refuses_reaching_into_python() -> None:
    with pytest.raises(InvalidArgument) as caught:
        templates.check("ticket.accepted", "x", "{{ ''.__class__.__mro__[1].__subclasses__() }}")
    assert caught.value.field == "template.body"


def test_check_refuses_unknown_parameters_and_syntax_errors() -> None:
    with pytest.raises(InvalidArgument):
        templates.check("ticket.accepted", "x", "{{ phone_number }}")
    with pytest.raises(InvalidArgument):
        templates.check("ticket.accepted", "{% if %}", "ok")
    assert templates.check("ticket.accepted", "t", "诉求 {{ ticket_id }}").body == "诉求 T20250601001"


def test_a_broken_edit_at_send_time_falls_back_to_the_built_in_text() -> None:
    edits = {("ticket.accepted", "inbox", "zh-CN"): ("t", "{{ missing_thing }}")}
    out = templates.render("ticket.accepted", "inbox", "zh-CN", {"ticket_id": "T1"}, edits)
    assert "T1" in out.body and "已受理" in out.body


def test_sms_within_70_characters_is_one_part() -> None:
    text = "诉" * 70
    assert sms.split(text) == [sms.SmsPart(1, 1, text)]


def test_longer_sms_is_split_into_67_character_parts_with_headers() -> None:
    text = "".join(chr(0x4E00 + i) for i in range(150))
    parts = sms.split(text)
    assert [len(p.text) for p in parts] == [67, 67, 16]
    assert "".join(p.text for p in parts) == text
    assert parts[0].labelled().startswith("(1/3)") and parts[2].total == 3


def test_characters_outside_the_bmp_count_double() -> None:
    text = "😀" * 36  # 72 UTF-16 units
    parts = sms.split(text)
    assert len(parts) == 2 and len(parts[0].text) == 33
