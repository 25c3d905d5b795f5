"""Row validation: every raw row is either kept (typed, canonical) or quarantined with a reason.

Pure logic over DataFrames, no I/O: rows in = rows kept + rows quarantined, always.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, cast

import pandas as pd

from conversations.schema import (
    CONTEXT_LIST_KEYS,
    CONTEXT_NUMERIC_KEYS,
    DEFAULT_TRUST,
    MESSAGE_COLUMNS,
    QUARANTINE_COLUMNS,
    LabelSource,
    LabelTrust,
    Speaker,
)

SPEAKERS = {speaker.value for speaker in Speaker}
# NUL and the other C0 controls (tab, newline and carriage return aside) and DEL never belong in a
# message; they are binary garbage or terminal escapes, and some SQL stores refuse NUL outright.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
LABEL_SOURCES = {source.value for source in LabelSource}
LABEL_TRUSTS = {trust.value for trust in LabelTrust}


@dataclass(frozen=True)
class ValidationResult:
    """Kept rows in the canonical schema (plus lineage) and quarantined rows with reasons."""

    kept: pd.DataFrame
    quarantined: pd.DataFrame

    @property
    def rows_in(self) -> int:
        """Number of raw rows validated."""
        return len(self.kept) + len(self.quarantined)


class ContextError(ValueError):
    """A context value that is not a JSON object of the documented shape."""


def parse_context(raw: Any) -> dict[str, Any]:
    """Parse a context JSON object and check the documented keys have the documented types."""
    if raw is None or (isinstance(raw, float) and pd.isna(raw)) or raw == "":
        return {}
    if isinstance(raw, dict):
        context = raw
    else:
        try:
            context = json.loads(raw)
        except (TypeError, json.JSONDecodeError) as error:
            raise ContextError(f"not valid JSON ({error})") from error
    if not isinstance(context, dict):
        raise ContextError(f"expected a JSON object, got {type(context).__name__}")
    for group, key in CONTEXT_NUMERIC_KEYS:
        value = _nested(context, group, key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise ContextError(f"{group}.{key} must be a number, got {value!r}")
    for group, key in CONTEXT_LIST_KEYS:
        value = _nested(context, group, key)
        if value is not None and not isinstance(value, list):
            raise ContextError(f"{group}.{key} must be a list, got {value!r}")
    return context


def _nested(context: dict[str, Any], group: str, key: str) -> Any:
    section = context.get(group)
    if section is None:
        return None
    if not isinstance(section, dict):
        raise ContextError(f"{group} must be an object, got {section!r}")
    return section.get(key)


def _blank(value: Any) -> bool:
    return (
        value is None or (isinstance(value, float) and pd.isna(value)) or str(value).strip() == ""
    )


def _flag(value: Any) -> bool:
    # pandas hands back numpy booleans, NaN or None for a missing flag.
    return value is not None and not (isinstance(value, float) and pd.isna(value)) and bool(value)


@dataclass(frozen=True)
class Rejection:
    """Why a row was quarantined: a stable code for counting and a message for people."""

    code: str
    message: str


def quarantine_reason(row: dict[str, Any], max_text_chars: int) -> Rejection | None:
    """Why a raw row cannot be kept, or None when it is valid (duplicates are checked apart)."""
    if not _blank(row.get("read_error")) or not _blank(row.get("read_error_code")):
        return _read_rejection(row)
    text = row.get("text")
    if _blank(text):
        return Rejection("empty_text", "empty text")
    for name in ("text", "intent"):
        value = row.get(name)
        if isinstance(value, str) and (found := CONTROL_CHARACTERS.search(value)):
            return Rejection(
                "control_characters",
                f"{name} contains the control character U+{ord(found.group()):04X}",
            )
    if len(str(text)) > max_text_chars:
        return Rejection(
            "text_too_long", f"text longer than {max_text_chars} characters ({len(str(text))})"
        )
    if _flag(row.get("label_required")) and _blank(row.get("intent")):
        return Rejection("missing_label", "missing label (this source requires one)")
    speaker = row.get("speaker")
    if speaker not in SPEAKERS:
        expected = ", ".join(sorted(SPEAKERS))
        return Rejection("unknown_speaker", f"unknown speaker {speaker!r} (expected {expected})")
    label_source = row.get("label_source")
    if not _blank(label_source) and label_source not in LABEL_SOURCES:
        return Rejection("unknown_label_source", f"unknown label_source {label_source!r}")
    label_trust = row.get("label_trust")
    if not _blank(label_trust) and label_trust not in LABEL_TRUSTS:
        return Rejection("unknown_label_trust", f"unknown label_trust {label_trust!r}")
    if _blank(row.get("conversation_id")):
        return Rejection("missing_conversation_id", "missing conversation_id")
    try:
        parse_context(row.get("context"))
    except ContextError as error:
        return Rejection("unparseable_context", f"unparseable context: {error}")
    ts = row.get("ts", "")
    if not _blank(ts) and pd.isna(pd.to_datetime(ts, utc=True, errors="coerce", format="ISO8601")):
        return Rejection("bad_timestamp", f"bad timestamp {ts!r} (expected ISO-8601)")
    return None


def _read_rejection(row: dict[str, Any]) -> Rejection:
    error = "" if _blank(row.get("read_error")) else str(row["read_error"])
    code = row.get("read_error_code")
    if _blank(code):  # rows read before readers gave a code
        code = "invalid_utf8" if "UTF-8" in error else "unparseable_line"
    return Rejection(str(code), error or str(code))


def validate_messages(raw: pd.DataFrame, max_text_chars: int) -> ValidationResult:
    """Split raw rows into canonical kept rows and quarantined rows, each with a reason."""
    # The readers name every column by a string; pandas types the keys as any Hashable.
    records = cast(list[dict[str, Any]], raw.to_dict("records"))
    reasons = [quarantine_reason(record, max_text_chars) for record in records]
    first_seen: dict[str, str] = {}
    for position, record in enumerate(records):
        if reasons[position] is not None:
            continue
        message_id = str(record["message_id"])
        where = f"{record['source']}:{record['source_line']}"
        if message_id in first_seen:
            reasons[position] = Rejection(
                "duplicate_message_id",
                f"duplicate message_id {message_id!r} (first at {first_seen[message_id]})",
            )
        else:
            first_seen[message_id] = where
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
    return ValidationResult(kept=_canonical(raw.loc[keep_mask]), quarantined=quarantined)


def _blanks_to_none(values: pd.Series) -> pd.Series:
    """`values` with every blank entry (None, NaN, "", spaces) replaced by None, dtype kept."""
    # pandas takes None as `other` (object columns get None, not the truthy NaN; string columns
    # get <NA>), but pandas-stubs leave None out of that parameter's type.
    return values.where(~values.map(_blank), None)  # type: ignore[call-overload]


def _canonical(rows: pd.DataFrame) -> pd.DataFrame:
    kept = rows.copy()
    kept["turn"] = pd.to_numeric(kept["turn"], errors="coerce").fillna(0).astype("int64")
    kept["ts"] = pd.to_datetime(kept["ts"], utc=True, errors="coerce", format="ISO8601")
    kept["intent"] = _blanks_to_none(kept["intent"])
    no_label = kept["intent"].isna()
    kept["label_source"] = _blanks_to_none(kept["label_source"])
    kept.loc[no_label, "label_source"] = LabelSource.NONE.value
    kept["label_source"] = kept["label_source"].fillna(LabelSource.SEED.value)
    kept["label_trust"] = [
        None if source == LabelSource.NONE.value else (trust or DEFAULT_TRUST[source].value)
        for source, trust in zip(
            kept["label_source"],
            _blanks_to_none(kept["label_trust"]),
            strict=True,
        )
    ]
    kept["context"] = [
        json.dumps(parse_context(value), sort_keys=True) for value in kept["context"]
    ]
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
