"""Ingestion assets: every source read with lineage, validated, bad rows quarantined."""

import hashlib
from collections.abc import Iterator

import dagster as dg
import pandas as pd

from conversations.validation import validate_messages
from pipelines.metadata import count_mapping, markdown_counts, previous_row_count
from pipelines.resources import ConversationSources

GROUP = "ingestion"


@dg.asset(group_name=GROUP, kinds={"pandas", "parquet"})
def raw_conversations(
    context: dg.AssetExecutionContext, sources: ConversationSources
) -> dg.MaterializeResult:
    """Every row of every configured source, undecoded rows included, with source and line."""
    raw = sources.read_all()
    context.log.info("read %d raw rows from %d sources", len(raw), raw["source"].nunique())
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
)
def validated_conversations(
    context: dg.AssetExecutionContext,
    sources: ConversationSources,
    raw_conversations: pd.DataFrame,
) -> Iterator[dg.Output[pd.DataFrame]]:
    """Split raw rows into kept and quarantined; rows in = kept + quarantined, always."""
    result = validate_messages(raw_conversations, sources.max_text_chars)
    kept, quarantined = result.kept, result.quarantined
    if result.rows_in != len(raw_conversations):
        raise RuntimeError("validation lost rows: rows in != kept + quarantined")
    previous = previous_row_count(context, dg.AssetKey("conversations"))
    digest = hashlib.sha256("\n".join(sorted(kept["message_id"].astype(str))).encode()).hexdigest()
    reasons = quarantined["reason_code"].value_counts()
    detail = ", ".join(f"{code} {count}" for code, count in reasons.items())
    context.log.info(
        "%d rows in: %d kept, %d quarantined%s",
        result.rows_in,
        len(kept),
        len(quarantined),
        f" ({detail})" if detail else "",
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
            "rows_added": len(kept) - previous if previous is not None else len(kept),
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
