"""Splitting a text message the way carriers do (pure).

A message in Chinese is sent in UCS-2: one part carries 70 characters; a longer message goes as
concatenated parts of 67 characters each, the other 3 taken by the part header (reference, count,
index) that phones use to join them again.
"""

from __future__ import annotations

from dataclasses import dataclass

SINGLE = 70
SEGMENT = 67


@dataclass(frozen=True)
class SmsPart:
    index: int  # 1-based
    total: int
    text: str

    def labelled(self) -> str:
        """How the part reads on a phone that does not join parts: `(1/3)` before its text."""
        return self.text if self.total == 1 else f"({self.index}/{self.total}){self.text}"


def split(text: str) -> list[SmsPart]:
    # Characters outside the BMP take two UCS-2 units; count code units so no part runs over.
    units = _utf16_units(text)
    if len(units) <= SINGLE:
        return [SmsPart(1, 1, text)]
    chunks: list[str] = []
    current: list[str] = []
    size = 0
    for char in text:
        width = 2 if ord(char) > 0xFFFF else 1
        if size + width > SEGMENT:
            chunks.append("".join(current))
            current, size = [], 0
        current.append(char)
        size += width
    if current:
        chunks.append("".join(current))
    return [SmsPart(i + 1, len(chunks), chunk) for i, chunk in enumerate(chunks)]


def _utf16_units(text: str) -> list[str]:
    return [u for char in text for u in ([char, ""] if ord(char) > 0xFFFF else [char])]
