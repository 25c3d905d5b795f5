"""`bentoml serve` that cannot serve exits 2 with one line; `make serve` announces only a ready one.

The refusals run the real `bentoml serve` (tests/serving/conftest.py) on stores in a temporary
directory, all three at once on one empty registry (most of each is an interpreter importing
BentoML: on two cores they overlap rather than queue); `make serve` runs the real Makefile target
on the session registry.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from models.registry import IntentRegistry, RegistryConfig
from serving.launch import is_ready
from serving.process_tree import (
    ServerStartError,
    port_listeners,
    running,
    stop_tree,
    tree,
    wait_ready,
)
from tests.serving.conftest import CHAT_SECRET, REPO_ROOT, ServiceProcess, free_port, service_env


def refusal_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """A service environment on an empty registry under `tmp_path`."""
    database = tmp_path / "mlflow.db"
    IntentRegistry(RegistryConfig(f"sqlite:///{database}")).ensure_registered_model()
    return os.environ | {
        "SERVING_MLFLOW_TRACKING_URI": f"sqlite:///{database}",
        "SERVING_STORE_URL": f"sqlite:///{tmp_path / 'store.db'}",
        "SERVING_TEST_LOG_DIR": str(tmp_path),
        "BENTOML_HOME": str(tmp_path / "bentoml"),
        "CHAT_JWT_SECRET": CHAT_SECRET,
        **extra,
    }


def refused(env: dict[str, str]) -> tuple[int, str]:
    """Run `bentoml serve` until it exits; its exit code and log. Fails if it ever serves."""
    process = ServiceProcess(env)
    process.launch()
    assert process.process is not None and process.log is not None
    log = process.log

    def never_ready() -> bool:
        # A worker's traceback means the refusal did not come from the CLI process, before
        # binding: today's loop of dying and restarted workers, which never exits by itself.
        assert "Traceback" not in log.read_text(), log.read_text()[-3000:]
        assert not is_ready(process.url), "the service started"  # a cheap probe: polled often
        return False

    try:
        with pytest.raises(ServerStartError, match="exited"):
            wait_ready(process.process, never_ready, log)
    finally:
        process.stop(kill=True)
    return process.process.returncode, log.read_text()


def error_lines(log: str) -> list[str]:
    """The `error:` lines of a log."""
    return [line for line in log.splitlines() if line.startswith("error: ")]


def case_env(base: dict[str, str], directory: Path, **extra: str) -> dict[str, str]:
    """`base` (a refusal_env) with its own store, log folder and BentoML home in `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    return base | {
        "SERVING_STORE_URL": f"sqlite:///{directory / 'store.db'}",
        "SERVING_TEST_LOG_DIR": str(directory),
        "BENTOML_HOME": str(directory / "bentoml"),
        **extra,
    }


NO_CHAMPION, MISSING_STORE, BAD_SETTING = "no champion", "missing store", "bad setting"


@pytest.fixture(scope="module")
def refusals(tmp_path_factory) -> Iterator[dict[str, tuple[dict[str, str], Future]]]:
    """Each refusal case's environment and its `refused(env)` result, all run at once.

    A thread per case waits for its own `bentoml serve`; a test takes its case's result (or the
    assertion its run failed with). The registry is created once: only the no-champion case
    reads it, the other two are refused before they would.
    """
    root = tmp_path_factory.mktemp("refusals")
    base = refusal_env(root)
    missing = root / "elsewhere" / "mlflow.db"
    envs = {
        NO_CHAMPION: case_env(base, root / "no-champion"),
        MISSING_STORE: case_env(
            base, root / "missing-store", SERVING_MLFLOW_TRACKING_URI=f"sqlite:///{missing}"
        ),
        BAD_SETTING: case_env(base, root / "bad-setting", SERVING_TOP_K="0"),
    }
    with ThreadPoolExecutor(max_workers=len(envs)) as pool:
        yield {name: (env, pool.submit(refused, env)) for name, env in envs.items()}


@pytest.mark.slow
def test_bentoml_serve_without_a_champion_exits_2_naming_model_alias_and_store(refusals):
    env, result = refusals[NO_CHAMPION]
    returncode, log = result.result()
    assert returncode == 2
    assert "Traceback" not in log
    [line] = error_lines(log)
    assert "registered model 'intent-classifier' has no version with alias 'champion'" in line
    assert env["SERVING_MLFLOW_TRACKING_URI"] in line and "make pipeline" in line


@pytest.mark.slow
def test_bentoml_serve_on_a_missing_store_exits_2_and_creates_none(refusals):
    env, result = refusals[MISSING_STORE]
    missing = Path(env["SERVING_MLFLOW_TRACKING_URI"].removeprefix("sqlite:///"))
    returncode, log = result.result()
    assert returncode == 2 and "Traceback" not in log
    assert error_lines(log) == [
        f"error: no MLflow database at {missing}: run `make pipeline` first or set "
        "SERVING_MLFLOW_TRACKING_URI or MLFLOW_TRACKING_URI"
    ]
    assert not missing.parent.exists()


@pytest.mark.slow
def test_bentoml_serve_with_a_bad_setting_exits_2_naming_the_variable(refusals):
    _, result = refusals[BAD_SETTING]
    returncode, log = result.result()
    assert returncode == 2 and "Traceback" not in log
    assert error_lines(log) == ["error: bad setting SERVING_TOP_K: Input should be greater than 0"]


@pytest.mark.slow
def test_make_serve_prints_the_urls_once_ready_and_ctrl_c_stops_the_whole_tree(
    serving_registry,
):
    port = free_port()
    make = subprocess.Popen(
        ["make", "-s", "-o", ".venv/.installed", "serve", "HOST=127.0.0.1", f"PORT={port}"],
        cwd=REPO_ROOT,
        env=service_env(serving_registry, "make-serve.db"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's foreground job
    )
    assert make.stdout is not None
    members = tree(make.pid)
    try:
        for line in make.stdout:  # ends at EOF if the server exits first
            if line.startswith("Intent service:"):
                break
        else:
            pytest.fail("make serve ended without printing the URLs")
        assert f"http://127.0.0.1:{port}" in line
        # Printed only once ready: /readyz answers at the moment the URLs appear.
        assert httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=10).status_code == 200
        members = tree(make.pid)
        assert len(members) >= 4  # make, the launcher, the arbiter, a worker
        os.killpg(make.pid, signal.SIGINT)  # Ctrl-C
        make.communicate()
    finally:
        if make.poll() is None:  # the test failed before Ctrl-C stopped it
            stop_tree(make, kill=True, port=port, known=members or tree(make.pid))
    assert running(members) == []
    assert port_listeners(port) == []
