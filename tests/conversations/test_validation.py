from pathlib import Path

import pandas as pd
import pytest

from conversations.raw_rows import raw_frame
from conversations.readers import SourceSchemaError, read_conversation_jsonl, read_labelled_csv
from conversations.validation import ValidationResult, parse_context, validate_messages
from pipelines.partitions import utc_day
from tests.conftest import BAD_ROW_CODES
from tests.conversations.validation_cases import BASE, MAX_TEXT_CHARS, OUTCOMES, raw_rows


def _raw(files: dict[str, Path]) -> pd.DataFrame:
    return pd.concat(
        [read_labelled_csv(files["csv"]), read_conversation_jsonl(files["jsonl"])],
        ignore_index=True,
    )


def test_every_bad_row_kind_is_quarantined_with_its_reason(bad_rows_files):
    raw = _raw(bad_rows_files)
    result = validate_messages(raw, max_text_chars=2000)
    assert set(result.quarantined["reason_code"]) == BAD_ROW_CODES
    assert result.quarantined["reason_code"].is_unique
    assert len(result.kept) + len(result.quarantined) == len(raw)
    kept_texts = set(result.kept["text"])
    assert kept_texts == {"Where is my new card?", "I want to cancel a transfer", "Done."}


def test_quarantined_rows_keep_source_and_line(bad_rows_files):
    quarantined = validate_messages(_raw(bad_rows_files), max_text_chars=2000).quarantined
    by_code = quarantined.set_index("reason_code")
    assert by_code.loc["empty_text", "source"] == "labelled.csv"
    assert by_code.loc["empty_text", "source_line"] == "3"
    assert by_code.loc["invalid_utf8", "source_line"] == "7"
    assert by_code.loc["duplicate_message_id", "source_line"] == "2"
    assert "first at conversations.jsonl:1" in by_code.loc["duplicate_message_id", "reason"]
    assert "yesterday-ish" in by_code.loc["bad_timestamp", "reason"]


def test_kept_rows_are_canonical(bad_rows_files):
    kept = validate_messages(_raw(bad_rows_files), max_text_chars=2000).kept.set_index("text")
    assert str(kept["ts"].dtype) == "datetime64[ns, UTC]"
    assert kept.loc["Done.", "label_source"] == "agent"
    assert kept.loc["Where is my new card?", "label_source"] == "seed"
    assert kept.loc["Where is my new card?", "context"] == '{"user": {"message_count": 3}}'


def test_missing_text_column_fails_the_file_naming_file_and_column(tmp_path):
    path = tmp_path / "no_text.csv"
    path.write_text("utterance,category\nhello,greeting\n")
    with pytest.raises(SourceSchemaError, match=r"no_text\.csv.*text column.*user_message"):
        read_labelled_csv(path)


def test_unparseable_jsonl_line_is_quarantined_not_dropped(tmp_path):
    path = tmp_path / "broken.jsonl"
    path.write_text('{"text": "ok", "speaker": "customer", "conversation_id": "c"}\n{oops\n')
    result = validate_messages(read_conversation_jsonl(path), max_text_chars=100)
    assert len(result.kept) == 1
    assert result.quarantined["reason_code"].tolist() == ["unparseable_line"]


@pytest.mark.parametrize(
    "raw",
    ['{"user": {"message_count": "many"}}', '{"session": {"previous_intents": "x"}}', "[1, 2]"],
)
def test_context_with_wrong_types_is_rejected(raw):
    with pytest.raises(ValueError):
        parse_context(raw)


def _outcomes(result: ValidationResult) -> dict[str, tuple[str | None, str | None]]:
    """(reason_code, reason) per source_line; (None, None) for a kept row."""
    outcomes: dict[str, tuple[str | None, str | None]] = {
        line: (None, None) for line in result.kept["source_line"]
    }
    out = result.quarantined
    for line, code, reason in zip(
        out["source_line"], out["reason_code"], out["reason"], strict=True
    ):
        outcomes[str(line)] = (str(code), str(reason))
    return outcomes


def test_every_row_gets_its_pinned_outcome() -> None:
    """Each bad row's reason (and which reason wins when a row has several) stays as recorded."""
    rows = raw_rows()
    result = validate_messages(raw_frame(rows), MAX_TEXT_CHARS)
    expected = {
        str(line): (code, reason) for line, (_, _, code, reason) in enumerate(OUTCOMES, start=1)
    }
    assert _outcomes(result) == expected
    assert result.rows_in == len(rows)
    assert result.kept["source_line"].tolist() == [
        line for line, outcome in expected.items() if outcome == (None, None)
    ]
    assert result.quarantined["source_line"].tolist() == [
        line for line, outcome in expected.items() if outcome != (None, None)
    ]


def test_a_rows_outcome_does_not_depend_on_its_neighbours() -> None:
    """Each row validated alone gets the outcome it gets among all the others (ids aside)."""
    rows = raw_rows()
    together = _outcomes(validate_messages(raw_frame(rows), MAX_TEXT_CHARS))
    for row in rows:
        alone = _outcomes(validate_messages(raw_frame([row]), MAX_TEXT_CHARS))
        line = str(row["source_line"])
        if together[line][0] != "duplicate_message_id":
            assert alone == {line: together[line]}, row


def test_kept_rows_without_a_usable_time_have_none() -> None:
    result = validate_messages(raw_frame(raw_rows()), MAX_TEXT_CHARS)
    no_time = {
        str(line)
        for line, (_, overrides, code, _) in enumerate(OUTCOMES, start=1)
        if code is None and (overrides.get("ts", BASE["ts"]) or " ").strip() == ""
    }
    assert set(result.kept.loc[result.kept["ts"].isna(), "source_line"]) == no_time


def _line_of(case: str) -> str:
    return next(str(line) for line, row in enumerate(OUTCOMES, start=1) if row[0] == case)


def test_kept_times_are_read_each_on_its_own_terms() -> None:
    """A time without offset is UTC whatever offset an earlier row had; each as if alone."""
    rows = raw_rows()
    kept = validate_messages(raw_frame(rows), MAX_TEXT_CHARS).kept.set_index("source_line")
    for row in rows:
        line = str(row["source_line"])
        if line in kept.index:
            alone = validate_messages(raw_frame([row]), MAX_TEXT_CHARS).kept["ts"].iloc[0]
            assert kept.loc[line, "ts"] is alone or kept.loc[line, "ts"] == alone, row
    expected = {
        "good_naive_after_offset": "2026-11-01T10:00:00Z",
        "good_compact_after_offset": "2026-11-01T10:00:00Z",
        "good_offset_then_naive": "2026-11-01T10:00:00Z",
        "good_lowercase_t_z": "2026-11-01T10:00:00Z",
        "ts_naive_near_max_after_offset": "2262-04-11T20:00:00Z",
        "good_max_ok": "2262-04-11T23:00:00Z",
    }
    for case, utc in expected.items():
        assert kept.loc[_line_of(case), "ts"] == pd.Timestamp(utc), case


def _nested(depth: int) -> str:
    """A JSON object whose innermost value, an empty list, is `depth` levels deep."""
    return '{"a": ' * (depth - 1) + "[]" + "}" * (depth - 1)


def test_context_nesting_limit() -> None:
    assert parse_context(_nested(64))
    with pytest.raises(ValueError, match="nested more than 64 levels deep"):
        parse_context(_nested(65))


@pytest.mark.parametrize("depth", [65, 900, 5000])
def test_deeply_nested_csv_context_is_quarantined_not_a_crash(tmp_path: Path, depth: int) -> None:
    path = tmp_path / "deep.csv"
    context = _nested(depth).replace('"', '""')
    path.write_text(f'text,category,context\nhello,card_arrival,"{context}"\nok,card_arrival,\n')
    result = validate_messages(read_labelled_csv(path), max_text_chars=100)
    assert result.kept["text"].tolist() == ["ok"]
    assert result.quarantined["reason_code"].tolist() == ["unparseable_context"]
    assert result.quarantined["reason"].tolist() == [
        "unparseable context: nested more than 64 levels deep"
    ]


@pytest.mark.parametrize(
    ("depth", "code"),
    [(65, "unparseable_context"), (900, "unparseable_context"), (5000, "unparseable_line")],
)
def test_deeply_nested_jsonl_context_is_quarantined_not_a_crash(
    tmp_path: Path, depth: int, code: str
) -> None:
    path = tmp_path / "deep.jsonl"
    message = '{"text": "hi", "speaker": "customer", "conversation_id": "c"'
    path.write_text(f'{message}, "context": {_nested(depth)}}}\n{message}}}\n')
    result = validate_messages(read_conversation_jsonl(path), max_text_chars=100)
    assert len(result.kept) == 1
    assert result.quarantined["reason_code"].tolist() == [code]


def test_a_kept_rows_partition_day_is_the_day_of_its_time() -> None:
    """The conversation log files a JSONL row under the UTC day of the time validation keeps."""
    rows = raw_rows()
    kept = validate_messages(raw_frame(rows), MAX_TEXT_CHARS).kept.set_index("source_line")
    for row in rows:
        line = str(row["source_line"])
        if line in kept.index and not pd.isna(kept.loc[line, "ts"]):
            assert utc_day(row["ts"]) == kept.loc[line, "ts"].strftime("%Y-%m-%d"), row
