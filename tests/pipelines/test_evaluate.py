"""`make evaluate`: a real pipeline run on train.csv only, a real `bentoml serve`, HTTP scoring.

The folder is a small Banking77-shaped slice written at test time (four intents, 20 training and
5 test messages each); nothing of Banking77 is committed.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient

from pipelines import evaluate
from pipelines.evaluate import EXPERIMENT, TAG_VERSION
from tests.entry_points import run_main
from tests.pipelines.test_cli_errors import REPO_ROOT, assert_one_line_error
from tests.ports import free_port

INTENTS, TRAIN_EACH, TEST_EACH = 4, 20, 5
METRICS = ("accuracy", "macro-F1", "fallback", "answered", "top-5", "ECE")


@pytest.fixture(scope="module")
def folder(tmp_path_factory, banking77_dir: Path) -> Path:
    """train.csv and test.csv of a few intents, in Banking77's format."""
    root = tmp_path_factory.mktemp("evaluate") / "small"
    root.mkdir()
    train, test = (pd.read_csv(banking77_dir / name) for name in ("train.csv", "test.csv"))
    intents = sorted(train["category"].unique())[:INTENTS]
    for frame, each, name in ((train, TRAIN_EACH, "train.csv"), (test, TEST_EACH, "test.csv")):
        chosen = frame[frame["category"].isin(intents)].groupby("category").head(each)
        chosen[["text", "category"]].to_csv(root / name, index=False)
    return root


def user_env(tmp_path: Path) -> dict[str, str]:
    """The user's own stores, which an evaluation must never create or touch."""
    return os.environ | {
        "DAGSTER_HOME": str(tmp_path / "user_dagster"),
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'user_mlflow.db'}",
        "EVALUATE_SANDBOX": str(tmp_path / "sandbox"),
    }


def table_row(stdout: str, name: str) -> dict[str, float]:
    """The metric columns of one row of the printed table."""
    lines = stdout.splitlines()
    header = next(line for line in lines if line.startswith("system "))
    row = next(line for line in lines if line.startswith(f"{name} "))
    columns, values = header.split()[1:], row[len(name) :].split()
    return {column: float(value) for column, value in zip(columns, values, strict=False)}


@pytest.mark.slow
def test_evaluate_trains_on_train_csv_serves_scores_test_csv_and_logs_the_table(
    tmp_path: Path, folder: Path
) -> None:
    options = ["--latency-calls", "20", "--batch-size", "8", "--port", str(free_port())]
    done = subprocess.run(
        [sys.executable, "-m", "pipelines.evaluate", "--dir", str(folder), *options],
        cwd=REPO_ROOT,
        env=user_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    n_train, n_test = INTENTS * TRAIN_EACH, INTENTS * TEST_EACH
    # train.csv and the copy of test.csv declared the frozen test split: two files.
    assert f"read {n_train + n_test} raw rows from 2 CSV files" in done.stderr
    title = re.search(r"this run: (\S+) v(\d+), (\d+) test texts scored", done.stdout)
    assert title is not None, done.stdout
    model, version, scored = title.group(1), title.group(2), int(title.group(3))
    assert scored == n_test
    row = table_row(done.stdout, "this run")
    assert set(METRICS) <= set(row)
    assert all(0.0 <= row[name] <= 1.0 for name in METRICS), row
    assert 0 < row["p50(ms)"] <= row["p99(ms)"]
    assert "NOT measured by this run" in done.stdout
    # Logged in the sandbox's own store, tagged with the version; the user's store untouched.
    sandbox = tmp_path / "sandbox"
    assert not (sandbox / "train_only" / "test.csv").exists()
    assert not (tmp_path / "user_mlflow.db").exists() and not (tmp_path / "user_dagster").exists()
    client = MlflowClient(f"sqlite:///{sandbox / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(EXPERIMENT)
    assert experiment is not None
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.data.tags[TAG_VERSION] == version
    assert run.data.tags["supportloop/evaluated_model"] == model
    assert run.data.metrics["n_scored"] == n_test
    assert run.data.metrics["accuracy"] == pytest.approx(row["accuracy"], abs=1e-4)
    assert run.data.params["test_rows"] == str(n_test)
    assert "latency_p99_ms" in run.data.metrics
    logged = {artifact.path for artifact in client.list_artifacts(run.info.run_id)}
    assert "benchmark.txt" in logged
    # The version served was refitted on all of train.csv (train + validation) and scored on
    # test.csv as its frozen test split: none of train.csv was held out as a test split.
    training = client.get_run(client.get_model_version(model, version).run_id).data.params
    assert training["fitted_on"] == "train+validation"
    assert int(training["rows_fitted"]) == n_train
    assert int(training["rows_train"]) + int(training["rows_validation"]) == n_train
    assert int(training["rows_test"]) == n_test


def test_a_missing_folder_is_one_line_naming_it(tmp_path, monkeypatch, capsys) -> None:
    missing = tmp_path / "nowhere"
    done = run_main(monkeypatch, capsys, evaluate.main, ["--dir", str(missing)], user_env(tmp_path))
    assert_one_line_error(done, str(missing), "no such folder")
    assert not (tmp_path / "sandbox").exists()


def test_a_missing_column_is_one_line_naming_the_file(tmp_path, monkeypatch, capsys) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "train.csv").write_text("text,label\nhello,greet\n")
    args = ["--dir", str(tmp_path / "data")]
    done = run_main(monkeypatch, capsys, evaluate.main, args, user_env(tmp_path))
    assert_one_line_error(done, str(tmp_path / "data" / "train.csv"), "missing column(s) category")


def test_a_missing_test_file_is_one_line_naming_it(tmp_path, monkeypatch, capsys, folder) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "train.csv").write_bytes((folder / "train.csv").read_bytes())
    args = ["--dir", str(tmp_path / "data")]
    done = run_main(monkeypatch, capsys, evaluate.main, args, user_env(tmp_path))
    assert_one_line_error(done, str(tmp_path / "data" / "test.csv"), "no such file")
    assert not (tmp_path / "sandbox").exists()


def test_a_bad_setting_is_one_line_naming_it(tmp_path, monkeypatch, capsys, folder) -> None:
    env = user_env(tmp_path) | {"MAX_TEXT_CHARS": "many"}
    done = run_main(monkeypatch, capsys, evaluate.main, ["--dir", str(folder)], env)
    assert_one_line_error(done, "MAX_TEXT_CHARS")
    assert not (tmp_path / "sandbox").exists()


def test_fresh_never_empties_a_folder_it_did_not_make(tmp_path, monkeypatch, capsys, folder):
    own = tmp_path / "sandbox"
    own.mkdir()
    (own / "notes.txt").write_text("mine")
    args = ["--dir", str(folder), "--fresh"]
    done = run_main(monkeypatch, capsys, evaluate.main, args, user_env(tmp_path))
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.splitlines()[-1].startswith(f"error: {own}: not an evaluation sandbox")
    assert (own / "notes.txt").read_text() == "mine"
