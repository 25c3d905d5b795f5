"""Fuzzed labelled-CSV rows: each gets a clear quarantine reason with its line, none is lost."""

from __future__ import annotations

from pathlib import Path

import pytest

from conversations.lines import MAX_ROW_CHARS
from conversations.readers import SourceSchemaError, read_labelled_csv
from conversations.validation import ValidationResult, validate_messages

HEADER = "text,category\n"


def _read(tmp_path: Path, content: str | bytes, name: str = "fuzz.csv") -> ValidationResult:
    path = tmp_path / name
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8", newline="")
    else:
        path.write_bytes(content)
    raw = read_labelled_csv(path)
    result = validate_messages(raw, max_text_chars=2000)
    assert result.rows_in == len(raw)  # rows in = kept + quarantined
    return result


def _kept(result: ValidationResult) -> list[tuple[str, str, str]]:
    kept = result.kept
    return list(zip(kept["source_line"], kept["text"], kept["intent"], strict=True))


def _quarantined(result: ValidationResult) -> list[tuple[str, str]]:
    rows = result.quarantined
    return list(zip(rows["source_line"], rows["reason_code"], strict=True))


def test_unclosed_quote_is_quarantined_and_the_lines_it_swallowed_are_read_again(tmp_path):
    result = _read(
        tmp_path,
        HEADER + 'Where is my card?,card_arrival\n"I was charged twice,extra_charge\n'
        "How do I top up?,top_up\nCancel my transfer,cancel_transfer\n",
    )
    assert _quarantined(result) == [("3", "unclosed_quote")]
    assert "quote opened on line 3 is not closed (the file ends)" in result.quarantined["reason"][0]
    assert "reading resumed on line 4" in result.quarantined["reason"][0]
    assert _kept(result) == [
        ("2", "Where is my card?", "card_arrival"),
        ("4", "How do I top up?", "top_up"),
        ("5", "Cancel my transfer", "cancel_transfer"),
    ]


def test_quote_closed_badly_on_a_later_line_names_both_lines(tmp_path):
    result = _read(tmp_path, HEADER + '"oops,card_arrival\nhello,greeting\n"fine, thanks",thanks\n')
    assert _quarantined(result) == [("2", "unclosed_quote")]
    assert "opened on line 2" in result.quarantined["reason"][0]
    assert "closes badly on line 4" in result.quarantined["reason"][0]
    assert [text for _, text, _ in _kept(result)] == ["hello", "fine, thanks"]


def test_text_after_a_closing_quote_is_a_malformed_quote(tmp_path):
    result = _read(tmp_path, HEADER + '"my card"declined,declined_card_payment\nhi,greeting\n')
    assert _quarantined(result) == [("2", "malformed_quote")]
    assert _kept(result) == [("3", "hi", "greeting")]


@pytest.mark.parametrize(
    ("row", "lines"),
    [
        ("x" * (MAX_ROW_CHARS + 1) + ",card_arrival\n", "line 2"),
        ('"' + ("y" * 999 + "\n") * 200 + '",card_arrival\n', "lines 2-202"),
        ("a," * MAX_ROW_CHARS + "\n", "line 2"),  # extremely many columns
    ],
    ids=["one-line", "quoted-multi-line", "many-columns"],
)
def test_row_over_128_kib_is_quarantined_and_the_rest_of_the_file_is_read(tmp_path, row, lines):
    result = _read(tmp_path, HEADER + row + "hello,greeting\n", name="big.csv")
    assert _quarantined(result) == [("2", "row_too_large")]
    assert f"row ({lines}) is over {MAX_ROW_CHARS} characters" in result.quarantined["reason"][0]
    assert [text for _, text, _ in _kept(result)] == ["hello"]
    assert result.quarantined["source"][0] == "big.csv"


def test_more_values_than_columns_is_quarantined_not_mislabelled(tmp_path):
    # An unquoted comma in the text would shift the label: "hello" labelled " world".
    result = _read(tmp_path, HEADER + "hello, world,greeting\nhi,greeting,,\n")
    assert _quarantined(result) == [("2", "too_many_columns")]
    assert "3 values for 2 columns" in result.quarantined["reason"][0]
    assert _kept(result) == [("3", "hi", "greeting")]  # empty padding values lose nothing


@pytest.mark.parametrize("ending", ["\r\n", "\r"], ids=["crlf", "cr-only"])
def test_line_endings_keep_rows_and_line_numbers(tmp_path, ending):
    content = ending.join(["text,category", '"two', 'lines",card_arrival', "hi,greeting", ""])
    result = _read(tmp_path, content)
    assert _kept(result) == [("2", f"two{ending}lines", "card_arrival"), ("4", "hi", "greeting")]


@pytest.mark.parametrize("text", ["a\x00b", "\x1b[31mred", "\x00"], ids=["nul", "escape", "only"])
def test_control_characters_are_quarantined(tmp_path, text):
    result = _read(tmp_path, HEADER + f"{text},card_arrival\nhi,greeting\n")
    assert _quarantined(result) == [("2", "control_characters")]
    assert _kept(result) == [("3", "hi", "greeting")]


def test_byte_order_mark_before_a_quoted_header_is_ignored(tmp_path):
    result = _read(tmp_path, '\ufeff"text","category"\nhi,greeting\n')
    assert _kept(result) == [("2", "hi", "greeting")]


def test_empty_file_fails_naming_it_and_a_header_only_file_has_no_rows(tmp_path):
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(SourceSchemaError, match=r"empty\.csv: empty file"):
        read_labelled_csv(tmp_path / "empty.csv")
    assert _read(tmp_path, HEADER).rows_in == 0


def test_broken_header_fails_naming_file_and_line(tmp_path):
    (tmp_path / "header.csv").write_text('"text,category\nhi,greeting\n')
    with pytest.raises(SourceSchemaError, match=r"header\.csv:1: .*quote opened on line 1"):
        read_labelled_csv(tmp_path / "header.csv")
