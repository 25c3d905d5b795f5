"""Stores asset values under a base folder: DataFrames as Parquet, everything else as JSON."""

import json
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd


class LakeIOManager(dg.ConfigurableIOManager):
    """Parquet/JSON files named after the asset key, under `base_dir` (local path)."""

    base_dir: str

    def _path(self, key: dg.AssetKey, suffix: str) -> Path:
        return Path(self.base_dir, *key.path).with_suffix(suffix)

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        """Write the asset value."""
        if obj is None:
            return
        key = context.asset_key
        if isinstance(obj, pd.DataFrame):
            path = self._path(key, ".parquet")
            path.parent.mkdir(parents=True, exist_ok=True)
            obj.to_parquet(path, index=False)
        else:
            path = self._path(key, ".json")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(obj, indent=2, default=str))
        context.add_output_metadata({"path": dg.MetadataValue.path(str(path))})

    def load_input(self, context: dg.InputContext) -> Any:
        """Read an upstream asset value."""
        key = context.asset_key
        parquet = self._path(key, ".parquet")
        if parquet.exists():
            return pd.read_parquet(parquet)
        document = self._path(key, ".json")
        if document.exists():
            return json.loads(document.read_text())
        raise FileNotFoundError(
            f"asset {key.to_user_string()} has not been materialised ({parquet})"
        )
