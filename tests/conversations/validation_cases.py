"""Raw rows with every kind of problem, and the outcome validation gives each (pinned).

The outcomes were recorded from the row-at-a-time validator before validation became
column-wise; they pin the reason per row, including which reason wins when a row has several.
Changed on purpose since: `now` and times an offset moves out of the nanosecond range are bad
timestamps (they were kept, as the time of parsing or wrapped round), lowercase `t`/`z` is good.
Every row starts from a valid message (`BASE`) and overrides some fields.
"""

from __future__ import annotations

from typing import Any

BASE: dict[str, Any] = {
    "source": "log.jsonl",
    "conversation_id": "c-1",
    "turn": "0",
    "ts": "2026-11-01T10:00:00Z",
    "speaker": "customer",
    "user_id": "u-1",
    "channel": "web",
    "text": "where is my card",
    "intent": "card_arrival",
    "label_source": "agent",
    "context": '{"session": {"message_count": 1}}',
}
MAX_TEXT_CHARS = 50

# (case, overrides of BASE, reason_code or None when kept, reason)
OUTCOMES: list[tuple[str, dict[str, Any], str | None, str | None]] = [
    ("good_utc_z", {}, None, None),
    ("good_offset", {"ts": "2026-11-01T15:30:00+05:30"}, None, None),
    ("good_naive_space", {"ts": "2026-11-01 10:00:00"}, None, None),
    ("good_date_only", {"ts": "2026-11-01"}, None, None),
    ("good_nanoseconds", {"ts": "2026-11-01T10:00:00.123456789-08:00"}, None, None),
    ("good_lowercase_t_z", {"ts": "2026-11-01t10:00:00z"}, None, None),
    ("good_compact", {"ts": "20261101T100000Z"}, None, None),
    ("good_padded", {"ts": " 2026-11-01T10:00:00Z "}, None, None),
    ("good_no_ts", {"ts": None}, None, None),
    ("good_blank_ts", {"ts": "   "}, None, None),
    (
        "ts_words",
        {"ts": "yesterday-ish"},
        "bad_timestamp",
        "bad timestamp 'yesterday-ish' (expected ISO-8601)",
    ),
    (
        "ts_month_13",
        {"ts": "2026-13-01T00:00:00Z"},
        "bad_timestamp",
        "bad timestamp '2026-13-01T00:00:00Z' (expected ISO-8601)",
    ),
    ("ts_now", {"ts": "now"}, "bad_timestamp", "bad timestamp 'now' (expected ISO-8601)"),
    (
        "ts_epoch",
        {"ts": "1700000000"},
        "bad_timestamp",
        "bad timestamp '1700000000' (expected ISO-8601)",
    ),
    (
        "ts_offset_25h",
        {"ts": "2026-11-01T10:00:00+25:00"},
        "bad_timestamp",
        "bad timestamp '2026-11-01T10:00:00+25:00' (expected ISO-8601)",
    ),
    (
        "ts_year_9999",
        {"ts": "9999-12-31T23:59:59Z"},
        "bad_timestamp",
        "bad timestamp '9999-12-31T23:59:59Z' (expected ISO-8601)",
    ),
    (
        "ts_week",
        {"ts": "2026-W01"},
        "bad_timestamp",
        "bad timestamp '2026-W01' (expected ISO-8601)",
    ),
    (
        "ts_leap_second",
        {"ts": "2026-06-30T23:59:60Z"},
        "bad_timestamp",
        "bad timestamp '2026-06-30T23:59:60Z' (expected ISO-8601)",
    ),
    (
        "ts_us_format",
        {"ts": "11/01/2026 10:00"},
        "bad_timestamp",
        "bad timestamp '11/01/2026 10:00' (expected ISO-8601)",
    ),
    (
        "ts_feb_30",
        {"ts": "2026-02-30"},
        "bad_timestamp",
        "bad timestamp '2026-02-30' (expected ISO-8601)",
    ),
    (
        "read_error_coded",
        {
            "read_error_code": "unclosed_quote",
            "read_error": "a quote opened on line 4 is not closed (the file ends)",
            "text": "",
        },
        "unclosed_quote",
        "a quote opened on line 4 is not closed (the file ends)",
    ),
    (
        "read_error_legacy_utf8",
        {"read_error": "line is not valid UTF-8"},
        "invalid_utf8",
        "line is not valid UTF-8",
    ),
    (
        "read_error_legacy_other",
        {"read_error": "unparseable JSON: Expecting value (column 1)"},
        "unparseable_line",
        "unparseable JSON: Expecting value (column 1)",
    ),
    (
        "read_error_code_only",
        {"read_error_code": "row_too_large", "speaker": "robot"},
        "row_too_large",
        "row_too_large",
    ),
    ("read_error_blank", {"read_error": "  ", "read_error_code": ""}, None, None),
    ("text_none", {"text": None}, "empty_text", "empty text"),
    ("text_spaces_tabs", {"text": "  \t "}, "empty_text", "empty text"),
    ("text_unicode_spaces", {"text": "\xa0\u2003"}, "empty_text", "empty text"),
    ("text_vertical_tab", {"text": "\x0b"}, "empty_text", "empty text"),
    ("text_unit_separator", {"text": "\x1f\x1f"}, "empty_text", "empty text"),
    ("text_empty_bad_speaker", {"text": "", "speaker": "robot"}, "empty_text", "empty text"),
    (
        "text_nul",
        {"text": "my card\x00 is blocked"},
        "control_characters",
        "text contains the control character U+0000",
    ),
    (
        "text_only_nul",
        {"text": "\x00"},
        "control_characters",
        "text contains the control character U+0000",
    ),
    (
        "text_del",
        {"text": "hello\x7f"},
        "control_characters",
        "text contains the control character U+007F",
    ),
    (
        "text_escape_and_intent_nul",
        {"text": "\x1b[31mred", "intent": "card\x00"},
        "control_characters",
        "text contains the control character U+001B",
    ),
    (
        "intent_escape",
        {"intent": "\x1b[0mcard_arrival"},
        "control_characters",
        "intent contains the control character U+001B",
    ),
    ("text_tab_newline_ok", {"text": "line one\n\tline two\r\n"}, None, None),
    (
        "text_nul_too_long",
        {"text": "\x00" + "x" * 60},
        "control_characters",
        "text contains the control character U+0000",
    ),
    ("text_at_limit", {"text": "y" * 50}, None, None),
    (
        "text_over_limit",
        {"text": "z" * 51},
        "text_too_long",
        "text longer than 50 characters (51)",
    ),
    (
        "text_too_long_missing_label",
        {
            "text": "w" * 80,
            "intent": None,
            "label_required": True,
        },
        "text_too_long",
        "text longer than 50 characters (80)",
    ),
    (
        "missing_label_none",
        {"intent": None, "label_required": True, "label_source": "seed"},
        "missing_label",
        "missing label (this source requires one)",
    ),
    (
        "missing_label_blank",
        {"intent": "  ", "label_required": True, "speaker": "robot"},
        "missing_label",
        "missing label (this source requires one)",
    ),
    ("label_required_ok", {"label_required": True, "label_source": "seed"}, None, None),
    ("no_label_ok", {"intent": None, "label_source": None}, None, None),
    (
        "speaker_capitalised",
        {"speaker": "Customer"},
        "unknown_speaker",
        "unknown speaker 'Customer' (expected agent, bot, customer)",
    ),
    (
        "speaker_none",
        {"speaker": None, "label_source": "human"},
        "unknown_speaker",
        "unknown speaker None (expected agent, bot, customer)",
    ),
    (
        "speaker_blank",
        {"speaker": ""},
        "unknown_speaker",
        "unknown speaker '' (expected agent, bot, customer)",
    ),
    (
        "label_source_unknown",
        {"label_source": "human", "label_trust": "high", "conversation_id": None},
        "unknown_label_source",
        "unknown label_source 'human'",
    ),
    ("label_source_blank_ok", {"label_source": "  "}, None, None),
    (
        "label_trust_unknown",
        {"label_trust": "high", "conversation_id": None},
        "unknown_label_trust",
        "unknown label_trust 'high'",
    ),
    ("label_trust_ok", {"label_trust": "reviewed"}, None, None),
    (
        "conversation_id_none",
        {"conversation_id": None, "context": "{not json"},
        "missing_conversation_id",
        "missing conversation_id",
    ),
    (
        "conversation_id_blank",
        {"conversation_id": " \n"},
        "missing_conversation_id",
        "missing conversation_id",
    ),
    (
        "context_not_json",
        {"context": "{not json", "ts": "yesterday"},
        "unparseable_context",
        "unparseable context: not valid JSON (Expecting property name enclosed in double quotes: "
        "line 1 column 2 (char 1))",
    ),
    (
        "context_array",
        {"context": "[1, 2]"},
        "unparseable_context",
        "unparseable context: expected a JSON object, got list",
    ),
    (
        "context_string_count",
        {"context": '{"user": {"message_count": "many"}}'},
        "unparseable_context",
        "unparseable context: user.message_count must be a number, got 'many'",
    ),
    (
        "context_bool_count",
        {"context": '{"session": {"duration_s": true}}'},
        "unparseable_context",
        "unparseable context: session.duration_s must be a number, got True",
    ),
    (
        "context_group_not_object",
        {"context": '{"user": 5}'},
        "unparseable_context",
        "unparseable context: user must be an object, got 5",
    ),
    (
        "context_intents_not_list",
        {"context": '{"session": {"previous_intents": "x"}}'},
        "unparseable_context",
        "unparseable context: session.previous_intents must be a list, got 'x'",
    ),
    ("context_empty_ok", {"context": ""}, None, None),
    ("context_none_ok", {"context": None}, None, None),
    ("context_extra_keys_ok", {"context": '{"b": 1, "a": {"x": [1]}}'}, None, None),
    ("dup_first", {"message_id": "dup"}, None, None),
    (
        "dup_second",
        {"message_id": "dup", "text": "again"},
        "duplicate_message_id",
        "duplicate message_id 'dup' (first at log.jsonl:64)",
    ),
    (
        "dup_third",
        {"message_id": "dup", "text": "and again", "source": "other.jsonl"},
        "duplicate_message_id",
        "duplicate message_id 'dup' (first at log.jsonl:64)",
    ),
    ("dup_after_bad_first_bad", {"message_id": "late", "text": ""}, "empty_text", "empty text"),
    ("dup_after_bad_first_good", {"message_id": "late"}, None, None),
    (
        "dup_bad_row_not_counted",
        {"message_id": "dup", "speaker": "robot"},
        "unknown_speaker",
        "unknown speaker 'robot' (expected agent, bot, customer)",
    ),
    ("id_none_first", {"message_id": None}, None, None),
    (
        "id_none_second",
        {"message_id": None},
        "duplicate_message_id",
        "duplicate message_id 'None' (first at log.jsonl:70)",
    ),
    ("ts_offset_minus5", {"ts": "2026-11-01T10:00:00-05:00"}, None, None),
    ("ts_naive_near_max_after_offset", {"ts": "2262-04-11T20:00:00"}, None, None),
    (
        "ts_past_max_by_offset",
        {"ts": "2262-04-11T23:00:00-05:00"},
        "bad_timestamp",
        "bad timestamp '2262-04-11T23:00:00-05:00' (expected ISO-8601)",
    ),
    (
        "ts_before_min_by_offset",
        {"ts": "1677-09-21T00:13:00+05:00"},
        "bad_timestamp",
        "bad timestamp '1677-09-21T00:13:00+05:00' (expected ISO-8601)",
    ),
    ("ts_min_ok", {"ts": "1677-09-22T00:00:00Z"}, None, None),
    ("ts_today", {"ts": " today "}, "bad_timestamp", "bad timestamp ' today ' (expected ISO-8601)"),
    ("good_offset_then_naive", {"ts": "2026-11-01T15:30:00+05:30"}, None, None),
    ("good_naive_after_offset", {"ts": "2026-11-01 10:00:00"}, None, None),
    ("good_compact_after_offset", {"ts": "20261101T100000"}, None, None),
    ("good_max_ok", {"ts": "2262-04-11T23:00:00Z"}, None, None),
    (
        "intent_newline",
        {"intent": "card_arrival\nrefund"},
        "bad_intent",
        "intent contains a line break or tab: 'card_arrival\\nrefund'",
    ),
    (
        "intent_line_separator_and_too_long",
        {"intent": "a\u2028" + "b" * 200},
        "bad_intent",
        "intent contains a line break or tab: " + repr("a\u2028" + "b" * 58),
    ),
    ("intent_at_limit", {"intent": "i" * 128}, None, None),
    (
        "intent_over_limit",
        {"intent": "i" * 129, "ts": "soon"},
        "intent_too_long",
        "intent longer than 128 characters (129)",
    ),
    (
        "text_too_long_and_intent_too_long",
        {"text": "t" * 51, "intent": "i" * 300},
        "intent_too_long",
        "intent longer than 128 characters (300)",
    ),
]


def raw_rows() -> list[dict[str, Any]]:
    """The rows of `OUTCOMES`, in order, with lineage (line = position + 1) and message ids."""
    return [
        BASE | {"source_line": line, "message_id": f"m-{line}"} | overrides
        for line, (_, overrides, _, _) in enumerate(OUTCOMES, start=1)
    ]
