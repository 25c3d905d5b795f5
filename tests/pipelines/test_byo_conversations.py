"""Bring your own conversations: multi-turn JSONL and no Banking77 at all train a champion.

The real training job (Dagster in-process, MLflow on SQLite, a temporary DAGSTER_HOME) on a
generated dialogue corpus (tests/dialogues.py) whose answers mean different intents in different
conversations; settings come from the environment, with `BANKING77_DIR=` turning Banking77 off.
"""

from __future__ import annotations

import json

import dagster as dg
import pandas as pd
import pytest
from mlflow import MlflowClient

from models.settings_errors import load_settings
from pipelines import cli
from pipelines.definitions import build_definitions
from pipelines.settings import PipelineSettings
from tests.dialogues import AGREEMENTS, OPENINGS, THANK_YOU, write_dialogues

pytestmark = pytest.mark.slow
CANDIDATES = ["tfidf_logreg", "tfidf_logreg_dialogue", "tfidf_linearsvc_calibrated"]


def test_multi_turn_jsonl_without_banking77_trains_and_registers_a_champion(
    tmp_path, monkeypatch, capsys
):
    inbox = tmp_path / "incoming"
    inbox.mkdir()
    rows = write_dialogues(inbox / "dialogues.jsonl", conversations=600)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    for name, value in {
        "BANKING77_DIR": "",
        "LABELLED_CSV_PATHS": "[]",
        "CONVERSATION_JSONL_DIR": str(inbox),
        "CONVERSATION_STORE_URL": f"sqlite:///{tmp_path / 'store.db'}",
        "LAKE_DIR": str(tmp_path / "lake"),
        "MLFLOW_TRACKING_URI": uri,
        "MLFLOW_REGISTRY_URI": uri,
        "MLFLOW_ARTIFACT_ROOT": str(tmp_path / "artifacts"),
    }.items():
        monkeypatch.setenv(name, value)
    settings = load_settings(PipelineSettings)
    assert settings.banking77_dir is None

    (tmp_path / "dagster_home").mkdir()
    job = build_definitions(settings).resolve_job_def("training_job")
    config = {"ops": {"intent_model": {"config": {"candidates": CANDIDATES}}}}
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster_home")) as instance:
        result = job.execute_in_process(instance=instance, run_config=config)
    assert result.success
    metadata = cli.materialization_metadata(result)
    assert metadata["raw_conversations"]["row_count"] == 0  # no labelled CSV, no Banking77

    # Every labelled customer turn is an example, so equal answers keep their own intents.
    labelled = [row for row in rows if row.get("intent")]
    assert metadata["training_examples"]["row_count"] == len(labelled)
    examples = pd.read_parquet(settings.lake_dir / "training_examples.parquet")
    assert set(examples["intent"]) == {*OPENINGS, *AGREEMENTS, THANK_YOU}
    answers = examples[examples["intent"].isin(AGREEMENTS)]
    assert (answers.groupby(answers["text"].str.casefold())["intent"].nunique() > 1).any()

    # The context-aware candidate wins, and the gate asks it with each test turn's context.
    assert metadata["intent_model"]["candidate"] == "tfidf_logreg_dialogue"
    promotion = metadata["model_promotion"]
    assert promotion["passed"] is True, promotion
    assert promotion["champion"] == "1"
    checks = {check["name"]: check for check in promotion["checks"]}
    assert checks["invariance"]["passed"], checks["invariance"]
    assert "no floor configured" in checks["accuracy_floor"]["reason"]
    assert checks["beats_baselines"]["passed"]
    assert "word_tfidf_linear" in checks["beats_baselines"]["reason"]
    assert "majority_class" in checks["beats_baselines"]["reason"]

    capsys.readouterr()
    cli.status(settings)
    champion = json.loads(capsys.readouterr().out)["champion"]
    assert champion["version"] == "1"
    run = MlflowClient(uri, uri).get_run(champion["run_id"])
    baseline = run.data.metrics["baseline_word_tfidf_linear_test_accuracy"]
    majority = run.data.metrics["baseline_majority_class_test_accuracy"]
    assert majority < baseline
    assert f"word_tfidf_linear {baseline:.4f}" in checks["beats_baselines"]["reason"]
