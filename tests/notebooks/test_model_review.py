"""notebooks/model_review.ipynb executes top to bottom against a real registry (nbclient)."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from models.registry import IntentRegistry, RegistryConfig
from tests.conftest import register_version

pytestmark = pytest.mark.slow
NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "model_review.ipynb"


def test_the_review_notebook_runs(tmp_path, small_slice, monkeypatch):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    registry = IntentRegistry(RegistryConfig(uri, uri))
    first = register_version(small_slice, registry, tmp_path / "artifacts")
    registry.promote(first)
    second = register_version(
        small_slice.sample(frac=0.8, random_state=0), registry, tmp_path / "a2"
    )
    registry.set_alias("challenger", second)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", uri)
    monkeypatch.setenv("MONITORING_REPORTS_DIR", str(tmp_path / "reports"))
    monkeypatch.setenv(
        "PYTHONPATH", str(NOTEBOOK.parents[1]) + os.pathsep + os.environ.get("PYTHONPATH", "")
    )
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    ).execute()
    outputs = [
        output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs
    ]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "\n".join(
        str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", "")) for o in outputs
    )
    assert "errors out of" in text and "champion" in text
    assert any("image/png" in o.get("data", {}) for o in outputs)
    # Issue 11: the champion's ECE and its logged reliability diagram (an image of its own).
    ece = registry.describe(registry.version(first)).metrics["test_ece"]
    assert f"expected calibration error on its test split {ece:.4f}" in text
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 2
