"""Data-quality asset checks on validated conversations.

The four checks run as one step (`conversations_checks`, a multi-asset check): the union is read
back from the lake once, not once per check, and a run pays one step's bookkeeping for them.
Each keeps its own name, result and blocking flag.
"""

from collections.abc import Iterator

import dagster as dg
import pandas as pd

from conversations.schema import LINEAGE_COLUMNS, MESSAGE_COLUMNS, Speaker, normalise_text
from models.examples import per_distinct

CONVERSATIONS = dg.AssetKey("conversations")
MIN_EXAMPLES_PER_INTENT = 5
MAX_DUPLICATE_TEXT_RATE = 0.05


def conversations_schema(conversations: pd.DataFrame) -> dg.AssetCheckResult:
    """The canonical columns are present in order, with a UTC timestamp column."""
    expected = [*LINEAGE_COLUMNS, *MESSAGE_COLUMNS]
    missing = [column for column in expected if column not in conversations.columns]
    ts_ok = (
        str(conversations["ts"].dtype).startswith("datetime64") if "ts" in conversations else False
    )
    return dg.AssetCheckResult(
        passed=not missing and ts_ok,
        metadata={
            "missing_columns": ", ".join(missing) or "none",
            "ts_dtype": str(conversations.get("ts", pd.Series()).dtype),
        },
    )


def conversations_null_rates(conversations: pd.DataFrame) -> dg.AssetCheckResult:
    """Text, ids and speaker are never null; other null rates are reported."""
    null_rates = conversations[list(MESSAGE_COLUMNS)].isna().mean().round(4)
    rates = {str(column): float(rate) for column, rate in null_rates.items()}
    required = ("message_id", "conversation_id", "speaker", "text")
    return dg.AssetCheckResult(
        passed=all(rates[column] == 0 for column in required),
        metadata={"null_rates": dg.MetadataValue.json(rates)},
    )


def conversations_duplicate_rate(conversations: pd.DataFrame) -> dg.AssetCheckResult:
    """Message ids are unique; repeated customer texts stay under the configured rate."""
    duplicate_ids = int(conversations["message_id"].duplicated().sum())
    customer = conversations[conversations["speaker"] == Speaker.CUSTOMER.value]
    # Normalised once per distinct text: customer texts repeat a lot (Banking77 utterances).
    duplicate_texts = per_distinct(customer["text"].astype(str), normalise_text).duplicated().mean()
    rate = float(duplicate_texts) if len(customer) else 0.0
    return dg.AssetCheckResult(
        passed=duplicate_ids == 0 and rate <= MAX_DUPLICATE_TEXT_RATE,
        severity=dg.AssetCheckSeverity.ERROR if duplicate_ids else dg.AssetCheckSeverity.WARN,
        metadata={"duplicate_message_ids": duplicate_ids, "duplicate_text_rate": round(rate, 4)},
    )


def conversations_label_coverage(conversations: pd.DataFrame) -> dg.AssetCheckResult:
    """Share of customer messages with a label, and intents with too few examples to learn."""
    customer = conversations[conversations["speaker"] == Speaker.CUSTOMER.value]
    coverage = float(customer["intent"].notna().mean()) if len(customer) else 0.0
    counts = customer["intent"].value_counts()
    thin = sorted(counts[counts < MIN_EXAMPLES_PER_INTENT].index.tolist())
    return dg.AssetCheckResult(
        passed=not thin and coverage > 0,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "label_coverage": round(coverage, 4),
            "n_intents": len(counts),
            "intents_under_minimum": ", ".join(thin) or "none",
        },
    )


# Each check with whether a failure stops the assets downstream of `conversations`.
_CHECKS = (
    (conversations_schema, True),
    (conversations_null_rates, True),
    (conversations_duplicate_rate, False),
    (conversations_label_coverage, False),
)


@dg.multi_asset_check(
    specs=[
        dg.AssetCheckSpec(
            check.__name__, asset=CONVERSATIONS, blocking=blocking, description=check.__doc__
        )
        for check, blocking in _CHECKS
    ],
    ins={"conversations": dg.AssetIn(key=CONVERSATIONS)},
)
def conversations_checks(conversations: pd.DataFrame) -> Iterator[dg.AssetCheckResult]:
    """Every check of `conversations` on one read of it, each result under its own name."""
    for check, _ in _CHECKS:
        result = check(conversations)
        yield dg.AssetCheckResult(
            passed=result.passed,
            severity=result.severity,
            metadata=result.metadata,
            asset_key=CONVERSATIONS,
            check_name=check.__name__,
        )


ALL_CHECKS = [conversations_checks]
