"""The lake's IO manager writes and reads asset values under a local folder or a fsspec URL.

Real Dagster materialisations (`dg.materialize`) of two small assets: a DataFrame (Parquet) and
a document read from it (JSON). Locally the files are where they always were; under `memory://`
(fsspec's in-process object store) they land in the store, not in a local folder.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
from upath import UPath

from pipelines.io_manager import LakeIOManager


@dg.asset
def frame() -> pd.DataFrame:
    """A small DataFrame."""
    return pd.DataFrame({"text": ["a", "b"], "intent": ["x", "y"]})


@dg.asset
def summary(frame: pd.DataFrame) -> dict[str, int]:
    """A document computed from the upstream DataFrame, as loaded by the IO manager."""
    return {"rows": len(frame), "intents": frame["intent"].nunique()}


def _materialize(base_dir: str, *assets: dg.AssetsDefinition) -> dg.ExecuteInProcessResult:
    return dg.materialize(list(assets), resources={"io_manager": LakeIOManager(base_dir=base_dir)})


def test_a_local_folder_keeps_its_file_names(tmp_path: Path):
    result = _materialize(str(tmp_path), frame, summary)
    assert result.success
    assert pd.read_parquet(tmp_path / "frame.parquet")["text"].tolist() == ["a", "b"]
    assert json.loads((tmp_path / "summary.json").read_text()) == {"rows": 2, "intents": 2}
    [materialization] = [
        event.materialization
        for event in result.get_asset_materialization_events()
        if event.asset_key == dg.AssetKey("frame")
    ]
    assert materialization.metadata["path"].value == str(tmp_path / "frame.parquet")


def test_an_object_store_url_holds_the_values(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # anything written to a local folder by mistake shows here
    base = f"memory://lake-{uuid.uuid4().hex[:8]}"
    assert _materialize(base, frame, summary).success
    with UPath(base, "frame.parquet").open("rb") as handle:
        assert pd.read_parquet(handle)["intent"].tolist() == ["x", "y"]
    assert json.loads(UPath(base, "summary.json").read_text()) == {"rows": 2, "intents": 2}
    assert list(tmp_path.iterdir()) == []
    # A later run of the downstream asset alone reads the upstream value from the store.
    again = dg.materialize(
        [frame, summary],
        selection=[summary],
        resources={"io_manager": LakeIOManager(base_dir=base)},
    )
    assert again.success


def test_an_upstream_never_materialised_is_named(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="asset frame has not been materialised"):
        dg.materialize(
            [frame, summary],
            selection=[summary],
            resources={"io_manager": LakeIOManager(base_dir=str(tmp_path))},
        )


# What the read-back assets below produced and loaded, in order (one test at a time).
SEEN: list[tuple[str, pd.DataFrame]] = []


@dg.asset(name="conversations")
def union() -> pd.DataFrame:
    """A frame several later steps read back (pipelines/io_manager.py READ_BACK)."""
    value = pd.DataFrame({"text": ["a", "b"], "n": [1, 2]})
    SEEN.append(("wrote", value))
    return value


@dg.asset
def checked(conversations: pd.DataFrame) -> dict[str, int]:
    """A first reader of the union."""
    SEEN.append(("checked", conversations))
    return {"rows": len(conversations)}


@dg.asset(deps=[checked])
def examples(conversations: pd.DataFrame) -> pd.DataFrame:
    """A second reader, writing a frame of its own (the union is then dropped)."""
    SEEN.append(("examples", conversations))
    return conversations.assign(n=conversations["n"] * 10)


def test_a_read_back_frame_is_served_from_memory_within_the_run_and_from_disk_after(tmp_path):
    SEEN.clear()
    assert _materialize(str(tmp_path), union, checked, examples).success
    wrote, first, second = (value for _, value in SEEN)
    # Both readers get the frame the producer wrote, not a second copy from Parquet.
    assert first is wrote and second is wrote
    SEEN.clear()
    again = dg.materialize(
        [union, checked, examples],
        selection=[examples],
        resources={"io_manager": LakeIOManager(base_dir=str(tmp_path))},
    )
    assert again.success
    [(_, from_disk)] = SEEN
    pd.testing.assert_frame_equal(from_disk, wrote)
    assert from_disk is not wrote
