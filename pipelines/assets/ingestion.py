"""Ingestion assets: every source read with lineage, validated, bad rows quarantined.

The chat store and the conversation JSONL files are read by day (`conversation_log`, daily
partitions, pipelines/partitions.py): a run reads only the days whose sources changed. The
labelled CSVs carry no time and are read whole (`raw_conversations`). `conversations` and
`quarantined_messages` are the union of both, the input of training.
"""

import hashlib
import warnings
from collections.abc import Iterator

import dagster as dg
import pandas as pd
from pydantic import Field

from conversations.raw_rows import raw_frame
from conversations.schema import QUARANTINE_COLUMNS
from conversations.validation import ValidationResult, validate_messages
from models.location import location, read_parquet, refreshed
from pipelines.conversation_log import PartitionSummary, changed_days
from pipelines.metadata import count_mapping, markdown_counts, previous_row_count
from pipelines.partitions import DAILY
from pipelines.resources import ConversationSources

GROUP = "ingestion"
LOG = dg.AssetKey("conversation_log")


class LogConfig(dg.Config):
    """How the conversation log's days are read."""

    # Read again the days of the range whose sources did not change (e.g. after a code change).
    reread_unchanged: bool = False
    # Changed days read per pass over the sources: bounds memory on a long backfill (a JSONL
    # file spanning many batches is streamed once per batch).
    days_per_batch: int = Field(default=7, ge=1)


with warnings.catch_warnings():
    # Dagster 1.13 marks `backfill_policy` beta: without this, every import prints a warning.
    warnings.simplefilter("ignore", category=dg.BetaWarning)
    _daily_asset = dg.asset(
        group_name=GROUP,
        kinds={"pandas", "parquet"},
        partitions_def=DAILY,
        # One run reads a range of days: each JSONL file and store range once, not once a day.
        backfill_policy=dg.BackfillPolicy.single_run(),
    )


@_daily_asset
def conversation_log(
    context: dg.AssetExecutionContext, config: LogConfig, sources: ConversationSources
) -> dg.MaterializeResult:
    """The chat store's and the JSONL files' rows of each day, validated; rows in = kept + out.

    Each day's counts are an observation of its partition; the days of the range whose sources
    are unchanged since they were ingested are not read again.
    """
    log_sources = sources.log_sources()
    lake = sources.log_lake()
    current = log_sources.fingerprints()
    # A run without a range (a bare `execute_in_process`, or changed days scattered over a long
    # span: IngestionPlan.tags) reads every changed day; each day is observed on its partition.
    keys = list(context.partition_keys) if context.has_partition_key_range else None
    if config.reread_unchanged and keys is not None:
        changed = list(keys)
    else:
        changed = changed_days(current, lake, keys)
    keys = keys if keys is not None else changed
    totals = {"rows_in": 0, "rows_kept": 0, "rows_quarantined": 0}
    for summary in _ingest(context, sources, changed, current, config.days_per_batch):
        for name in totals:
            totals[name] += getattr(summary, name)
    context.log.info(
        "%d of %d days read (%d unchanged): %d rows in, %d kept, %d quarantined",
        len(changed),
        len(keys),
        len(keys) - len(changed),
        *totals.values(),
    )
    return dg.MaterializeResult(
        metadata={"days_read": len(changed), "days_in_range": len(keys), **totals}
    )


def _ingest(
    context: dg.AssetExecutionContext,
    sources: ConversationSources,
    days: list[str],
    fingerprints: dict[str, str],
    days_per_batch: int,
) -> Iterator[PartitionSummary]:
    """Read, validate and store `days`, a batch of days per pass over the sources.

    Memory holds one batch's rows, never a whole backfill.
    """
    log_sources, lake = sources.log_sources(), sources.log_lake()
    ordered = sorted(days)
    for start in range(0, len(ordered), days_per_batch):
        batch = ordered[start : start + days_per_batch]
        rows = log_sources.read(set(batch))
        for key in batch:
            result = validate_messages(raw_frame(rows.pop(key)), sources.max_text_chars)
            summary = lake.write(key, result, fingerprints.get(key, ""))
            _observe(context, key, summary)
            yield summary


def _observe(context: dg.AssetExecutionContext, key: str, summary: PartitionSummary) -> None:
    """One day's counts, recorded on its partition (the range's materialisation is shared)."""
    context.log_event(
        dg.AssetObservation(
            asset_key=LOG,
            partition=key,
            metadata={
                "rows_in": summary.rows_in,
                "rows_kept": summary.rows_kept,
                "rows_quarantined": summary.rows_quarantined,
                "quarantine_reasons": dg.MetadataValue.json(summary.reasons),
                "fingerprint": summary.fingerprint,
            },
        )
    )


@dg.asset(group_name=GROUP, kinds={"pandas", "parquet"})
def raw_conversations(
    context: dg.AssetExecutionContext, sources: ConversationSources
) -> dg.MaterializeResult:
    """Every row of the labelled CSVs (Banking77 and others), undecoded rows included."""
    raw = sources.read_labelled()
    context.log.info("read %d raw rows from %d CSV files", len(raw), raw["source"].nunique())
    per_source = raw.groupby(raw["source"].str.split("/").str[-1])["source"].size()
    return dg.MaterializeResult(
        value=raw,
        metadata={
            "row_count": len(raw),
            "sources": dg.MetadataValue.md(markdown_counts(count_mapping(per_source), "source")),
        },
    )


@dg.multi_asset(
    group_name=GROUP,
    outs={
        "conversations": dg.AssetOut(
            description="Validated messages in the canonical schema (data/README.md).",
            kinds={"pandas", "parquet"},
        ),
        "quarantined_messages": dg.AssetOut(
            description="Rejected rows with their source, line and reason.",
            kinds={"pandas", "parquet"},
        ),
    },
    # Training reads the union of every day of the log.
    deps=[dg.AssetDep(LOG, partition_mapping=dg.AllPartitionMapping())],
)
def validated_conversations(
    context: dg.AssetExecutionContext,
    sources: ConversationSources,
    raw_conversations: pd.DataFrame,
) -> Iterator[dg.Output[pd.DataFrame]]:
    """The labelled CSVs validated, plus every day of the log; rows in = kept + quarantined."""
    lake = sources.log_lake()
    csv = validate_messages(raw_conversations, sources.max_text_chars)
    if csv.rows_in != len(raw_conversations):
        raise RuntimeError("validation lost rows: rows in != kept + quarantined")
    days = [summary for key in lake.days() if (summary := lake.summary(key))]
    result = _union(csv, lake.read("kept"), lake.read("quarantined"))
    rows_in = len(raw_conversations) + sum(day.rows_in for day in days)
    if result.rows_in != rows_in:
        raise RuntimeError("the union lost rows: rows in != kept + quarantined")
    yield from _outputs(context, result, len(days), _previous_message_ids(sources))


def _previous_message_ids(sources: ConversationSources) -> set[str] | None:
    """The message ids of the last `conversations` written; None before the first."""
    # The lake's IO manager names the file after the asset key (pipelines/io_manager.py). New
    # and gone messages are counted by id: a count difference misses a replaced message.
    if sources.lake_dir is None:
        return None
    path = refreshed(location(sources.lake_dir)) / "conversations.parquet"
    if not path.exists():
        return None
    return set(read_parquet(path, columns=["message_id"])["message_id"].astype(str))


def _union(
    csv: ValidationResult, log_kept: pd.DataFrame | None, log_out: pd.DataFrame | None
) -> ValidationResult:
    """CSV rows first, then the days oldest first; a message id seen before is quarantined."""
    kept = pd.concat([frame for frame in (csv.kept, log_kept) if frame is not None])
    kept = kept.reset_index(drop=True)
    repeated = kept["message_id"].duplicated()
    if not repeated.any():  # the usual case: no index of first places, no second copy
        return ValidationResult(kept=kept, quarantined=_quarantined(csv, log_out, None))
    first_at = kept.drop_duplicates("message_id").set_index("message_id")
    duplicates = kept[repeated]
    where = first_at.loc[duplicates["message_id"], ["source", "source_line"]]
    moved = duplicates.assign(
        reason_code="duplicate_message_id",
        reason=[
            f"duplicate message_id {mid!r} (first at {source}:{line})"
            for mid, source, line in zip(
                duplicates["message_id"], where["source"], where["source_line"], strict=True
            )
        ],
    ).reindex(columns=list(QUARANTINE_COLUMNS))
    return ValidationResult(
        kept=kept[~repeated].reset_index(drop=True),
        quarantined=_quarantined(csv, log_out, moved),
    )


def _quarantined(
    csv: ValidationResult, log_out: pd.DataFrame | None, moved: pd.DataFrame | None
) -> pd.DataFrame:
    """The CSV's, the log's and the repeated ids' quarantined rows, in that order."""
    parts = [frame for frame in (csv.quarantined, log_out, moved) if frame is not None]
    quarantined = pd.concat([p for p in parts if not p.empty] or [csv.quarantined])
    return quarantined.reset_index(drop=True)


def _outputs(
    context: dg.AssetExecutionContext,
    result: ValidationResult,
    days: int,
    previous_ids: set[str] | None,
) -> Iterator[dg.Output[pd.DataFrame]]:
    kept, quarantined = result.kept, result.quarantined
    ids = set(kept["message_id"].astype(str))
    if previous_ids is None:
        previous = previous_row_count(context, dg.AssetKey("conversations"))
        added = len(kept) - previous if previous is not None else len(kept)
        removed = 0
    else:
        added, removed = len(ids - previous_ids), len(previous_ids - ids)
    digest = hashlib.sha256("\n".join(sorted(kept["message_id"].astype(str))).encode()).hexdigest()
    reasons = quarantined["reason_code"].value_counts()
    detail = ", ".join(f"{code} {count}" for code, count in reasons.items())
    context.log.info(
        "%d rows in: %d kept, %d quarantined%s; %d days of the conversation log",
        result.rows_in,
        len(kept),
        len(quarantined),
        f" ({detail})" if detail else "",
        days,
    )
    yield dg.Output(
        kept,
        output_name="conversations",
        metadata={
            "row_count": len(kept),
            "content_digest": digest[:16],
            "rows_in": result.rows_in,
            "rows_kept": len(kept),
            "rows_quarantined": len(quarantined),
            # Messages whose id the previous materialisation did not hold, and the reverse.
            "rows_added": added,
            "rows_removed": removed,
            "log_days": days,
            "quarantine_reasons": dg.MetadataValue.json(count_mapping(reasons)),
            "conversations": int(kept["conversation_id"].nunique()),
            "labelled_rows": int(kept["intent"].notna().sum()),
            "speakers": dg.MetadataValue.md(
                markdown_counts(count_mapping(kept["speaker"].value_counts()), "speaker")
            ),
        },
    )
    yield dg.Output(
        quarantined,
        output_name="quarantined_messages",
        metadata={
            "row_count": len(quarantined),
            "reasons": dg.MetadataValue.md(markdown_counts(count_mapping(reasons), "reason")),
            "preview": dg.MetadataValue.md(quarantined.head(20).to_markdown(index=False))
            if not quarantined.empty
            else "none",
        },
    )
