"""Physical lines of a text source, read in bounded pieces, numbered, with rewind.

Both file readers sit on this: a line of any length costs at most `max_chars` characters of
memory, `\\n`, `\\r\\n` and a lone `\\r` all end a line, a UTF-8 byte order mark is dropped, and
undecodable bytes arrive as lone surrogates (the file is opened with `surrogateescape`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

# A row (CSV record or JSONL line) larger than this is quarantined unread. It equals Python's
# default csv field limit, so the csv module never meets a field it would refuse.
MAX_ROW_CHARS = 128 * 1024
BYTE_ORDER_MARK = "\ufeff"
LINE_ENDINGS = ("\n", "\r")


@dataclass(frozen=True, slots=True)
class Piece:
    """Part of one physical line: all of it, or `max_chars` of a longer one."""

    line: int  # 1-based physical line number
    text: str  # includes the line ending when the piece ends the line with one
    ends_line: bool  # False when more of the same line follows in the next piece


@dataclass(frozen=True, slots=True)
class Mark:
    """A line boundary to come back to (`LineReader.reset`)."""

    position: int
    line: int


class LineReader:
    """Reads a text file piece by piece; each piece belongs to exactly one physical line."""

    def __init__(self, handle: TextIO, max_chars: int = MAX_ROW_CHARS) -> None:
        self._handle = handle
        self._max_chars = max_chars
        self._line = 1
        self._at_start = True

    @classmethod
    def open(cls, path: Path) -> tuple[TextIO, LineReader]:
        """Open `path` for reading lines as they are (no newline translation)."""
        handle = path.open(encoding="utf-8", errors="surrogateescape", newline="")
        return handle, cls(handle)

    @property
    def max_chars(self) -> int:
        """The largest piece this reader hands out."""
        return self._max_chars

    def read(self) -> Piece | None:
        """The next piece, or None at the end of the file."""
        text = self._handle.readline(self._max_chars)
        if not text:
            return None
        # readline stops short of the limit only at a line ending or at the end of the file.
        ends_line = text.endswith(LINE_ENDINGS) or len(text) < self._max_chars
        if text.endswith("\r") and len(text) == self._max_chars:
            text += self._newline_after_cut_cr()
        if self._at_start:
            self._at_start = False
            text = text.removeprefix(BYTE_ORDER_MARK)
        piece = Piece(self._line, text, ends_line)
        if ends_line:
            self._line += 1
        return piece

    def skip_rest_of_line(self, piece: Piece) -> None:
        """Consume what is left of the line `piece` belongs to."""
        while not piece.ends_line:
            following = self.read()
            if following is None:
                return
            piece = following

    def mark(self) -> Mark:
        """The current position; only meaningful right after a piece that ended its line."""
        return Mark(self._handle.tell(), self._line)

    def reset(self, mark: Mark) -> None:
        """Read again from `mark`."""
        self._handle.seek(mark.position)
        self._line = mark.line

    def _newline_after_cut_cr(self) -> str:
        # The limit may cut a "\r\n" in two; keep it one line ending so numbering stays right.
        position = self._handle.tell()
        if self._handle.read(1) == "\n":
            return "\n"
        self._handle.seek(position)
        return ""
