"""Small input checks that raise InvalidArgument naming the field."""

from __future__ import annotations

import re

from govkit.errors import InvalidArgument

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Free text (descriptions, notes) may break lines and use tabs; other control characters not.
_CONTROL_EXCEPT_LINES = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_PHONE_SEPARATORS = re.compile(r"[\s\-()]")
_MAINLAND_MOBILE = re.compile(r"^1[3-9]\d{9}$")


def text(
    value: str, field: str, *, max_len: int, min_len: int = 1, required: bool = True, multiline: bool = False
) -> str:
    value = value.strip()
    if not value:
        if required:
            raise InvalidArgument("is required", field=field)
        return ""
    if len(value) < min_len:
        raise InvalidArgument(f"must be at least {min_len} characters", field=field)
    if len(value) > max_len:
        raise InvalidArgument(f"must be at most {max_len} characters", field=field)
    if (_CONTROL_EXCEPT_LINES if multiline else _CONTROL).search(value):
        raise InvalidArgument("must not contain control characters", field=field)
    return value


def resource_id(name: str, collection: str, field: str = "name") -> str:
    """`users/abc` or `abc` -> `abc`."""
    rid = name.removeprefix(f"{collection}/")
    if not rid or "/" in rid or len(rid) > 64:
        raise InvalidArgument(f"must be '{collection}/{{id}}'", field=field)
    return rid


def normalize_phone(raw: str, field: str = "phone") -> str:
    """Mainland mobile numbers in any common spelling -> E.164 (`+8613812345678`)."""
    digits = _PHONE_SEPARATORS.sub("", raw.strip())
    if len(digits) > 20:
        raise InvalidArgument("is too long for a phone number", field=field)
    if digits.startswith("+86"):
        digits = digits[3:]
    elif digits.startswith("0086"):
        digits = digits[4:]
    elif digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    if not _MAINLAND_MOBILE.match(digits):
        raise InvalidArgument("must be a mainland mobile number such as 13812345678", field=field)
    return "+86" + digits
