"""Every server counts in a Prometheus multiprocess directory of its own."""

from __future__ import annotations

import subprocess

import httpx
import pytest
from bentoml._internal.container import BentoMLContainer

from serving.metrics_dir import remove_dead_servers_dirs, server_metrics_dir, use_own_metrics_dir
from tests.serving.conftest import ServiceProcess, service_env


@pytest.fixture
def container_reset():
    yield
    BentoMLContainer.prometheus_multiproc_dir.reset()


def test_the_serving_process_gets_a_directory_named_after_it(tmp_path, container_reset):
    path = use_own_metrics_dir({"BENTOML_HOME": str(tmp_path)}, pid=4242)
    assert path == tmp_path / "prometheus" / "serve-4242"
    assert BentoMLContainer.prometheus_multiproc_dir.get() == str(path)
    assert not path.exists()  # BentoML creates it when it starts serving, not the import


def test_a_worker_keeps_its_servers_directory(tmp_path, container_reset):
    chosen = str(tmp_path / "from-the-arbiter")
    environ = {"BENTOML_HOME": str(tmp_path), "PROMETHEUS_MULTIPROC_DIR": chosen}
    assert str(use_own_metrics_dir(environ, pid=4242)) == chosen
    assert BentoMLContainer.prometheus_multiproc_dir.get() == chosen


def test_only_dead_servers_directories_are_removed(tmp_path):
    finished = subprocess.Popen(["true"])
    finished.wait()
    alive = subprocess.Popen(["sleep", "600"])
    try:
        environ = {"BENTOML_HOME": str(tmp_path)}
        dead_dir, live_dir = (server_metrics_dir(environ, p.pid) for p in (finished, alive))
        for directory in (dead_dir, live_dir):
            directory.mkdir(parents=True)
            (directory / "counter_1.db").write_bytes(b"x")
        assert remove_dead_servers_dirs(dead_dir.parent) == [dead_dir]
        assert not dead_dir.exists() and live_dir.exists()
    finally:
        alive.kill()
        alive.wait()


def predictions_counted(server: ServiceProcess) -> float:
    """The sum of `intent_predictions_total` over intents, from the server's /metrics."""
    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    lines = [line for line in text.splitlines() if line.startswith("intent_predictions_total{")]
    return sum(float(line.rsplit(" ", 1)[1]) for line in lines)


def predict(server: ServiceProcess, times: int) -> None:
    for _ in range(times):
        response = httpx.post(
            f"{server.url}/predict", json={"text": "where is my card"}, timeout=30
        )
        assert response.status_code == 200, response.text


@pytest.mark.slow
def test_a_second_server_leaves_the_first_ones_counters_alone(service, serving_registry):
    predict(service, 3)
    first = predictions_counted(service)
    assert first >= 3
    # Same host, same BENTOML_HOME: what two `make serve` on two ports share.
    second = ServiceProcess(service_env(serving_registry, "metrics.db"))
    try:
        second.start()
        predict(second, 2)
        assert predictions_counted(second) == 2
        assert predictions_counted(service) == first
        predict(service, 1)
        assert predictions_counted(service) == first + 1
    finally:
        second.stop()
