"""Personal numbers out of texts anyone may read: phone numbers, id numbers, e-mail addresses.

Residents write their phone number into a report ("请联系13812345678"), staff copy one into a
resolution note. In the public view every digit of such a number becomes '*' and an e-mail
address keeps only its domain, so the text still reads ("请联系***********") but the number is gone.

A run of digits is masked when it is long enough to identify someone: 7 digits or more, single
spaces or hyphens allowed between them (138 1234 5678, 0731-58123456), an optional leading '+' or
area code in brackets, an id number's final X. Shorter numbers (house numbers, floors, amounts,
times) are left alone, and so are dates written 2026-11-23. Any Unicode digit counts, so
full-width digits (１３８…) are masked too.
"""

from __future__ import annotations

import re

MASK = "*"
_NUMBER = re.compile(r"(?<!\d)\+?(?:\(\d{2,4}\)[ ]?)?\d(?:[ -]?\d){6,}[Xx]?(?!\d)")
_DATE = re.compile(r"\d{4}-\d{1,2}-\d{1,2}")
_EMAIL = re.compile(r"[^\s@<>()\[\]:;,\"']+@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)")
_DIGIT_OR_X = re.compile(r"\d|(?<=\d)[Xx]$")


def _number(match: re.Match[str]) -> str:
    text = match.group(0)
    if _DATE.fullmatch(text):
        return text
    return _DIGIT_OR_X.sub(MASK, text)


def mask(text: str) -> str:
    """`text` with phone numbers, id numbers and e-mail addresses masked."""
    if not text:
        return text
    text = _EMAIL.sub(lambda m: f"{MASK * 3}@{m.group(1)}", text)
    return _NUMBER.sub(_number, text)
