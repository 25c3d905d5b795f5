"""The lake and the reports on S3: LAKE_DIR=s3://bucket/lake, REPORTS_DIR=s3://bucket/reports.

A real S3-compatible server on this machine (moto in server mode, on a free port, stopped after)
and s3fs as the fsspec backend, reached the standard AWS way: AWS_ENDPOINT_URL and the AWS
credential variables in the environment, nothing of ours. `make pipeline`'s CLI trains in a
process of its own, then `python -m monitoring.job` runs in another, as on separate machines:
they share the bucket and the stores, nothing local. Every asset, each day of the conversation
log with its fingerprint and the JSONL day index, the report files and the index end up as
objects in the bucket; the working directory stays empty (a URL taken for a relative path
writes `s3:/bucket/…` there).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from models.registry import IntentRegistry, RegistryConfig
from monitoring.replay import replay_traffic
from pipelines.conversation_log import plan_ingestion
from pipelines.resources import ConversationSources
from tests.conftest import write_slice
from tests.ports import free_port

pytestmark = pytest.mark.slow
BUCKET = "supportloop"
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.fixture()
def s3_endpoint() -> Iterator[str]:
    """A moto S3 server on a free port with an empty bucket; stopped (and waited for) after."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                assert server.poll() is None, "moto server exited"
                assert time.monotonic() < deadline, "moto server did not start"
                time.sleep(0.2)
        _client(endpoint).create_bucket(Bucket=BUCKET)
        yield endpoint
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _client(endpoint: str) -> Any:  # boto3's client classes are generated at run time
    return boto3.client("s3", endpoint_url=endpoint, **_boto_credentials())


def _boto_credentials() -> dict[str, str]:
    return {
        "aws_access_key_id": CREDENTIALS["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        "region_name": CREDENTIALS["AWS_DEFAULT_REGION"],
    }


def _keys(endpoint: str, prefix: str) -> set[str]:
    pages = (
        _client(endpoint).get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    )
    return {item["Key"] for page in pages for item in page.get("Contents", [])}


def _run(command: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", *command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def _conversations(path: Path, texts: list[tuple[str, str]]) -> list[str]:
    """A JSONL file of labelled customer turns over two days; returns the days."""
    days = ["2026-11-20", "2026-11-21"]
    rows = [
        {
            "message_id": f"j-{i}",
            "conversation_id": f"c-{i}",
            "turn": 0,
            "ts": f"{days[i % 2]}T10:{i % 60:02d}:00Z",
            "speaker": "customer",
            "text": text,
            "intent": intent,
            "label_source": "agent",
        }
        for i, (text, intent) in enumerate(texts)
    ]
    path.write_text("\n".join(json.dumps(row) for row in rows) + "\n")
    return days


def test_training_and_monitoring_keep_the_lake_and_reports_in_the_bucket(
    s3_endpoint: str, small_slice, tmp_path: Path, monkeypatch
):
    incoming, workdir = tmp_path / "incoming", tmp_path / "cwd"
    incoming.mkdir()
    workdir.mkdir()
    pairs = list(zip(small_slice["text"], small_slice["category"], strict=True))
    days = _conversations(incoming / "chat.jsonl", pairs[::4])
    tracking = f"sqlite:///{tmp_path / 'mlflow.db'}"
    store_url = f"sqlite:///{tmp_path / 'store.db'}"
    env = (
        {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
        | CREDENTIALS
        | {
            "AWS_ENDPOINT_URL": s3_endpoint,
            "LAKE_DIR": f"s3://{BUCKET}/lake",
            "REPORTS_DIR": f"s3://{BUCKET}/reports",
            "BANKING77_DIR": str(write_slice(small_slice, tmp_path / "banking77")),
            "LABELLED_CSV_PATHS": "[]",
            "CONVERSATION_JSONL_DIR": str(incoming),
            "CONVERSATION_STORE_URL": store_url,
            "MLFLOW_TRACKING_URI": tracking,
            "MLFLOW_REGISTRY_URI": tracking,
            "MLFLOW_ARTIFACT_ROOT": str(tmp_path / "artifacts"),
            "DAGSTER_HOME": str(tmp_path / "dagster_home"),
        }
    )
    env.pop("MONITORING_REPORTS_DIR", None)
    env.pop("MONITORING_LAKE_DIR", None)
    run_config = tmp_path / "run_config.yaml"
    run_config.write_text(
        yaml.safe_dump({"ops": {"intent_model": {"config": {"candidates": ["tfidf_logreg"]}}}})
    )

    _run(["pipelines.cli", "materialize", "--run-config", str(run_config)], env, workdir)

    lake = _keys(s3_endpoint, "lake/")
    for asset in ("conversations", "quarantined_messages", "training_examples"):
        assert f"lake/{asset}.parquet" in lake, sorted(lake)
    for day in days:
        assert {
            f"lake/conversation_log/{day}/{name}"
            for name in ("kept.parquet", "quarantined.parquet", "summary.json")
        } <= lake
    assert "lake/conversation_log/_jsonl_days.json" in lake
    # Read back from the bucket by another process: nothing changed, nothing to read.
    for name in ("AWS_ENDPOINT_URL", *CREDENTIALS):
        monkeypatch.setenv(name, env[name])
    sources = ConversationSources(
        jsonl_dir=str(incoming), store_url=store_url, lake_dir=env["LAKE_DIR"]
    )
    assert plan_ingestion(sources.log_sources()).stale == ()

    registry = IntentRegistry(RegistryConfig(tracking, tracking))
    champion = registry.version_by_alias("champion")
    assert champion is not None
    model = registry.load_inference(str(champion.version))
    texts = small_slice["text"].tolist()[1::4][:40]
    documents = [p.to_document(model.ref) for p in model.predict(texts, None, 1)]
    end = datetime.now(UTC)
    replay_traffic(store_url, texts, documents, end - timedelta(hours=20), end)

    done = _run(["monitoring.job"], env, workdir)
    printed = json.loads(done.stdout)
    assert printed["index"] == f"s3://{BUCKET}/reports/index.html"
    assert printed["report"].startswith(f"s3://{BUCKET}/reports/")
    run_id = printed["report"].split("/")[-2]
    reports = _keys(s3_endpoint, "reports/")
    assert reports == {
        "reports/index.html",
        *(
            f"reports/{run_id}/{name}"
            for name in (
                "evidently.html",
                "index.html",
                "summary.json",
                "new_intents.json",
                "reliability_diagram.png",  # the champion's, logged at training
                "snapshot.json",  # the run's Evidently snapshot, kept
            )
        ),
    }
    body = _client(s3_endpoint).get_object(Bucket=BUCKET, Key=f"reports/{run_id}/summary.json")
    assert json.loads(body["Body"].read())["mlflow_run_id"]

    assert list(workdir.iterdir()) == []  # no `s3:` folder, no stray lake or report files
