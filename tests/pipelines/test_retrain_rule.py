"""The retrain rule in the training job: a little new data keeps the model, enough retrains;
new messages that change no labelled example skip the training steps.

Real Dagster, MLflow (SQLite) and the conversation log, on a six-intent slice of Banking77.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd
import pytest

from models.registry import IntentRegistry, RegistryConfig
from pipelines import cli
from pipelines.definitions import build_definitions
from pipelines.retraining import RETRAIN_TAG
from pipelines.run_summary import asset_rows, summarise
from pipelines.settings import PipelineSettings
from tests.conftest import REPO_ROOT, write_slice

pytestmark = pytest.mark.slow
TRAINING = {"intent_model": {"config": {"candidates": ["tfidf_logreg"]}}}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, small_slice, banking77_train):
    root = tmp_path_factory.mktemp("retrain")
    (root / "incoming").mkdir()
    settings = PipelineSettings(
        banking77_dir=write_slice(small_slice, root / "banking77"),
        labelled_csv_paths=[],
        conversation_jsonl_dir=root / "incoming",
        conversation_store_url=f"sqlite:///{root / 'store.db'}",
        lake_dir=root / "lake",
        mlflow_tracking_uri=f"sqlite:///{root / 'mlflow.db'}",
        mlflow_registry_uri=f"sqlite:///{root / 'mlflow.db'}",
        mlflow_artifact_root=str(root / "artifacts"),
    )
    unseen = banking77_train[banking77_train["category"].isin(small_slice["category"].unique())]
    unseen = unseen[~unseen["text"].isin(small_slice["text"])].reset_index(drop=True)
    (root / "dagster_home").mkdir()
    with dg.instance_for_test(temp_dir=str(root / "dagster_home")) as instance:
        yield {"settings": settings, "instance": instance, "unseen": unseen}


def _add_messages(settings: PipelineSettings, name: str, rows: pd.DataFrame) -> None:
    """Labelled customer turns, one conversation each, in a new JSONL file."""
    lines = [
        json.dumps(
            {
                "message_id": f"{name}-{i}",
                "conversation_id": f"{name}-conv-{i}",
                "turn": 0,
                "ts": "2026-11-25T09:00:00Z",
                "speaker": "customer",
                "text": row.text,
                "intent": row.category,
                "label_source": "agent",
            }
        )
        for i, row in enumerate(rows.itertuples())
    ]
    Path(settings.conversation_jsonl_dir, f"{name}.jsonl").write_text("\n".join(lines) + "\n")


def _run(workspace: dict[str, Any], tags: dict[str, str] | None = None) -> dict[str, Any]:
    job = build_definitions(workspace["settings"]).resolve_job_def("training_job")
    result = job.execute_in_process(
        instance=workspace["instance"], run_config={"ops": TRAINING}, tags=tags
    )
    assert result.success
    return cli.materialization_metadata(result)


def _versions(settings: PipelineSettings) -> list[str]:
    uri = settings.mlflow_tracking_uri
    registry = IntentRegistry(RegistryConfig(uri, settings.mlflow_registry_uri))
    return [str(v.version) for v in registry.versions()]


def test_a_few_new_examples_keep_the_model_with_the_reason_and_enough_retrain(workspace):
    settings, unseen = workspace["settings"], workspace["unseen"]
    first = _run(workspace)
    assert first["intent_model"]["retrained"] is True
    assert first["intent_model"]["retrain_reason"] == "no model version yet: training the first"

    _add_messages(settings, "few", unseen.iloc[:5])  # 5 of ~245 examples: 2 %
    # The rule keeps version 1, decided by training_examples against the lake's copy of its
    # example index: intent_model and model_promotion are skipped, the reason recorded.
    result, job = _run_job(workspace)
    assert {"intent_model", "model_promotion"} <= _skipped_steps(result)
    observed = _observation(result, "training_examples")
    reason = observed["reason"]
    assert reason.startswith("retrain rule: 5 changed labelled examples (2.")
    assert "since version 1; threshold ≥ 20 and ≥ 5.0%: keeping it" in reason
    assert reason.endswith("; intent_model and model_promotion skipped")
    assert observed["retrained"] is False and observed["new_examples"] == 5
    assert observed["built_because"] == "rows of labelled conversations changed"
    assert dict(asset_rows(summarise(result, job, 0.0)))["training_examples"] == (
        f"skipped: {reason}"
    )
    assert _versions(settings) == ["1"]
    # The same decision again, in a fresh interpreter as `make pipeline` makes it: no validation
    # split is drawn and nothing imports scikit-learn or SciPy (~1 CPU s of such a run).
    assert _kept_in_a_fresh_process(workspace) == {
        "training_skipped": True,
        "sklearn": False,
        "scipy": False,
    }

    # Without that copy (a version trained before it existed) intent_model applies the rule
    # itself, with MLflow, and keeps the copy for the next run.
    shutil.rmtree(Path(settings.lake_dir) / "retrain_index")
    kept = _run(workspace)
    model = kept["intent_model"]
    assert model["retrained"] is False and model["reused"] is True
    assert model["version"] == "1" and model["new_examples"] == 5
    assert model["retrain_reason"].startswith("5 changed labelled examples (2.")
    assert "since version 1; threshold ≥ 20 and ≥ 5.0%: keeping it" in model["retrain_reason"]
    assert kept["model_promotion"]["decided"] is False
    assert kept["model_promotion"]["reason"] == model["retrain_reason"]
    assert _versions(settings) == ["1"]
    assert (Path(settings.lake_dir) / "retrain_index" / "version.json").exists()

    _add_messages(settings, "many", unseen.iloc[5:65])  # 65 new since version 1
    retrained = _run(workspace)
    assert retrained["intent_model"]["retrained"] is True
    assert retrained["intent_model"]["version"] == "2"
    assert retrained["intent_model"]["new_examples"] == 65
    assert retrained["model_promotion"]["decided"] is True
    assert _versions(settings) == ["2", "1"]


def test_a_retrain_request_retrains_however_little_changed(workspace):
    settings, unseen = workspace["settings"], workspace["unseen"]
    _add_messages(settings, "one", unseen.iloc[65:66])
    request = {RETRAIN_TAG: "monitoring verdict drift, 1 new labels"}  # as the drift sensor tags

    forced = _run(workspace, tags=request)

    model = forced["intent_model"]
    assert model["retrained"] is True and model["version"] == "3"
    assert model["retrain_reason"] == (
        "forced: run tag supportloop/retrain=monitoring verdict drift, 1 new labels"
    )
    assert _versions(settings) == ["3", "2", "1"]


def _write_rows(settings: PipelineSettings, name: str, rows: list[dict[str, Any]]) -> None:
    lines = [json.dumps({"ts": "2026-11-26T10:00:00Z", **row}) for row in rows]
    Path(settings.conversation_jsonl_dir, f"{name}.jsonl").write_text("\n".join(lines) + "\n")


def _run_job(workspace: dict[str, Any]) -> tuple[dg.ExecuteInProcessResult, dg.JobDefinition]:
    job = build_definitions(workspace["settings"]).resolve_job_def("training_job")
    result = job.execute_in_process(instance=workspace["instance"], run_config={"ops": TRAINING})
    assert result.success
    return result, job


FRESH_RUN = """
import json, sys
import dagster as dg
from pipelines.definitions import build_definitions
from pipelines.settings import PipelineSettings
settings = PipelineSettings.model_validate_json(sys.argv[1])
instance = dg.DagsterInstance.from_config(sys.argv[2])
job = build_definitions(settings).resolve_job_def("training_job")
result = job.execute_in_process(instance=instance, run_config=json.loads(sys.argv[3]))
skipped = {
    event.step_key
    for event in result.all_events
    if event.event_type == dg.DagsterEventType.STEP_SKIPPED
}
print(json.dumps({
    "training_skipped": result.success and {"intent_model", "model_promotion"} <= skipped,
    "sklearn": "sklearn" in sys.modules,
    "scipy": "scipy" in sys.modules,
}))
"""


def _kept_in_a_fresh_process(workspace: dict[str, Any]) -> dict[str, bool]:
    """The training job on the workspace's instance, run by a new interpreter."""
    arguments = [
        workspace["settings"].model_dump_json(),
        workspace["instance"].root_directory,
        json.dumps({"ops": TRAINING}),
    ]
    done = subprocess.run(
        [sys.executable, "-c", FRESH_RUN, *arguments],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def _skipped_steps(result: dg.ExecuteInProcessResult) -> set[str]:
    return {
        event.step_key
        for event in result.all_events
        if event.event_type == dg.DagsterEventType.STEP_SKIPPED and event.step_key
    }


def _observation(result: dg.ExecuteInProcessResult, asset: str) -> dict[str, Any]:
    (observation,) = [
        event.asset_observation_data.asset_observation
        for event in result.all_events
        if event.event_type == dg.DagsterEventType.ASSET_OBSERVATION
        and event.asset_key == dg.AssetKey(asset)
    ]
    return {key: value.value for key, value in observation.metadata.items()}


def test_new_messages_without_labels_skip_training_and_say_why(workspace):
    settings = workspace["settings"]
    # Unlabelled customer questions and the bot's answers, in conversations of their own.
    _write_rows(
        settings,
        "unlabelled",
        [
            {
                "message_id": f"quiet-{i}-{speaker}",
                "conversation_id": f"quiet-conv-{i}",
                "turn": turn,
                "speaker": speaker,
                "text": f"a question nobody labelled, number {i}",
                "label_source": "none",
            }
            for i in range(8)
            for turn, speaker in enumerate(("customer", "bot"))
        ],
    )
    result, job = _run_job(workspace)

    metadata = cli.materialization_metadata(result)
    assert metadata["conversations"]["rows_added"] == 16
    assert not {"training_examples", "intent_model", "model_promotion"} & set(metadata)
    assert {"intent_model", "model_promotion"} <= _skipped_steps(result)
    (observation,) = [
        event.asset_observation_data.asset_observation
        for event in result.all_events
        if event.event_type == dg.DagsterEventType.ASSET_OBSERVATION
        and event.asset_key == dg.AssetKey("training_examples")
    ]
    reason = observation.metadata["reason"].value
    assert reason.startswith("no labelled example and no training setting changed since run")
    summary = dict(asset_rows(summarise(result, job, 0.0)))  # what `make pipeline` prints
    assert summary["training_examples"] == f"skipped: {reason}"
    assert summary["intent_model"] == "skipped"
    assert _versions(settings) == ["3", "2", "1"]


def test_an_unlabelled_turn_in_a_labelled_conversation_builds_the_examples_again(workspace):
    settings = workspace["settings"]
    # A bot turn after a labelled customer turn (conversation one-conv-0 of the forced run):
    # a row of a labelled conversation changed, so the examples are built again (here they
    # come out equal, so intent_model reuses version 3: nothing is trained).
    _write_rows(
        settings,
        "bot-turn",
        [
            {
                "message_id": "one-0-reply",
                "conversation_id": "one-conv-0",
                "turn": 1,
                "speaker": "bot",
                "text": "Anything else I can help with?",
                "label_source": "none",
            }
        ],
    )
    result, _ = _run_job(workspace)

    # Built again; they come out equal, so the retrain rule keeps version 3 (0 changed).
    observed = _observation(result, "training_examples")
    assert observed["built_because"] == "rows of labelled conversations changed"
    assert observed["retrain_reason"].startswith("0 changed labelled examples (0.0%")
    assert observed["base_version"] == "3"
    assert {"intent_model", "model_promotion"} <= _skipped_steps(result)
    assert _versions(settings) == ["3", "2", "1"]
