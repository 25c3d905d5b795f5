"""CSV records from physical lines, with bounded memory and recovery from broken quoting.

The csv module alone reads an unclosed quote to the end of the file (every later line becomes
part of one field) and fails the whole read on a field over its size limit. Here a small quoting
state machine finds where each record starts and ends first; only a complete, well-quoted record
of at most `max_chars` characters is handed to the csv module to split into fields. Otherwise:

* a quote that opens on line L and never closes, or closes badly on a later line, makes line L an
  `unclosed_quote` record, and reading starts again at line L + 1, so the lines it swallowed are
  read as rows of their own (what a person who forgot one quote meant);
* a quote that closes badly on its own line (`"abc"def`) makes that line a `malformed_quote`;
* a well-quoted record over `max_chars` is a `row_too_large` record spanning its lines; it is
  scanned to its end without being kept in memory.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum, auto

from conversations.lines import LineReader, Mark, Piece
from conversations.schema import ReadProblem

QUOTE = '"'
DELIMITER = ","


class _Quoting(Enum):
    """Where the scanner is inside a record (the csv module's strict-mode states)."""

    FIELD_START = auto()
    UNQUOTED = auto()
    QUOTED = auto()
    QUOTE_IN_QUOTED = auto()  # a quote inside a quoted field: escaped ("") or closing
    MALFORMED = auto()  # a closing quote followed by something other than a delimiter


@dataclass(frozen=True, slots=True)
class CsvRecord:
    """One CSV record, or a problem in place of one, with the physical lines it covers."""

    first_line: int
    last_line: int
    fields: list[str]  # empty when `problem` is set
    problem: ReadProblem | None = None
    detail: str = ""
    preview: str = ""  # the start of the raw text, for people reading the quarantine


def _advance(state: _Quoting, text: str) -> _Quoting:
    """The quoting state after `text`, which ends with at most one line ending."""
    if state in (_Quoting.FIELD_START, _Quoting.UNQUOTED) and QUOTE not in text:
        return _Quoting.UNQUOTED  # the common case: no quoting on this line
    position = 0
    while position < len(text):
        if state is _Quoting.QUOTED:
            found = text.find(QUOTE, position)
            if found < 0:
                return state
            state, position = _Quoting.QUOTE_IN_QUOTED, found + 1
        elif state is _Quoting.QUOTE_IN_QUOTED:
            char = text[position]
            if char == QUOTE:
                state = _Quoting.QUOTED
            elif char == DELIMITER:
                state = _Quoting.FIELD_START
            elif char in "\r\n":
                state = _Quoting.UNQUOTED
            else:
                return _Quoting.MALFORMED
            position += 1
        elif state is _Quoting.FIELD_START:
            # A quote opens a field only as its first character; later it is a literal.
            if text[position] == QUOTE:
                state, position = _Quoting.QUOTED, position + 1
            else:
                state = _Quoting.UNQUOTED
        else:
            found = text.find(DELIMITER, position)
            if found < 0:
                return state
            state, position = _Quoting.FIELD_START, found + 1
    return state


def _lines(first: int, last: int) -> str:
    return f"line {first}" if first == last else f"lines {first}-{last}"


def _preview(text: str, limit: int = 200) -> str:
    text = text.rstrip("\r\n")
    return text if len(text) <= limit else f"{text[:limit]}…"


class _RecordScanner:
    """Turns pieces of physical lines into records; see the module docstring for the rules."""

    def __init__(self, lines: LineReader) -> None:
        self._lines = lines
        self._max_chars = lines.max_chars

    def records(self) -> Iterator[CsvRecord]:
        """Every record in order; blank lines are not records."""
        while (first := self._lines.read()) is not None:
            if first.ends_line and not first.text.strip("\r\n"):
                continue
            yield self._record_from(first)

    def _record_from(self, first: Piece) -> CsvRecord:
        chunks: list[str] | None = [first.text]
        size = 0
        after_first_line: Mark | None = None
        state = _Quoting.FIELD_START
        piece: Piece | None = first
        while piece is not None:
            state = _advance(state, piece.text)
            if state is _Quoting.MALFORMED:
                return self._badly_closed(first, piece, after_first_line)
            size += len(piece.text)
            if chunks is not None and piece is not first:
                chunks.append(piece.text)
            if chunks is not None and size > self._max_chars:
                chunks = None  # too large to keep: only find where it ends
            if piece.ends_line and state is not _Quoting.QUOTED:
                return self._complete(first, piece.line, chunks)
            if piece.ends_line and piece.line == first.line:
                after_first_line = self._lines.mark()
            piece = self._lines.read()
        return self._unclosed(first, None, after_first_line)

    def _complete(self, first: Piece, last_line: int, chunks: list[str] | None) -> CsvRecord:
        if chunks is None:
            return CsvRecord(
                first.line,
                last_line,
                [],
                ReadProblem.ROW_TOO_LARGE,
                f"row ({_lines(first.line, last_line)}) is over {self._max_chars} characters",
                _preview(first.text),
            )
        try:
            fields = next(csv.reader(chunks, strict=True), [])
        except csv.Error as error:
            # The quoting is checked already: only a field limit lowered elsewhere is left.
            return CsvRecord(
                first.line,
                last_line,
                [],
                ReadProblem.ROW_TOO_LARGE,
                f"row ({_lines(first.line, last_line)}): {error}",
                _preview(first.text),
            )
        return CsvRecord(first.line, last_line, fields)

    def _badly_closed(self, first: Piece, piece: Piece, resume: Mark | None) -> CsvRecord:
        if piece.line != first.line:
            return self._unclosed(first, piece.line, resume)
        self._lines.skip_rest_of_line(piece)
        return CsvRecord(
            first.line,
            first.line,
            [],
            ReadProblem.MALFORMED_QUOTE,
            f'a quoted value is followed by text before the next "{DELIMITER}" '
            f"on line {first.line}",
            _preview(first.text),
        )

    def _unclosed(self, first: Piece, closed_on: int | None, resume: Mark | None) -> CsvRecord:
        if resume is not None:
            self._lines.reset(resume)  # read the swallowed lines again, as rows of their own
        where = "the file ends" if closed_on is None else f"it closes badly on line {closed_on}"
        detail = f"a quote opened on line {first.line} is not closed ({where})"
        return CsvRecord(
            first.line, first.line, [], ReadProblem.UNCLOSED_QUOTE, detail, _preview(first.text)
        )


def read_records(lines: LineReader) -> Iterator[CsvRecord]:
    """The records of a CSV file, header first; see the module docstring for broken quoting."""
    return _RecordScanner(lines).records()
