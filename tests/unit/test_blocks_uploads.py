"""Import files as they arrive: spooled to disk, checked for size and UTF-8 chunk by chunk."""

from __future__ import annotations

import pytest

from govkit.errors import InvalidArgument
from govkit.spreadsheet import csv_cell, formula_start
from services.blocks.uploads import Upload


def test_chunks_are_spooled_and_read_back_as_text_without_the_bom() -> None:
    data = ("\ufeffcode,address\n" + "".join(f"H{i},窑湾路{i}号\n" for i in range(20_000))).encode()
    with Upload(limit=len(data)) as upload:
        for start in range(0, len(data), 1000):  # cuts through multi-byte characters
            upload.write(data[start : start + 1000])
        upload.finish()
        assert upload.size == len(data)
        with upload.text() as text:
            assert text.readline() == "code,address\n"
        assert upload.read_text() == data.decode("utf-8-sig")  # readable again


def test_bytes_that_are_not_utf8_are_refused_at_their_offset_across_chunks() -> None:
    good = "中文".encode() * 1000  # 6,000 bytes
    with Upload(limit=10_000) as upload:
        upload.write(good[:3001])  # ends in the middle of a character
        with pytest.raises(InvalidArgument) as err:
            upload.write(b"\xff" + good[3002:])
    assert err.value.field == "content" and err.value.message == "is not UTF-8 (byte 3000)"
    with Upload(limit=100) as upload:
        upload.write("中".encode()[:2])
        with pytest.raises(InvalidArgument, match=r"byte 0"):
            upload.finish()  # cut off at the end


def test_a_file_over_the_limit_is_refused_when_it_passes_it() -> None:
    with Upload(limit=3 * 1024 * 1024) as upload:
        upload.write(b"x" * (2 * 1024 * 1024))
        with pytest.raises(InvalidArgument) as err:
            upload.write(b"x" * (1024 * 1024 + 1))
    assert err.value.message == "is larger than 3 MiB; split the file"


def test_formula_starts_and_csv_cells() -> None:
    for value in ("=1+1", "+1", "-1", "@SUM(A1)", "\t=1", "\r=1"):
        assert formula_start(value) is not None, value
        assert csv_cell(value) == "'" + value
    for value in ("张三", "3栋-201", "a=b", ""):
        assert formula_start(value) is None and csv_cell(value) == value
    # Numbers are data: a negative number stays a number, a phone in E.164 is a string that is escaped.
    assert (csv_cell(-5), csv_cell(-1.5), csv_cell(None), csv_cell(True)) == ("-5", "-1.5", "", "true")
    assert csv_cell("+8613812345678") == "'+8613812345678"
