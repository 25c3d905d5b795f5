"""Stores asset values under a base folder or object-store URL: DataFrames as Parquet, else JSON.

The base is a universal_pathlib `UPath`, so `LAKE_DIR` may be a local folder (as before) or any
fsspec URL (`s3://bucket/lake`, `gs://…`, `memory://…`; the matching fsspec package and its
credentials must be installed where runs execute). Dagster's `UPathIOManager` gives partitioned
assets a file per partition; files are named after the asset key, with `.parquet` or `.json`.
"""

from __future__ import annotations

import json
from typing import Any

import dagster as dg
import pandas as pd
from upath import UPath

PARQUET, JSON = ".parquet", ".json"


# Frames read back by several later steps of a run (the union: the checks and the examples;
# the examples: the model and the gate): served from memory within the process that wrote them.
READ_BACK = frozenset({"conversations", "training_examples"})


class UPathLake(dg.UPathIOManager):
    """Parquet for DataFrames, JSON for everything else, under a UPath base.

    A `READ_BACK` frame written in this process is kept until a later step writes a frame, and
    loaded from memory meanwhile (at 1M messages each read back cost ~1.7 s of CPU for the
    union, ~0.7 s for the examples; `make pipeline` runs every step in one process). Consumers
    get the frame the producer wrote, which is what the Parquet file reads back as
    (tests/pipelines/test_io_manager.py); with one process per step nothing is kept.
    """

    # The suffix depends on the value (a DataFrame or not), so the base class adds none.
    extension = None

    def __init__(self, base_path: UPath | None = None) -> None:
        super().__init__(base_path)
        self._kept: dict[str, tuple[str, pd.DataFrame]] = {}  # path: (writing step, frame)

    def dump_to_path(self, context: dg.OutputContext, obj: Any, path: UPath) -> None:
        """Write the asset value beside `path` with the suffix of its format."""
        if isinstance(obj, pd.DataFrame):
            with path.with_suffix(PARQUET).open("wb") as handle:
                obj.to_parquet(handle, index=False)
            self._keep(context, obj, path.with_suffix(PARQUET))
        else:
            path.with_suffix(JSON).write_text(json.dumps(obj, indent=2, default=str))

    def _keep(self, context: dg.OutputContext, frame: pd.DataFrame, path: UPath) -> None:
        """Drop frames earlier steps wrote; keep this one if it is read back."""
        step = context.step_key or ""
        self._kept = {k: v for k, v in self._kept.items() if v[0] == step}
        key = context.asset_key.to_user_string() if context.has_asset_key else ""
        if key in READ_BACK and not context.has_asset_partitions:
            self._kept[str(path)] = (step, frame)

    def load_from_path(self, context: dg.InputContext, path: UPath) -> Any:
        """Read an upstream asset value (FileNotFoundError when it was never materialised)."""
        parquet = path.with_suffix(PARQUET)
        if (kept := self._kept.get(str(parquet))) is not None:
            return kept[1]
        if parquet.exists():
            with parquet.open("rb") as handle:
                return pd.read_parquet(handle)
        document = path.with_suffix(JSON)
        if document.exists():
            return json.loads(document.read_text())
        key = context.asset_key.to_user_string() if context.has_asset_key else str(path)
        raise FileNotFoundError(f"asset {key} has not been materialised ({parquet})")

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        """Write the value; an asset that returns no value (a MaterializeResult) writes nothing."""
        if obj is not None:
            super().handle_output(context, obj)

    def get_metadata(self, context: dg.OutputContext, obj: Any) -> dict[str, Any]:
        """The file written, suffix included (the base class records the path without it)."""
        if context.has_asset_partitions:
            path = next(iter(self._get_paths_for_partitions(context).values()))
        else:
            path = self._get_path(context)
        suffix = PARQUET if isinstance(obj, pd.DataFrame) else JSON
        return {"path": dg.MetadataValue.path(str(path.with_suffix(suffix)))}


class LakeIOManager(dg.ConfigurableIOManagerFactory):
    """The lake's IO manager: `base_dir` is a local path or an fsspec URL (`LAKE_DIR`)."""

    base_dir: str

    def create_io_manager(self, context: dg.InitResourceContext) -> UPathLake:
        """A UPathLake rooted at `base_dir`."""
        return UPathLake(base_path=UPath(self.base_dir))
