"""The canonical conversation message: one row per message (see data/README.md)."""

from __future__ import annotations

from enum import StrEnum

MESSAGE_COLUMNS: tuple[str, ...] = (
    "message_id",
    "conversation_id",
    "turn",
    "ts",
    "speaker",
    "user_id",
    "channel",
    "text",
    "intent",
    "label_source",
    "context",
)
# Lineage columns every ingested row carries, so a quarantined row can be found again.
LINEAGE_COLUMNS: tuple[str, ...] = ("source", "source_line")
# Set by a reader when a row cannot even be decoded (bad UTF-8, bad JSON line, broken quoting):
# a `ReadProblem` code and a message naming what is wrong.
READ_ERROR_CODE_COLUMN = "read_error_code"
READ_ERROR_COLUMN = "read_error"
# True for sources that exist to provide labels (labelled CSVs): a row without one is quarantined.
LABEL_REQUIRED_COLUMN = "label_required"
RAW_COLUMNS: tuple[str, ...] = (
    *LINEAGE_COLUMNS,
    *MESSAGE_COLUMNS,
    READ_ERROR_CODE_COLUMN,
    READ_ERROR_COLUMN,
    LABEL_REQUIRED_COLUMN,
)
QUARANTINE_COLUMNS: tuple[str, ...] = (
    "source",
    "source_line",
    "message_id",
    "text",
    "intent",
    "reason_code",
    "reason",
)


class ReadProblem(StrEnum):
    """Why a reader could not turn a row of a file into fields (quarantine reason codes)."""

    INVALID_UTF8 = "invalid_utf8"
    UNPARSEABLE_LINE = "unparseable_line"  # a JSONL line that is not one JSON object
    UNCLOSED_QUOTE = "unclosed_quote"
    MALFORMED_QUOTE = "malformed_quote"
    ROW_TOO_LARGE = "row_too_large"
    TOO_MANY_COLUMNS = "too_many_columns"
    WRONG_TYPE = "wrong_type"  # a JSONL field of another JSON type than the schema's
    TURN_OUT_OF_RANGE = "turn_out_of_range"


class Speaker(StrEnum):
    """Who wrote a message."""

    CUSTOMER = "customer"
    BOT = "bot"
    AGENT = "agent"


class LabelSource(StrEnum):
    """Where an intent label came from; later sources override earlier ones for the same text."""

    SEED = "seed"
    FEEDBACK = "feedback"
    AGENT = "agent"
    NONE = "none"


class LabelTrust(StrEnum):
    """How far a label given after the fact (feedback, agent) is trusted; see data/README.md.

    The frozen test split the gate scores on is only ever relabelled by `reviewed` labels, and
    `unverified` labels (written before labels carried a trust level) never train or judge a model.
    """

    UNVERIFIED = "unverified"
    SERVICE = "service"  # an API-key client of /feedback (e.g. the chat backend)
    AGENT = (
        "agent"  # a signed-in support agent (chat `label_message`, or /feedback with an agent JWT)
    )
    REVIEWED = "reviewed"  # confirmed by an operator (admin API key)

    @property
    def rank(self) -> int:
        """Order of trust: a higher rank may do everything a lower one may."""
        return list(LabelTrust).index(self)

    def at_least(self, other: LabelTrust) -> bool:
        """Whether this level is `other` or above."""
        return self.rank >= other.rank


# The context keys the feature library understands (nested as user.* and session.*).
CONTEXT_NUMERIC_KEYS: tuple[tuple[str, str], ...] = (
    ("user", "message_count"),
    ("user", "satisfaction_score"),
    ("session", "duration_s"),
    ("session", "message_count"),
)
CONTEXT_LIST_KEYS: tuple[tuple[str, str], ...] = (
    ("user", "previous_intents"),
    ("session", "previous_intents"),
)


def normalise_text(text: str) -> str:
    """Casefold and collapse whitespace: the identity of an utterance for labels and splits."""
    return " ".join(text.casefold().split())
