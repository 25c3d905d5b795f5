"""Small helpers that turn results into Dagster UI metadata."""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg

if TYPE_CHECKING:
    import pandas as pd


def count_mapping(counts: pd.Series) -> dict[str, int]:
    """A Series of counts (`value_counts()`, `groupby().size()`) as `{name: count}` for metadata."""
    return {str(name): int(count) for name, count in counts.items()}


def markdown_counts(counts: Mapping[str, int], label: str, limit: int = 100) -> str:
    """A two-column markdown table of counts, largest first."""
    rows = sorted(counts.items(), key=lambda item: (-item[1], str(item[0])))[:limit]
    lines = [f"| {label} | rows |", "|---|---:|", *(f"| {key} | {value} |" for key, value in rows)]
    if len(counts) > limit:
        lines.append(f"| … {len(counts) - limit} more | |")
    return "\n".join(lines)


def previous_row_count(context: dg.AssetExecutionContext, key: dg.AssetKey) -> int | None:
    """`row_count` of the asset's latest materialisation before this run, if any."""
    event = context.instance.get_latest_materialization_event(key)
    if event is None or event.asset_materialization is None:
        return None
    value = event.asset_materialization.metadata.get("row_count")
    return int(value.value) if value is not None else None


def png_markdown(path: Path, max_width: int = 900) -> dg.MetadataValue:
    """Embed a PNG (downscaled) in markdown metadata so the Dagster UI shows it inline."""
    from PIL import Image

    image: Image.Image = Image.open(path)
    if image.width > max_width:
        image = image.resize((max_width, int(image.height * max_width / image.width)))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    encoded = base64.b64encode(buffer.getvalue()).decode()
    return dg.MetadataValue.md(f"![{path.name}](data:image/png;base64,{encoded})")
