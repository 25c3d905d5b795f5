"""What `make pipeline` loads before a step needs it: MLflow only when something uses it.

A run whose retrain rule keeps the model never logs or registers, so importing MLflow (~2 CPU s)
there was pure start-up cost (bench/README.md, data scaling). Each check runs in a fresh
interpreter: the test session itself has imported MLflow long before.
"""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import REPO_ROOT

LOADED = """
import json, sys
from pipelines.progress import configure_python_logging
configure_python_logging()
import pipelines.definitions
print(json.dumps({name: name in sys.modules for name in ("mlflow", "monitoring.job")}))
"""

QUIETED = """
import io, json, logging, sys
from pipelines.progress import configure_python_logging
configure_python_logging(io.StringIO())
from models.mlflow_client import mlflow_error  # what the registry's client imports first
mlflow_error()
from mlflow.utils import logging_utils
logging_utils.eprint("Created version '1' of model 'x'.")
library = logging.getLogger("mlflow")
print(json.dumps({
    "level": library.level,
    "propagates": library.propagate,
    "our_handler": [type(h.formatter).__name__ for h in library.handlers],
}))
"""


def _run(code: str) -> tuple[dict[str, object], str]:
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr


def test_the_definitions_and_the_progress_logging_do_not_import_mlflow_or_monitoring():
    loaded, _ = _run(LOADED)
    assert loaded == {"mlflow": False, "monitoring.job": False}


def test_mlflow_is_quieted_as_soon_as_something_imports_it():
    found, stderr = _run(QUIETED)
    assert found["level"] == 30 and found["propagates"] is False  # WARNING, through our handler
    assert found["our_handler"] == ["_ElapsedFormatter"]
    assert "Created version" not in stderr
