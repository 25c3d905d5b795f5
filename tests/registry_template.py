"""A test registry built once a run and copied to each xdist worker, its paths rewritten.

Session fixtures such as the serving tests' and the monitoring tests' champions each train, log
and register a model into an MLflow SQLite store of their own: with two xdist workers, both
workers paid for it. The first worker to ask builds the store in the run's shared temp folder
(under a file lock); every worker then gets a copy in its own folder. MLflow keeps absolute
`file://` locations (runs, model versions, logged models, datasets, the MLmodel file), so the
copy's are rewritten to its own folder: it is a complete registry of its own, as if built there.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from filelock import FileLock

DB_NAME = "mlflow.db"
# Text artifacts that may name their own location (MLmodel's artifact_path); models are binary.
TEXT_SUFFIXES = {"", ".json", ".yaml", ".yml", ".txt"}


def _shared_folder(factory: pytest.TempPathFactory) -> Path:
    """The run's folder both xdist workers see (pytest's own base folder outside xdist)."""
    base = factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def _rewrite_db(db: Path, old: str, new: str) -> None:
    """Replace `old` by `new` in every text column of every table of an SQLite file."""
    with sqlite3.connect(db) as connection:
        tables = connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        for (table,) in tables.fetchall():
            columns = connection.execute(f'PRAGMA table_info("{table}")').fetchall()
            for column in (c[1] for c in columns):  # a number column never contains `old`
                connection.execute(
                    f'UPDATE "{table}" SET "{column}" = replace("{column}", ?, ?) '
                    f'WHERE instr("{column}", ?) > 0',
                    (old, new, old),
                )
    connection.close()


def _rewrite_files(folder: Path, old: str, new: str) -> None:
    """Replace `old` by `new` in the text artifacts under `folder`."""
    for path in folder.rglob("*"):
        if path.is_file() and path.suffix in TEXT_SUFFIXES and path.name != DB_NAME:
            text = path.read_bytes()
            if old.encode() in text:
                path.write_bytes(text.replace(old.encode(), new.encode()))


def registry_copy(
    factory: pytest.TempPathFactory, name: str, build: Callable[[Path], dict[str, str]]
) -> tuple[Path, dict[str, str]]:
    """A fresh folder holding a copy of the registry `build(folder)` makes once a run.

    `build` writes `mlflow.db` (and its artifacts) into the folder it is given and returns what
    the fixture needs to know (e.g. the champion's version); the copy's folder and that are
    returned. `name` tells templates apart.
    """
    template = _shared_folder(factory) / f"registry-{name}"
    done = template / "built.json"
    with FileLock(f"{template}.lock"):
        if not done.exists():
            shutil.rmtree(template, ignore_errors=True)  # a build that failed half-way
            template.mkdir()
            done.write_text(json.dumps(build(template)))
    root = factory.mktemp(name)
    shutil.copytree(template, root, dirs_exist_ok=True)
    (root / done.name).unlink()
    _rewrite_db(root / DB_NAME, str(template), str(root))
    _rewrite_files(root, str(template), str(root))
    return root, json.loads(done.read_text())
