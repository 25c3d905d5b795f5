r"""A JSONL line whose `\ud800` escape is half a character: quarantined, the file still read.

`json.loads` accepts a lone surrogate escape and gives a string no UTF-8 can store; the reader
then failed on the whole file (UnicodeEncodeError), losing every row of the batch.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conversations.jsonl_fields import parse_line
from conversations.readers import read_conversation_jsonl
from conversations.validation import validate_messages

GOOD = {
    "conversation_id": "c-1",
    "turn": 0,
    "speaker": "customer",
    "text": "my card has not arrived",
    "intent": "card_arrival",
}


def _line(**fields: object) -> str:
    # json.dumps escapes a lone surrogate as `\ud800`, as a hostile writer would send it.
    return json.dumps(GOOD | fields)


@pytest.mark.parametrize(
    ("line", "field"),
    [
        (_line(text="card \ud800 lost"), "text"),
        (_line(intent="card_arrival\udfff"), "intent"),
        (_line(user_id="\udc00"), "user_id"),
        (_line(context={"user": {"note": ["ok", "\ud83d"]}}), "context"),
        (_line(**{"\ud800": "x"}), "a key"),
    ],
    ids=["text", "intent", "user_id", "inside-context", "key"],
)
def test_a_lone_surrogate_is_quarantined_naming_the_field(tmp_path: Path, line, field):
    path = tmp_path / "batch.jsonl"
    path.write_text("\n".join([line, _line(turn=1)]) + "\n", encoding="utf-8")
    raw = read_conversation_jsonl(path)
    result = validate_messages(raw, max_text_chars=2000)
    assert result.rows_in == len(raw) == 2  # rows in = kept + quarantined
    assert result.quarantined["reason_code"].tolist() == ["unparseable_line"]
    assert field in result.quarantined["reason"].iloc[0]
    assert "surrogate" in result.quarantined["reason"].iloc[0]
    assert result.kept["source_line"].tolist() == ["2"]


def test_characters_written_as_surrogate_pairs_are_kept():
    # ensure_ascii writes an emoji as a pair of escapes: one character, valid.
    parsed = parse_line(_line(text="card \U0001f600 lost"))
    assert isinstance(parsed, dict)
    assert parsed["text"] == "card \U0001f600 lost"
