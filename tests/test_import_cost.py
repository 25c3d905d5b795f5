"""Entry modules leave the NLP libraries to the code that uses them.

Dagster's code server and every run import `pipelines.definitions`, and every BentoML process
imports the serving modules. TextBlob (all of NLTK with it) and spaCy cost seconds of CPU each
and are needed only where features are computed, so `features` imports them on first use.
Checked by which modules a fresh interpreter holds, never by time.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
NLP_LIBRARIES = ("textblob", "nltk", "spacy")


def loaded_after_import(module: str, watched: tuple[str, ...]) -> list[str]:
    """Which of `watched` a fresh interpreter has in sys.modules after `import module`."""
    code = (
        f"import json, sys\nimport {module}\n"
        f"print(json.dumps([name for name in {list(watched)!r} if name in sys.modules]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1])


def test_the_code_location_imports_no_nlp_library() -> None:
    assert loaded_after_import("pipelines.definitions", NLP_LIBRARIES) == []


def test_serving_predictions_do_not_import_spacy() -> None:
    # Serving scores sentiment (TextBlob, loaded at worker start) but never runs spaCy.
    assert loaded_after_import("serving.predictions", ("spacy",)) == []
