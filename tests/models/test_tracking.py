"""What a training run leaves in MLflow (real SQLite store): experiment kind, datasets, run tree."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient
from mlflow.entities import DatasetInput, Run
from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

from models.candidates import resolve
from models.registry import IntentRegistry, RegistryConfig
from models.run_contents import TAG_CHOSEN, rows_digest
from models.splits import assign_splits
from models.tracking import (
    EXPERIMENT_KIND_TAG,
    MODEL_TRAINING_KIND,
    artifact_location,
    ensure_experiment,
    log_and_register,
    mlflow_uris,
)
from models.tracking_store import http_artifact_url
from models.training import train_intent_model

EXPERIMENT = "training-tests"
CANDIDATES = ["tfidf_logreg", "tfidf_linearsvc_calibrated"]


@pytest.fixture()
def registry(tmp_path) -> IntentRegistry:
    return IntentRegistry(RegistryConfig(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}"))


def _examples(slice_: pd.DataFrame) -> pd.DataFrame:
    frame = slice_.rename(columns={"category": "intent"}).assign(context="{}")
    frame["split"] = assign_splits(frame["text"].tolist(), frame["intent"].tolist())
    return frame


def _train_and_log(
    examples: pd.DataFrame,
    registry: IntentRegistry,
    artifacts: Path,
    candidates: list[str] = CANDIDATES,
) -> Run:
    """Train `candidates` on `examples` and log them; the parent run of the new version."""
    splits = [examples[examples["split"] == name] for name in ("train", "validation", "test")]
    outcome = train_intent_model(resolve(candidates), *splits)
    version = log_and_register(
        outcome,
        registry,
        EXPERIMENT,
        str(artifacts),
        f"fp-{len(registry.versions())}",
        {},
        {},
        reference=examples,
    )
    return registry.client.get_run(version.run_id)


def _context(item: DatasetInput) -> str:
    return next(tag.value for tag in item.tags if tag.key == MLFLOW_DATASET_CONTEXT)


def _children(client: MlflowClient, parent: Run) -> list[Run]:
    return client.search_runs(
        [parent.info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'",
    )


def test_each_candidate_is_a_child_run_and_the_parent_keeps_the_chosen_model(
    registry, small_slice, tmp_path
):
    parent = _train_and_log(_examples(small_slice), registry, tmp_path / "artifacts")
    client = registry.client

    children = {run.info.run_name: run for run in _children(client, parent)}
    assert sorted(children) == sorted(CANDIDATES)
    chosen = parent.data.params["candidate"]
    for name, child in children.items():
        assert child.info.status == "FINISHED"
        assert child.data.params["candidate"] == name
        assert child.data.params["classifier"]  # the candidate's own hyper-parameters
        assert {"validation_macro_f1", "validation_accuracy", "fit_seconds"} <= set(
            child.data.metrics
        )
        assert child.data.tags[TAG_CHOSEN] == str(name == chosen).lower()
        assert {_context(item) for item in child.inputs.dataset_inputs} == {
            "training",
            "validation",
        }

    # The parent: the chosen candidate's headline scores, no per-candidate or per-intent metrics.
    metrics = parent.data.metrics
    assert {"test_accuracy", "macro_f1", "weighted_f1", "validation_macro_f1"} <= set(metrics)
    assert not [key for key in metrics if key.startswith(("candidate.", "f1.", "precision."))]
    assert len(metrics) < 20  # 12 scores and ECEs, 4 out-of-scope (models/out_of_scope.py)
    assert metrics["validation_macro_f1"] == children[chosen].data.metrics["validation_macro_f1"]
    # ...also on the logged model, each score tied to the split it was measured on.
    model = client.get_logged_model(parent.data.tags["supportloop/model_id"])
    by_dataset = {(m.key, m.dataset_name) for m in model.metrics}
    assert ("test_accuracy", "training_examples.test") in by_dataset
    assert ("validation_macro_f1", "training_examples.validation") in by_dataset
    artifacts = {item.path for item in client.list_artifacts(parent.info.run_id)}
    assert {"intent_report.json", "intent_metrics.json", "confusion_matrix.png"} <= artifacts
    table = json.loads(
        Path(client.download_artifacts(parent.info.run_id, "intent_metrics.json")).read_text()
    )
    assert table["columns"] == ["intent", "precision", "recall", "f1", "support"]
    assert sorted(row[0] for row in table["data"]) == sorted(small_slice["category"].unique())


def test_the_training_data_is_one_dataset_per_split_shared_by_runs_on_the_same_data(
    registry, small_slice, tmp_path
):
    examples = _examples(small_slice)
    first = _train_and_log(examples, registry, tmp_path / "a", ["tfidf_logreg"])
    shuffled = examples.sample(frac=1, random_state=3)
    again = _train_and_log(shuffled, registry, tmp_path / "a", ["tfidf_logreg"])

    def datasets(run: Run) -> dict[str, tuple[str, str, dict]]:
        return {
            _context(item): (
                item.dataset.name,
                item.dataset.digest,
                json.loads(item.dataset.profile),
            )
            for item in run.inputs.dataset_inputs
        }

    logged = datasets(first)
    assert set(logged) == {"training", "validation", "test"}
    assert logged["training"][0] == "training_examples.train"
    train_rows = int((examples["split"] == "train").sum())
    assert logged["training"][2]["num_rows"] == train_rows
    assert datasets(again) == logged  # same rows in another order: the same datasets
    assert rows_digest(examples.iloc[1:]) != rows_digest(examples) == rows_digest(shuffled)


def test_the_experiment_is_a_model_training_experiment_new_or_existing(registry, tmp_path):
    client = registry.client
    uri = registry.config.tracking_uri
    untagged = client.create_experiment("made-by-older-code")
    chosen = client.create_experiment("chosen-by-someone")
    client.set_experiment_tag(chosen, EXPERIMENT_KIND_TAG, "genai_development")
    with mlflow_uris(uri, uri):
        created = ensure_experiment("fresh", str(tmp_path / "artifacts"))
        assert ensure_experiment("made-by-older-code", None) == untagged
        ensure_experiment("chosen-by-someone", None)

    assert client.get_experiment(created).tags[EXPERIMENT_KIND_TAG] == MODEL_TRAINING_KIND
    assert client.get_experiment(untagged).tags[EXPERIMENT_KIND_TAG] == MODEL_TRAINING_KIND
    assert client.get_experiment(chosen).tags[EXPERIMENT_KIND_TAG] == "genai_development"


def test_an_experiment_s_artifacts_go_beside_sqlite_or_to_the_tracking_server(tmp_path):
    database = tmp_path / "store" / "mlflow.db"
    beside = (tmp_path / "store" / "artifacts").as_uri()
    assert artifact_location(f"sqlite:///{database}", None) == beside
    assert artifact_location(f"sqlite:///{database}", "") == beside
    # A tracking server picks its own root: proxied `mlflow-artifacts:/` with --serve-artifacts.
    assert artifact_location("http://mlflow:5000", None) is None
    assert artifact_location("https://mlflow.example", None) is None
    # Chosen roots are kept; a URI with no `//` is still a URI, not a relative path.
    for chosen in ("mlflow-artifacts:/team", "s3://bucket/mlflow", "file:///srv/mlflow"):
        assert artifact_location("http://mlflow:5000", chosen) == chosen
    assert artifact_location("http://mlflow:5000", str(tmp_path)) == tmp_path.as_uri()


def test_a_dataset_source_on_a_tracking_server_is_its_http_url_without_credentials():
    url = http_artifact_url(
        "mlflow-artifacts:/1/run/artifacts/reference/reference.parquet",
        "http://user:secret@mlflow:5000/prefix",
    )
    assert url == (
        "http://mlflow:5000/prefix/api/2.0/mlflow-artifacts/artifacts/"
        "1/run/artifacts/reference/reference.parquet"
    )
    assert http_artifact_url("file:///tmp/a.parquet", "sqlite:///x.db") == "file:///tmp/a.parquet"


def test_the_registered_model_is_refitted_on_train_and_validation_and_calibrated_on_held_out_data(
    registry, small_slice, tmp_path
):
    examples = _examples(small_slice)
    parent = _train_and_log(examples, registry, tmp_path / "artifacts", ["tfidf_logreg"])
    params, metrics = parent.data.params, parent.data.metrics
    train, validation = (examples[examples["split"] == name] for name in ("train", "validation"))
    assert params["fitted_on"] == "train+validation"
    assert int(params["rows_fitted"]) == len(train) + len(validation)

    # The registered pipeline has seen validation: words only validation messages hold are in
    # its vocabulary; none only the test split holds.
    version = registry.versions()[0]
    pipeline = registry.load_pipeline(str(version.version))
    vocabulary = pipeline.named_steps["features"].named_transformers_["word"].vocabulary_
    analyse = pipeline.named_steps["features"].named_transformers_["word"].build_analyzer()

    def words(frame: pd.DataFrame) -> set[str]:
        return {word for text in frame["text"] for word in analyse(text)}

    test = examples[examples["split"] == "test"]
    validation_only = words(validation) - words(train)
    test_only = words(test) - words(train) - words(validation)
    assert validation_only and validation_only <= set(vocabulary)
    assert test_only and not test_only & set(vocabulary)

    # Calibrated by a temperature fitted on the train-only fit's validation predictions.
    scaled = pipeline.steps[-1][1]
    assert scaled.temperature == pytest.approx(float(params["temperature"]), abs=1e-4)
    assert {
        "test_ece",
        "test_ece_uncalibrated",
        "validation_ece",
        "validation_ece_uncalibrated",
    } <= set(metrics)
    assert metrics["validation_ece"] < metrics["validation_ece_uncalibrated"]
    assert registry.describe(version).metrics["test_ece"] == metrics["test_ece"]
    artifacts = {item.path for item in registry.client.list_artifacts(parent.info.run_id)}
    assert {"reliability.json", "reliability_diagram.png"} <= artifacts
    table = json.loads(
        Path(registry.client.download_artifacts(parent.info.run_id, "reliability.json")).read_text()
    )
    assert table["columns"][:2] == ["split", "calibrated"]
    assert len(table["data"]) == 4 * 15  # validation and test, before and after, 15 bins each
