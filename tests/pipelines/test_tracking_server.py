"""The pipeline and its clients against a real `mlflow server`, over HTTP only.

A training run on the production profile's tracking server must leave its model where any
machine can download it: the server's proxied `mlflow-artifacts:/` root, never a `file://`
path of the machine that trained it. Serving loads it knowing only the server's URL.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
from mlflow import MlflowClient

from pipelines.definitions import build_definitions
from pipelines.settings import PipelineSettings
from tests.conftest import write_slice
from tests.mlflow_server import MlflowServer
from tests.pipelines.test_cli_errors import assert_one_line_error, cli_env, run_cli

pytestmark = pytest.mark.slow
REPO_ROOT = Path(__file__).resolve().parents[2]
MODEL = "intent-classifier"
# Serving's load, in a process that knows the server's URL and nothing else.
LOAD_AND_PREDICT = """
import json, sys
from models.registry import IntentRegistry, RegistryConfig
inference = IntentRegistry(RegistryConfig(sys.argv[1])).load_inference(sys.argv[2])
print(json.dumps(inference.predict_documents(["my card has not arrived yet"], None, 1)))
"""


def _artifact_requests(server: MlflowServer) -> int:
    """How many artifact downloads the server has proxied so far (its access log)."""
    log = server.log.read_text(errors="replace")
    return sum(
        1 for line in log.splitlines() if '"GET /api/2.0/mlflow-artifacts/artifacts/' in line
    )


@pytest.fixture(scope="module")
def trained(mlflow_server: MlflowServer, tmp_path_factory, small_slice) -> str:
    """One training run of the pipeline against the server; returns the registered version."""
    root = tmp_path_factory.mktemp("server_pipeline")
    (root / "incoming").mkdir()
    settings = PipelineSettings(
        banking77_dir=write_slice(small_slice, root / "banking77"),
        labelled_csv_paths=[],
        conversation_jsonl_dir=root / "incoming",
        conversation_store_url=f"sqlite:///{root / 'store.db'}",
        lake_dir=root / "lake",
        mlflow_tracking_uri=mlflow_server.uri,
        mlflow_registry_uri=None,
        # No artifact root: the default, as a user moving to a server would leave it.
    )
    job = build_definitions(settings).resolve_job_def("training_job")
    run_config = {"ops": {"intent_model": {"config": {"candidates": ["tfidf_logreg"]}}}}
    (root / "dagster_home").mkdir()
    with dg.instance_for_test(temp_dir=str(root / "dagster_home")) as instance:
        assert job.execute_in_process(instance=instance, run_config=run_config).success
    versions = MlflowClient(mlflow_server.uri, mlflow_server.uri).search_model_versions(
        f"name = '{MODEL}'"
    )
    assert len(versions) == 1
    return str(versions[0].version)


def test_a_run_on_the_server_is_loaded_by_url_alone_from_another_directory(
    mlflow_server: MlflowServer, trained: str, tmp_path: Path
):
    client = MlflowClient(mlflow_server.uri, mlflow_server.uri)
    version = client.get_model_version(MODEL, trained)
    run = client.get_run(version.run_id)
    assert run.info.artifact_uri.startswith("mlflow-artifacts:/"), run.info.artifact_uri
    assert client.get_model_version_download_uri(MODEL, trained).startswith("mlflow-artifacts:/")
    # The server wrote the model into its own folder, behind its HTTP API.
    assert any(mlflow_server.artifacts.rglob("MLmodel"))

    elsewhere = tmp_path / "serving_host"
    elsewhere.mkdir()
    before = _artifact_requests(mlflow_server)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    done = subprocess.run(
        [sys.executable, "-c", LOAD_AND_PREDICT, mlflow_server.uri, trained],
        cwd=elsewhere,
        env=env | {"PYTHONPATH": str(REPO_ROOT)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    [document] = json.loads(done.stdout.splitlines()[-1])
    assert document["intent"] and 0 <= document["confidence"] <= 1
    # Downloaded through the server, and nothing (no ./mlruns) appeared where it ran.
    assert _artifact_requests(mlflow_server) > before
    assert list(elsewhere.iterdir()) == []


def test_status_reads_the_champion_from_the_server_then_says_when_it_is_gone(
    mlflow_server: MlflowServer, trained: str, tmp_path: Path
):
    env = cli_env(tmp_path, MLFLOW_TRACKING_URI=mlflow_server.uri)
    done = run_cli(env, "status")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["champion"]["version"] == trained

    mlflow_server.stop()  # the module's last test: the fixture's own stop is then a no-op
    done = run_cli(env, "status")
    assert_one_line_error(done, f"MLflow tracking server {mlflow_server.uri} is unreachable")
