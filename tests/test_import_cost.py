"""Entry modules leave the NLP libraries to the code that uses them.

Dagster's code server and every run import `pipelines.definitions`, and every BentoML process
imports the serving modules. TextBlob (all of NLTK with it) and spaCy cost seconds of CPU each
and are needed only where features are computed, so `features` imports them on first use.
Checked by which modules a fresh interpreter holds, never by time.

One interpreter imports the entry modules in turn and notes the watched modules after each
(about 10 s of CPU saved against one interpreter per module: they share MLflow, pandas and
scikit-learn). A module is only charged with what appeared after its own import; when an
earlier one already loaded a watched library, a later one is checked in a fresh interpreter.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
NLP_LIBRARIES = ("textblob", "nltk", "spacy")
# The order they are imported in: the code location first, as a fresh interpreter sees it.
ENTRY_MODULES = ("pipelines.definitions", "serving.predictions")
SNAPSHOT = "print(json.dumps([name for name in {watched!r} if name in sys.modules]))"


def loaded_after_imports(modules: tuple[str, ...], watched: tuple[str, ...]) -> list[list[str]]:
    """Which of `watched` a fresh interpreter holds after importing each of `modules` in turn."""
    lines = ["import json, sys"]
    for module in modules:
        lines += [f"import {module}", SNAPSHOT.format(watched=list(watched))]
    done = subprocess.run(
        [sys.executable, "-c", "\n".join(lines)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return [json.loads(line) for line in done.stdout.splitlines()[-len(modules) :]]


@pytest.fixture(scope="module")
def entry_imports() -> dict[str, list[str]]:
    """The NLP libraries held after each entry module's import, in one fresh interpreter."""
    imports = loaded_after_imports(ENTRY_MODULES, NLP_LIBRARIES)
    return dict(zip(ENTRY_MODULES, imports, strict=True))


def loaded_by(module: str, watched: tuple[str, ...], entry_imports: dict[str, list[str]]):
    """Which of `watched` importing `module` loads, from the shared interpreter if it can tell.

    It can when none of `watched` was loaded before `module`'s turn; otherwise an earlier
    module's imports hide this one's, and a fresh interpreter importing `module` alone decides.
    """
    position = ENTRY_MODULES.index(module)
    before = entry_imports[ENTRY_MODULES[position - 1]] if position else []
    if any(name in before for name in watched):
        return loaded_after_imports((module,), watched)[0]
    return [name for name in entry_imports[module] if name in watched]


def test_the_code_location_imports_no_nlp_library(entry_imports) -> None:
    assert loaded_by("pipelines.definitions", NLP_LIBRARIES, entry_imports) == []


def test_serving_predictions_do_not_import_spacy(entry_imports) -> None:
    # Serving scores sentiment (TextBlob, loaded at worker start) but never runs spaCy.
    assert loaded_by("serving.predictions", ("spacy",), entry_imports) == []
