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
    "label_trust",
    "context",
)
# The longest intent name or identifier (user, session, message) anything keeps: ingestion
# quarantines a longer intent (conversations/validation.py), the service refuses one with a 400
# (serving/inputs.py), and the stores' columns are 128 wide (conversations/tables.py).
ID_MAX_CHARS = 128
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


class PredictionRole(StrEnum):
    """Whose answer a `predictions` row is (NULL in rows from before shadow scoring: served)."""

    SERVED = "served"  # the answer the client got
    SHADOW = "shadow"  # the challenger's answer to the same message, never sent (serving/shadow.py)


class LabelSource(StrEnum):
    """Where an intent label came from; later sources override earlier ones for the same text."""

    SEED = "seed"
    FEEDBACK = "feedback"
    AGENT = "agent"
    NONE = "none"


class LabelTrust(StrEnum):
    """How far a label is trusted; it decides where the label may be used (data/README.md).

    The frozen test split the gate scores on takes only `curated` and `reviewed` labels, so
    nothing an API client or an unreviewed agent posts can move the gate's verdict.
    """

    UNVERIFIED = "unverified"  # stored before labels carried a trust level: kept, never used
    CURATED = "curated"  # came with a data set (seed CSVs): the test split's ground truth
    SERVICE = "service"  # posted to /feedback by an API-key client (e.g. the chat backend)
    AGENT = "agent"  # a signed-in support agent (chat `label_message`, /feedback with agent JWT)
    REVIEWED = "reviewed"  # confirmed by an operator (/feedback with the admin key)


# Which label of one message or text wins: the higher rank, then the newest.
TRUST_RANK: dict[str, int] = {trust.value: rank for rank, trust in enumerate(LabelTrust)}

# The trust a label has when its source does not say (files written before trust levels).
DEFAULT_TRUST: dict[str, LabelTrust] = {
    LabelSource.SEED.value: LabelTrust.CURATED,
    LabelSource.FEEDBACK.value: LabelTrust.SERVICE,
    LabelSource.AGENT.value: LabelTrust.AGENT,
}


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
