"""An import file as it arrives, in chunks, spooled to an anonymous temporary file on disk.

The file never sits in memory whole: each chunk is checked (size limit, UTF-8) and written out, and
the import reads the file back row by row. The temporary file has no name on disk (it is unlinked
as soon as it is made), so nothing is left behind when the process stops, however it stops.
"""

from __future__ import annotations

import codecs
import io
import tempfile
from types import TracebackType
from typing import IO, TextIO

from govkit.errors import InvalidArgument

MIB = 1024 * 1024


class Upload:
    def __init__(self, limit: int, directory: str | None = None) -> None:
        self.limit = limit
        self.size = 0
        # Closed by close() (the Upload is a context manager itself).
        self._file: IO[bytes] = tempfile.TemporaryFile(prefix="gov-import-", dir=directory)  # noqa: SIM115
        self._decoder = codecs.getincrementaldecoder("utf-8")("strict")
        self._finished = False

    def write(self, data: bytes) -> None:
        """Append a chunk; INVALID_ARGUMENT (field `content`) if the file grows too large or is not UTF-8."""
        if self._finished:
            raise RuntimeError("the upload is finished")
        if self.size + len(data) > self.limit:
            raise InvalidArgument(f"is larger than {self.limit // MIB} MiB; split the file", field="content")
        self._check_utf8(data, final=False)
        self._file.write(data)
        self.size += len(data)

    def finish(self) -> None:
        """The last chunk has come: a UTF-8 sequence cut off at the end is refused too."""
        self._check_utf8(b"", final=True)
        self._file.flush()
        self._finished = True

    def _check_utf8(self, data: bytes, *, final: bool) -> None:
        pending = len(self._decoder.getstate()[0])  # bytes of a sequence the last chunk began
        try:
            self._decoder.decode(data, final)
        except UnicodeDecodeError as exc:
            byte = self.size - pending + exc.start
            raise InvalidArgument(f"is not UTF-8 (byte {byte})", field="content") from None

    def text(self) -> TextIO:
        """The file from its start, as text for the csv module (a UTF-8 BOM is skipped). Close it
        before reading it again; the upload itself stays open."""
        if not self._finished:
            raise RuntimeError("finish the upload first")
        self._file.seek(0)
        return _Borrowed(self._file, encoding="utf-8-sig", newline="")

    def read_text(self) -> str:
        with self.text() as text:
            return text.read()

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> Upload:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class _Borrowed(io.TextIOWrapper):
    """A text view that leaves the binary file open when it is closed."""

    _detached = False

    def close(self) -> None:
        if not self._detached:
            self._detached = True
            self.detach()
