"""`make pipeline` end to end: progress lines while it runs, the cause of a failure in one line.

The real CLI (`python -m pipelines.cli materialize`) runs in a subprocess on a small Banking77
slice plus one file of bad rows, with real SQLite stores. The promotion step is made to fail,
after the model was registered, by the fault injection of models/faults.py in its `raise` mode.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from models.faults import FAULT_ENV, FAULT_MODE_ENV, Boundary
from models.settings_errors import load_settings
from pipelines import cli
from pipelines.settings import PipelineSettings
from tests.conftest import BAD_ROW_CODES, REPO_ROOT, write_slice

pytestmark = pytest.mark.slow
RUN_CONFIG = {
    "ops": {
        "intent_model": {"config": {"candidates": ["tfidf_logreg"]}},
    }
}


def test_a_failing_pipeline_shows_progress_and_ends_with_its_cause(
    tmp_path: Path, small_slice, bad_rows_files
):
    (tmp_path / "incoming").mkdir()
    (tmp_path / "incoming" / "batch.jsonl").write_text(bad_rows_files["jsonl"].read_text())
    run_config = tmp_path / "run_config.yaml"
    run_config.write_text(yaml.safe_dump(RUN_CONFIG))
    tracking_uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env = {key: value for key, value in os.environ.items() if key != "MLFLOW_LOGGING_LEVEL"} | {
        "BANKING77_DIR": str(write_slice(small_slice, tmp_path / "banking77")),
        "LABELLED_CSV_PATHS": json.dumps([str(bad_rows_files["csv"])]),
        "CONVERSATION_JSONL_DIR": str(tmp_path / "incoming"),
        "CONVERSATION_STORE_URL": f"sqlite:///{tmp_path / 'store.db'}",
        "LAKE_DIR": str(tmp_path / "lake"),
        "MLFLOW_TRACKING_URI": tracking_uri,
        "MLFLOW_REGISTRY_URI": tracking_uri,
        "MLFLOW_ARTIFACT_ROOT": str(tmp_path / "artifacts"),
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
        FAULT_ENV: Boundary.CHALLENGER_SET.value,  # in model_promotion
        FAULT_MODE_ENV: "raise",
    }
    done = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "materialize", "--run-config", str(run_config)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert done.returncode == 1, done.stderr[-3000:]
    print(done.stderr, done.stdout)  # shown by pytest when an assertion below fails

    # Progress: one short line per event, each stamped with the time since the start.
    progress = [line for line in done.stderr.splitlines() if line.strip()]
    assert all(line.startswith("[") and "s] " in line for line in progress), done.stderr[-3000:]
    bodies = [line.split("] ", 1)[1] for line in progress]
    assert "raw_conversations: started" in bodies
    assert any(body.startswith("raw_conversations: finished in ") for body in bodies)
    kept = next(body for body in bodies if " rows in: " in body)
    assert kept.startswith("validated_conversations: ")
    assert f"{len(BAD_ROW_CODES)} quarantined (" in kept
    assert "check conversations_schema: passed" in bodies
    assert any(body.startswith("fitting candidate tfidf_logreg (1/1) on ") for body in bodies)
    assert any(body.startswith("candidate tfidf_logreg: validation macro_f1 ") for body in bodies)
    assert any(body.startswith("intent_model: finished in ") for body in bodies)
    cause = f"InjectedFault: fault injected at {Boundary.CHALLENGER_SET.value}"
    assert f"model_promotion: FAILED: {cause}" in bodies
    # No stack traces and no library chatter: MLflow's database set-up lines, its prints when
    # a version is registered, its download progress bars when the gate loads the model.
    assert "Traceback" not in done.stderr and "Stack Trace" not in done.stderr
    for chatter in ("database tables", "Created version", "Downloading artifacts"):
        assert chatter not in done.stderr

    # The summary: the job's assets only, and the cause as the last line.
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    assert lines[-1] == f"cause: model_promotion: {cause}"
    rows = {line.split("│")[1].strip(): line.split("│")[2].strip() for line in lines if "│" in line}
    assert rows["intent_model"].startswith("version=1, reused=False")
    assert rows["model_promotion"] == "FAILED"
    assert rows["raw_conversations"].startswith("row_count=")
    assert "drift_report" not in done.stdout  # monitoring_job's asset, not this job's


def test_a_run_config_dagster_refuses_is_one_line(tmp_path: Path, monkeypatch, capsys):
    # `materialize` in this process: `main` calls it after configuring the process's logging
    # for good (pipelines/progress.py), which would outlive this test. What main makes of its
    # ValueError (one `error:` line, exit code 2) is proven by the real command in
    # test_cli_errors.py.
    run_config = tmp_path / "run_config.yaml"
    run_config.write_text(yaml.safe_dump({"ops": {"intent_model": {"config": {"candidatez": []}}}}))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("LAKE_DIR", str(tmp_path / "lake"))
    with pytest.raises(ValueError) as refused:
        cli.materialize(load_settings(PipelineSettings), run_config=run_config)
    message = str(refused.value)
    assert "\n" not in message and message.startswith("bad run config: ")
    assert 'unexpected config entry "candidatez" at path root:ops:intent_model:config' in message
    assert capsys.readouterr().out == ""  # no summary of a run that never started
