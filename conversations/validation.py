"""Row validation: every raw row is either kept (typed, canonical) or quarantined with a reason.

Pure logic over DataFrames, no I/O: rows in = rows kept + rows quarantined, always.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from conversations.column_checks import (
    blank_mask,
    by_position,
    contains_mask,
    first_positions,
    is_blank,
    set_mask,
    text_lengths,
    unknown_mask,
)
from conversations.context_json import ContextError, parse_context
from conversations.schema import (
    DEFAULT_TRUST,
    ID_MAX_CHARS,
    MESSAGE_COLUMNS,
    QUARANTINE_COLUMNS,
    LabelSource,
    LabelTrust,
    Speaker,
)
from conversations.timestamps import bad_time_mask

SPEAKERS = {speaker.value for speaker in Speaker}
# NUL and the other C0 controls (tab, newline and carriage return aside) and DEL never belong in a
# message; they are binary garbage or terminal escapes, and some SQL stores refuse NUL outright.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# An intent name is one line: a break in it splits the label in every line-based report and
# file. Its length bound (ID_MAX_CHARS) is the one the service refuses longer names with.
INTENT_LINE_BREAKS = re.compile("[\t\n\r\x85\u2028\u2029]")
LABEL_SOURCES = {source.value for source in LabelSource}
LABEL_TRUSTS = {trust.value for trust in LabelTrust}
NO_LABEL = LabelSource.NONE.value
# The trust a label gets when its row names none, by source (plain strings: read once a row).
TRUST_BY_SOURCE = {source: trust.value for source, trust in DEFAULT_TRUST.items()}
# json.dumps with an option builds an encoder per call; one encoder writes the same text.
CANONICAL_JSON = json.JSONEncoder(sort_keys=True)


@dataclass(frozen=True)
class ValidationResult:
    """Kept rows in the canonical schema (plus lineage) and quarantined rows with reasons."""

    kept: pd.DataFrame
    quarantined: pd.DataFrame

    @property
    def rows_in(self) -> int:
        """Number of raw rows validated."""
        return len(self.kept) + len(self.quarantined)


@dataclass(frozen=True)
class Rejection:
    """Why a row was quarantined: a stable code for counting and a message for people."""

    code: str
    message: str


class _Verdicts:
    """Each row's first rejection, filled check by check in the order of precedence."""

    def __init__(self, rows: int) -> None:
        self.reasons: list[Rejection | None] = [None] * rows
        self.pending = np.ones(rows, dtype=bool)  # rows no check has rejected yet
        # Each context that passed its check, parsed, so kept rows are not parsed twice.
        self.contexts: dict[int, dict[str, Any]] = {}
        # Each time that passed its check (by position), so kept rows' times are read once.
        self.times = pd.Series(dtype="datetime64[ns, UTC]")

    def reject(self, failed: np.ndarray, why: Callable[[int], Rejection]) -> None:
        """Reject the pending rows where `failed` holds; `why(position)` says why."""
        for position in np.flatnonzero(self.pending & failed).tolist():
            self.reasons[position] = why(position)
            self.pending[position] = False


def quarantine_reasons(raw: pd.DataFrame, max_text_chars: int) -> list[Rejection | None]:
    """Why each raw row cannot be kept, or None when it is valid (duplicates are checked apart).

    A row with several problems gets the first in this order: read error, empty text, control
    characters (text before intent), intent with a line break or tab, intent too long, text too
    long, missing label, unknown speaker, label source, label trust, missing conversation_id,
    context, timestamp.
    """
    return _check_rows(raw, max_text_chars).reasons


def _check_rows(raw: pd.DataFrame, max_text_chars: int) -> _Verdicts:
    verdicts = _Verdicts(len(raw))
    read_error, read_code = by_position(raw, "read_error"), by_position(raw, "read_error_code")
    verdicts.reject(
        ~blank_mask(read_error) | ~blank_mask(read_code),
        lambda at: _read_rejection(read_error[at], read_code[at]),
    )
    text = by_position(raw, "text")
    verdicts.reject(blank_mask(text), lambda _: Rejection("empty_text", "empty text"))
    for name in ("text", "intent"):
        values = by_position(raw, name)
        verdicts.reject(
            contains_mask(values, CONTROL_CHARACTERS),
            partial(_control_rejection, name, values),
        )
    _reject_bad_intents(by_position(raw, "intent"), verdicts)
    lengths = text_lengths(text)
    verdicts.reject(
        lengths > max_text_chars,
        lambda at: Rejection(
            "text_too_long", f"text longer than {max_text_chars} characters ({lengths[at]})"
        ),
    )
    verdicts.reject(
        set_mask(by_position(raw, "label_required")) & blank_mask(by_position(raw, "intent")),
        lambda _: Rejection("missing_label", "missing label (this source requires one)"),
    )
    _reject_unknown_values(raw, verdicts)
    verdicts.reject(
        blank_mask(by_position(raw, "conversation_id")),
        lambda _: Rejection("missing_conversation_id", "missing conversation_id"),
    )
    _reject_bad_contexts(by_position(raw, "context"), verdicts)
    ts = by_position(raw, "ts")
    bad_times, verdicts.times = bad_time_mask(ts, verdicts.pending & ~blank_mask(ts))
    verdicts.reject(
        bad_times,
        lambda at: Rejection("bad_timestamp", f"bad timestamp {ts[at]!r} (expected ISO-8601)"),
    )
    return verdicts


def _reject_bad_intents(intent: pd.Series, verdicts: _Verdicts) -> None:
    verdicts.reject(
        contains_mask(intent, INTENT_LINE_BREAKS),
        lambda at: Rejection(
            "bad_intent", f"intent contains a line break or tab: {str(intent[at])[:60]!r}"
        ),
    )
    lengths = text_lengths(intent)
    verdicts.reject(
        ~blank_mask(intent) & (lengths > ID_MAX_CHARS),
        lambda at: Rejection(
            "intent_too_long", f"intent longer than {ID_MAX_CHARS} characters ({lengths[at]})"
        ),
    )


def _reject_unknown_values(raw: pd.DataFrame, verdicts: _Verdicts) -> None:
    speaker = by_position(raw, "speaker")
    expected = ", ".join(sorted(SPEAKERS))
    verdicts.reject(
        unknown_mask(speaker, SPEAKERS),
        lambda at: Rejection(
            "unknown_speaker", f"unknown speaker {speaker[at]!r} (expected {expected})"
        ),
    )
    for name, allowed in (("label_source", LABEL_SOURCES), ("label_trust", LABEL_TRUSTS)):
        values = by_position(raw, name)
        verdicts.reject(
            ~blank_mask(values) & unknown_mask(values, allowed),
            partial(_unknown_rejection, name, values),
        )


def _reject_bad_contexts(contexts: pd.Series, verdicts: _Verdicts) -> None:
    # JSON is parsed value by value, only for rows still pending: a context that cannot even be
    # parsed must not stop the run when the row is quarantined for another reason already.
    problems: dict[int, str] = {}
    values = contexts.to_numpy()
    for position in np.flatnonzero(verdicts.pending).tolist():
        try:
            verdicts.contexts[position] = parse_context(values[position])
        except ContextError as error:
            problems[position] = str(error)
    failed = np.zeros(len(contexts), dtype=bool)
    failed[list(problems)] = True
    verdicts.reject(
        failed,
        lambda at: Rejection("unparseable_context", f"unparseable context: {problems[at]}"),
    )


def _unknown_rejection(name: str, values: pd.Series, at: int) -> Rejection:
    return Rejection(f"unknown_{name}", f"unknown {name} {values[at]!r}")


def _control_rejection(name: str, values: pd.Series, at: int) -> Rejection:
    found = CONTROL_CHARACTERS.search(values[at])
    assert found is not None  # only called where the column check found one
    return Rejection(
        "control_characters", f"{name} contains the control character U+{ord(found.group()):04X}"
    )


def _read_rejection(read_error: Any, read_code: Any) -> Rejection:
    error = "" if is_blank(read_error) else str(read_error)
    code = read_code
    if is_blank(code):  # rows read before readers gave a code
        code = "invalid_utf8" if "UTF-8" in error else "unparseable_line"
    return Rejection(str(code), error or str(code))


def _duplicate_reasons(raw: pd.DataFrame, reasons: list[Rejection | None]) -> None:
    """Reject, in `reasons`, every valid row whose message_id an earlier valid row has."""
    valid = [position for position, reason in enumerate(reasons) if reason is None]
    if valid and "message_id" not in raw.columns:
        raise KeyError("message_id")
    ids = by_position(raw, "message_id")[valid].map(str)
    source, line = by_position(raw, "source"), by_position(raw, "source_line")
    for position, first in zip(*first_positions(ids), strict=True):
        reasons[position] = Rejection(
            "duplicate_message_id",
            f"duplicate message_id {ids[position]!r} (first at {source[first]}:{line[first]})",
        )


def validate_messages(raw: pd.DataFrame, max_text_chars: int) -> ValidationResult:
    """Split raw rows into canonical kept rows and quarantined rows, each with a reason."""
    verdicts = _check_rows(raw, max_text_chars)
    reasons = verdicts.reasons
    _duplicate_reasons(raw, reasons)
    keep_mask = pd.Series([reason is None for reason in reasons], index=raw.index)
    quarantined = raw.loc[~keep_mask].copy()
    rejections = [reason for reason in reasons if reason is not None]
    quarantined["reason_code"] = pd.Series(
        [r.code for r in rejections], index=quarantined.index, dtype=object
    )
    quarantined["reason"] = pd.Series(
        [r.message for r in rejections], index=quarantined.index, dtype=object
    )
    quarantined = quarantined.reindex(columns=list(QUARANTINE_COLUMNS)).reset_index(drop=True)
    quarantined["source_line"] = quarantined["source_line"].astype(str)
    kept_at = [at for at, reason in enumerate(reasons) if reason is None]
    contexts = [verdicts.contexts[at] for at in kept_at]
    times = verdicts.times.reindex(kept_at)  # NaT for a kept row without a time
    return ValidationResult(
        kept=_canonical(raw.loc[keep_mask], contexts, times), quarantined=quarantined
    )


def _blanks_to_none(values: pd.Series) -> pd.Series:
    """`values` with every blank entry (None, NaN, "", spaces) replaced by None, dtype kept."""
    # pandas takes None as `other` (object columns get None, not the truthy NaN; string columns
    # get <NA>), but pandas-stubs leave None out of that parameter's type.
    return values.where(~blank_mask(values), None)  # type: ignore[call-overload]


def _canonical(
    rows: pd.DataFrame, contexts: list[dict[str, Any]], times: pd.Series
) -> pd.DataFrame:
    """The kept `rows` in the canonical schema; `contexts` and `times` are theirs, parsed."""
    kept = rows.copy()
    kept["turn"] = pd.to_numeric(kept["turn"], errors="coerce").fillna(0).astype("int64")
    # Each row's time as validation read it (one pandas call per column shifts some: timestamps).
    kept["ts"] = pd.Series(times.to_numpy(), index=kept.index, dtype="datetime64[ns, UTC]")
    kept["intent"] = _blanks_to_none(kept["intent"])
    no_label = kept["intent"].isna()
    kept["label_source"] = _blanks_to_none(kept["label_source"])
    kept.loc[no_label, "label_source"] = LabelSource.NONE.value
    kept["label_source"] = kept["label_source"].fillna(LabelSource.SEED.value)
    kept["label_trust"] = [
        None if source == NO_LABEL else (trust or TRUST_BY_SOURCE[source])
        for source, trust in zip(
            kept["label_source"],
            _blanks_to_none(kept["label_trust"]),
            strict=True,
        )
    ]
    kept["context"] = [CANONICAL_JSON.encode(context) for context in contexts]
    for column in (
        "message_id",
        "conversation_id",
        "speaker",
        "text",
        "channel",
        "user_id",
        "label_trust",
    ):
        kept[column] = kept[column].astype("string")
    kept["source_line"] = kept["source_line"].astype(str)
    return kept[["source", "source_line", *MESSAGE_COLUMNS]].reset_index(drop=True)
