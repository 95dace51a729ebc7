"""Cells that spreadsheets execute (CSV or formula injection).

Excel, LibreOffice and WPS read a cell that starts with `=`, `+`, `-` or `@` as a formula
(`=HYPERLINK(…)`, `=cmd|' /C calc'!A0`, `@SUM(…)`), and a leading tab or carriage return can hide
such a start from the eye. Import files go to and come from spreadsheets, so:

- imports refuse free text that starts like a formula (`formula_start`): a name or address never
  legitimately does, and refusing names the line and field instead of storing a changed value;
- exports write every text cell through `csv_cell`, which prefixes a quote (OWASP's advice), so a
  value that came in some other way is shown, not run.

Fields with a strict grammar need neither: a phone number `+8613812345678` or a negative number is
data, and its grammar leaves no room for a formula. `csv_cell` therefore passes numbers through.
"""

from __future__ import annotations

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_NAMES = {"\t": "a tab", "\r": "a carriage return"}


def formula_start(value: str) -> str | None:
    """The refusal message if `value` starts like a spreadsheet formula, else None."""
    if not value.startswith(FORMULA_STARTS):
        return None
    first = _NAMES.get(value[0], f"'{value[0]}'")
    return f"starts with {first}: a spreadsheet would run it as a formula; remove that character"


def csv_cell(value: str | int | float | None) -> str:
    """A value as it may be written into a CSV cell that a spreadsheet will open."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return "'" + value if value.startswith(FORMULA_STARTS) else value
