"""Fuzzed conversation JSONL lines: each gets a clear quarantine reason, none is coerced or lost."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from conversations.lines import MAX_ROW_CHARS
from conversations.readers import read_conversation_jsonl
from conversations.validation import ValidationResult, validate_messages

GOOD: dict[str, Any] = {
    "conversation_id": "c-1",
    "turn": 0,
    "speaker": "customer",
    "text": "my card has not arrived",
    "intent": "card_arrival",
}


def _read(tmp_path: Path, lines: list[str], separator: str = "\n") -> ValidationResult:
    path = tmp_path / "batch.jsonl"
    path.write_text(separator.join(lines) + separator, encoding="utf-8", newline="")
    raw = read_conversation_jsonl(path)
    result = validate_messages(raw, max_text_chars=2000)
    assert result.rows_in == len(raw)  # rows in = kept + quarantined
    return result


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("text", 123, "text must be a string, got a number (123)"),
        ("text", {"a": 1}, 'text must be a string, got an object ({"a": 1})'),
        ("text", ["hi"], "text must be a string, got an array"),
        ("text", True, "text must be a string, got a boolean (true)"),
        ("intent", 5, "intent must be a string, got a number (5)"),
        ("intent", {"name": "card_arrival"}, "intent must be a string, got an object"),
        ("conversation_id", {"id": 1}, "conversation_id must be a string, got an object"),
        ("message_id", 17, "message_id must be a string, got a number (17)"),
        ("speaker", ["customer"], "speaker must be a string, got an array"),
        ("user_id", {"id": "u"}, "user_id must be a string, got an object"),
        ("ts", 1764000000, "ts must be a string, got a number"),
        ("turn", "3", 'turn must be an integer, got a string ("3")'),
        ("turn", 1.5, "turn must be an integer, got a number (1.5)"),
        ("turn", False, "turn must be an integer, got a boolean (false)"),
        ("context", "{}", 'context must be an object, got a string ("{}")'),
        ("context", [1, 2], "context must be an object, got an array"),
    ],
)
def test_field_of_the_wrong_json_type_is_quarantined_not_coerced(tmp_path, field, value, expected):
    result = _read(tmp_path, [json.dumps(GOOD | {field: value}), json.dumps(GOOD | {"turn": 1})])
    assert result.quarantined["reason_code"].tolist() == ["wrong_type"]
    assert result.quarantined["source_line"].tolist() == ["1"]
    assert expected in result.quarantined["reason"][0]
    assert result.kept["source_line"].tolist() == ["2"]


@pytest.mark.parametrize(
    ("line", "code", "expected"),
    [
        (json.dumps(GOOD | {"turn": 10**30}), "turn_out_of_range", "turn must be from 0"),
        (json.dumps(GOOD | {"turn": -1}), "turn_out_of_range", "got a number (-1)"),
        ("1" + "0" * 5000, "unparseable_line", "unparseable JSON"),  # past int() digit limit
        ("[" * 5000 + "]" * 5000, "unparseable_line", "nested too deeply"),
        ('["text", "hi"]', "unparseable_line", "line is an array, not a JSON object"),
        ("null", "unparseable_line", "line is null, not a JSON object"),
        ("1e999", "unparseable_line", "out of range"),
        (json.dumps(GOOD | {"turn": float("nan")}), "unparseable_line", "NaN is not a JSON"),
        ('{"text": "a", "text": "b"}', "unparseable_line", "duplicate key 'text'"),
        (json.dumps(GOOD | {"text": "a\x00b"}), "control_characters", "U+0000"),
        ("x" * (MAX_ROW_CHARS + 1), "row_too_large", f"longer than {MAX_ROW_CHARS}"),
    ],
    ids=[
        "huge-turn",
        "negative-turn",
        "huge-number",
        "deep-nesting",
        "array",
        "null",
        "infinite-float",
        "nan",
        "duplicate-key",
        "nul-in-text",
        "line-over-128-kib",
    ],
)
def test_hostile_line_is_quarantined_and_the_next_line_still_read(tmp_path, line, code, expected):
    result = _read(tmp_path, [line, json.dumps(GOOD)])
    assert result.quarantined["reason_code"].tolist() == [code]
    assert result.quarantined["source_line"].tolist() == ["1"]
    assert expected in result.quarantined["reason"][0]
    assert result.kept["source_line"].tolist() == ["2"]


@pytest.mark.parametrize("separator", ["\r\n", "\r"], ids=["crlf", "cr-only"])
def test_line_endings_keep_every_line(tmp_path, separator):
    lines = [json.dumps(GOOD | {"message_id": f"m-{i}", "turn": i}) for i in range(3)]
    result = _read(tmp_path, lines, separator)
    assert result.quarantined.empty
    assert result.kept["source_line"].tolist() == ["1", "2", "3"]


def test_byte_order_mark_on_the_first_line_is_ignored(tmp_path):
    result = _read(tmp_path, ["\ufeff" + json.dumps(GOOD)])
    assert result.kept["text"].tolist() == [GOOD["text"]]
