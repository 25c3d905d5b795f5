"""What `make pipeline` loads before a step needs it: MLflow and scikit-learn only when used.

A run whose retrain rule keeps the model never fits, logs or registers, so importing MLflow
(~2 CPU s) or scikit-learn with SciPy (~1 CPU s) there was pure start-up cost (bench/README.md,
data scaling). Each check runs in a fresh interpreter: the test session itself has imported
both long before.
"""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import REPO_ROOT

HEAVY = ("mlflow", "monitoring.job", "sklearn", "scipy")
LOADED = f"""
import json, sys
HEAVY = {HEAVY!r}
from pipelines.progress import configure_python_logging
configure_python_logging()
import pipelines.definitions
print(json.dumps({{name: name in sys.modules for name in HEAVY}}))
"""

TOKENS = """
import json, pickle, sys
import features.dialogue
sklearn_after_dialogue = "sklearn" in sys.modules
import skops.io as sio
from sklearn.pipeline import Pipeline
from features.dialogue_tokens import DialogueTokens
from models.registry import TRUSTED_SKOPS_TYPES
frame = __import__("pandas").DataFrame({"text": ["hi"], "context": ["{}"]})
pipeline = Pipeline([("tokens", DialogueTokens())])
data = sio.dumps(pipeline)
untrusted = [t for t in sio.get_untrusted_types(data=data) if t not in TRUSTED_SKOPS_TYPES]
loaded = pickle.loads(pickle.dumps(pipeline))
cls = type(loaded.steps[0][1])
restored = sio.loads(data, trusted=TRUSTED_SKOPS_TYPES + untrusted).steps[0][1]
print(json.dumps({
    "sklearn_after_dialogue": sklearn_after_dialogue,
    "name": f"{cls.__module__}.{cls.__qualname__}",
    "same_class": features.dialogue.DialogueTokens is cls is DialogueTokens,
    "untrusted": untrusted,
    "tokens": restored.transform(frame)[0].split(),
}))
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


def test_the_definitions_and_the_progress_logging_import_no_mlflow_sklearn_or_monitoring():
    loaded, _ = _run(LOADED)
    assert loaded == dict.fromkeys(HEAVY, False)


def test_a_pickled_dialogue_pipeline_still_loads_by_its_recorded_class_name():
    # DialogueTokens moved out of features.dialogue (its scikit-learn base classes) but keeps
    # the name registered models were pickled and trusted under (models/registry.py).
    found, _ = _run(TOKENS)
    assert found == {
        "sklearn_after_dialogue": False,
        "name": "features.dialogue.DialogueTokens",
        "same_class": True,
        "untrusted": [],
        "tokens": ["turn:0"],
    }


def test_mlflow_is_quieted_as_soon_as_something_imports_it():
    found, stderr = _run(QUIETED)
    assert found["level"] == 30 and found["propagates"] is False  # WARNING, through our handler
    assert found["our_handler"] == ["_ElapsedFormatter"]
    assert "Created version" not in stderr
