"""Shared fixtures: slices of Banking77 read at test time, bad-row files, temporary stores."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import pickle
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from filelock import FileLock

from models.candidates import resolve
from models.registry import IntentRegistry
from models.splits import assign_splits
from models.tracking import log_and_register
from models.training import TrainingOutcome, train_intent_model
from tests import scheduling
from tests.mlflow_server import MlflowServer, running_mlflow_server
from tests.orphans import no_process_left_running  # noqa: F401  (session-wide, autouse)
from tests.postgres import PostgresServer, start_postgres
from tests.redis_server import running_redis

REPO_ROOT = Path(__file__).resolve().parents[1]
# The suite's training budget. One search trial per candidate (the declared configuration), so
# every training run still goes through the search and logs its trial run; out-of-scope draws
# off (each is one more fit). tests/models/test_search.py and test_out_of_scope.py (and the
# pipeline test's launchpad config) set larger budgets where they test them.
os.environ.setdefault("TRAIN_SEARCH_TRIALS", "1")
os.environ.setdefault("TRAIN_OOS_DRAWS", "0")
# Temporary files (every tmp_path, and through TMPDIR the servers' and subprocesses' own: SQLite
# stores, MLflow, Dagster, PostgreSQL, Chromium) on tmpfs when there is one. SQLite syncs every
# commit to disk: test_registry + test_retrain_rule took 61 -> 58 s on a quiet machine, 120 ->
# 88 s while other jobs kept the disk busy (same CPU both ways). No test checks durability across
# a power loss; a SIGKILL (the crash tests) keeps what reached the page cache on either. A
# TMPDIR the caller set wins.
RAM_TMP = Path("/dev/shm")
if "TMPDIR" not in os.environ and RAM_TMP.is_dir() and os.access(RAM_TMP, os.W_OK):
    os.environ["TMPDIR"] = str(RAM_TMP)
    tempfile.tempdir = None  # gettempdir() reads TMPDIR again (pytest's basetemp uses it)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """On xdist's workers (`make test`), the longest files first: see tests/scheduling.py."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        scheduling.longest_files_first(items)


@pytest.fixture(scope="session")
def banking77_dir() -> Path:
    """The Banking77 folder (BANKING77_DIR or the shared folder beside the repo)."""
    directory = Path(os.environ.get("BANKING77_DIR", REPO_ROOT.parent / "shared/data/banking77"))
    assert (directory / "train.csv").is_file(), f"Banking77 not found in {directory}"
    return directory


@pytest.fixture(scope="session")
def banking77_train(banking77_dir: Path) -> pd.DataFrame:
    """The Banking77 training CSV."""
    return pd.read_csv(banking77_dir / "train.csv")


def write_slice(frame: pd.DataFrame, folder: Path) -> Path:
    """Write a `text,category` slice as `train.csv` in `folder` (a Banking77-shaped folder)."""
    folder.mkdir(parents=True, exist_ok=True)
    frame[["text", "category"]].to_csv(folder / "train.csv", index=False)
    return folder


@pytest.fixture(scope="session")
def small_slice(banking77_train: pd.DataFrame) -> pd.DataFrame:
    """Six intents, 40 messages each: enough to train, small enough to be quick."""
    intents = sorted(banking77_train["category"].unique())[:6]
    chosen = banking77_train[banking77_train["category"].isin(intents)]
    return chosen.groupby("category", group_keys=False).head(40).reset_index(drop=True)


BAD_ROW_CODES = {
    "empty_text",
    "text_too_long",
    "missing_label",
    "unparseable_context",
    "bad_timestamp",
    "duplicate_message_id",
    "invalid_utf8",
}


@pytest.fixture()
def bad_rows_files(tmp_path: Path) -> dict[str, Path]:
    """A labelled CSV and a conversation JSONL with one example of every bad-row kind."""
    csv_path = tmp_path / "labelled.csv"
    with csv_path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["user_message", "intent", "context"])
        writer.writerow(["Where is my new card?", "card_arrival", '{"user": {"message_count": 3}}'])
        writer.writerow(["   ", "card_arrival", ""])  # empty text
        writer.writerow(["x" * 2500, "card_arrival", ""])  # longer than the 2,000 default
        writer.writerow(["How do I top up?", "", ""])  # missing label
        writer.writerow(["Card declined", "declined_card_payment", "{not json"])  # bad context
    with csv_path.open("ab") as handle:  # invalid UTF-8 bytes in one row
        handle.write(b"My card \xff\xfe is blocked,card_not_working,\n")
    jsonl_path = tmp_path / "conversations.jsonl"
    good = {
        "message_id": "m-1",
        "conversation_id": "c-1",
        "turn": 0,
        "ts": "2026-11-01T10:00:00Z",
        "speaker": "customer",
        "user_id": "u-1",
        "channel": "web",
        "text": "I want to cancel a transfer",
        "intent": "cancel_transfer",
        "label_source": "agent",
        "context": {"session": {"message_count": 1}},
    }
    lines = [
        json.dumps(good),
        json.dumps(good | {"text": "Another message with a reused id"}),  # duplicate id
        json.dumps(good | {"message_id": "m-2", "ts": "yesterday-ish"}),  # bad timestamp
        json.dumps(good | {"message_id": "m-3", "turn": 1, "speaker": "bot", "text": "Done."}),
    ]
    jsonl_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return {"csv": csv_path, "jsonl": jsonl_path}


# Where register_version's trainings are kept for the run: the xdist workers' shared base
# temp folder (set by `training_cache`), so the two workers train a given slice once between them.
_training_cache: dict[str, Path] = {}
# The settings a fit reads from the environment (models/*, features/*): part of its cache key.
TRAINING_ENV_PREFIXES = ("TRAIN_", "FEATURES_")


@pytest.fixture(scope="session", autouse=True)
def training_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The run's folder of trained outcomes, shared by the xdist workers of one run."""
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    folder = shared / "trained-outcomes"
    folder.mkdir(exist_ok=True)
    _training_cache["dir"] = folder
    return folder


def trained(candidate: str, splits: list[pd.DataFrame]) -> TrainingOutcome:
    """`train_intent_model` on `splits`, fitted once a run for the same data and settings.

    Training is seeded (same rows, candidate and TRAIN_*/FEATURES_* settings: same model and
    scores), and most tests register a model of the same slice, so a fit is pickled and each
    later call gets an unpickled copy of its own; every caller still logs its own MLflow run
    and version.
    """
    digest = hashlib.sha256(candidate.encode())
    digest.update(
        repr(
            sorted((k, v) for k, v in os.environ.items() if k.startswith(TRAINING_ENV_PREFIXES))
        ).encode()
    )
    for split in splits:
        digest.update(pd.util.hash_pandas_object(split, index=False).to_numpy().tobytes())
    folder = _training_cache.get("dir")
    if folder is None:  # outside a pytest session
        return train_intent_model(resolve([candidate]), *splits)
    path = folder / f"{digest.hexdigest()}.pickle"
    with FileLock(f"{path}.lock"):  # the other worker waits rather than fitting it too
        if not path.exists():
            outcome = train_intent_model(resolve([candidate]), *splits)
            path.write_bytes(pickle.dumps(outcome))
        return pickle.loads(path.read_bytes())


def register_version(
    examples: pd.DataFrame,
    registry: IntentRegistry,
    artifacts: Path | None,
    experiment: str = "serving-tests",
    candidate: str = "tfidf_logreg",
) -> str:
    """Train a quick model on `examples` (text, intent) and register it; returns the version.

    `artifacts` None: the experiment takes the tracking server's own root
    (`mlflow-artifacts:/`), as a client on another machine would.
    """
    frame = examples.rename(columns={"category": "intent"}).assign(context="{}")
    frame["split"] = assign_splits(frame["text"].tolist(), frame["intent"].tolist())
    splits = [frame[frame["split"] == name] for name in ("train", "validation", "test")]
    outcome = trained(candidate, splits)
    version = log_and_register(
        outcome,
        registry,
        experiment,
        str(artifacts) if artifacts is not None else None,
        f"fp-{time.time_ns()}",
        {},
        {},
        reference=pd.concat([splits[0], splits[2]]),
    )
    return str(version.version)


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory) -> Iterator[MlflowServer]:
    """A real `mlflow server` (SQLite backend, proxied artifacts) on a free port for a module."""
    with running_mlflow_server(tmp_path_factory.mktemp("mlflow_server")) as server:
        yield server


CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    # This machine's network is closed: without these Chromium keeps dialling Google.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser():
    """Headless Debian Chromium driven by Playwright (no browser download).

    Module-scoped: Playwright's sync API keeps an event loop running on this thread while it
    is open, and later tests call asyncio.run().
    """
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    assert executable, "chromium is missing: `make test` installs it (Debian package chromium)"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS
        )
        yield launched
        launched.close()


@pytest.fixture
def screenshot_dir(tmp_path: Path) -> Path:
    """$SCREENSHOT_DIR (`make screenshots`), else a temporary folder."""
    directory = Path(os.environ.get("SCREENSHOT_DIR") or tmp_path)
    directory.mkdir(parents=True, exist_ok=True)
    return directory


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A real PostgreSQL server for the session (tests/postgres.py), stopped at the end."""
    server = start_postgres()
    yield server
    server.stop()


@pytest.fixture()
def postgres_url(postgres_server: PostgresServer) -> str:
    """The SQLAlchemy URL of a fresh, empty PostgreSQL database for one test."""
    return postgres_server.create_database(f"test_{uuid.uuid4().hex[:12]}")


@pytest.fixture(params=["sqlite", "postgresql"])
def sqlite_or_postgres_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty store, once as a SQLite file and once as a fresh database on the session's
    PostgreSQL: for tests of what both stores must do alike."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real `redis-server` of the test module's own (no persistence), stopped after it."""
    with running_redis(tmp_path_factory.mktemp("redis")) as url:
        yield url
