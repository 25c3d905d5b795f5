"""The logged model's pyfunc: each row becomes the document `/predict` answers with.

`mlflow.pyfunc.load_model(...).predict(frame)` and `mlflow models serve` therefore answer like
the service: intent (or `nlu_fallback`), confidence, fallback, top-k and sentiment, under the
version's own calibrated fallback policy. The document is built by `IntentInference` in one
place for serving, chat, monitoring and this model.

Logged as MLflow "models from code" (`pyfunc_entry.py` is the model's code): nothing is pickled.
The fitted pipeline is the skops file `artifacts/model.skops`, loaded against the allow-list
kept in code (`TRUSTED_SKOPS_TYPES`), as `IntentRegistry.load_pipeline` loads it; the policy
travels in the model's `model_config`, so the model needs no registry to answer.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.models.model import ModelInfo
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE
from mlflow.pyfunc import PythonModel, PythonModelContext
from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema
from mlflow.types.schema import Array, Object, Property

from models.fallback import FallbackPolicy
from models.inference import IntentInference
from models.predictions import PredictionDocument
from models.registry import TRUSTED_SKOPS_TYPES

PIPELINE_ARTIFACT = "pipeline"
DEFAULT_TOP_K = 5
_ENTRY = Path(__file__).with_name("pyfunc_entry.py")
_PACKAGES = Path(__file__).resolve().parents[1]
_RANKED = Object([Property("intent", "string"), Property("confidence", "double")])
SIGNATURE = ModelSignature(
    inputs=Schema([ColSpec("string", "text"), ColSpec("string", "context", required=False)]),
    outputs=Schema(
        [
            ColSpec("string", "intent"),
            ColSpec("double", "confidence"),
            ColSpec("boolean", "fallback"),
            ColSpec(Array(_RANKED), "top_k"),
            ColSpec(
                Object([Property("polarity", "double"), Property("subjectivity", "double")]),
                "sentiment",
            ),
        ]
    ),
    params=ParamSchema([ParamSpec("top_k", "long", DEFAULT_TOP_K)]),
)


class IntentPyfunc(PythonModel):
    """Texts (and optional JSON contexts) in, one `/predict` document per row out."""

    def load_context(self, context: PythonModelContext) -> None:
        """Load the skops pipeline (allow-listed types only) and the version's fallback policy."""
        import skops.io

        pipeline = skops.io.load(context.artifacts[PIPELINE_ARTIFACT], trusted=TRUSTED_SKOPS_TYPES)
        policy = FallbackPolicy(**context.model_config["fallback"])
        self.inference = IntentInference(pipeline, policy)

    def predict(
        self,
        context: PythonModelContext,
        model_input: pd.DataFrame,
        params: dict[str, Any] | None = None,
    ) -> list[PredictionDocument]:
        """One document per row; `params={"top_k": n}` sets how many intents are ranked.

        A row without text (missing, blank) or with a context that is not a JSON object is the
        caller's error (MlflowException, a 400 from `mlflow models serve`), never a guess.
        """
        top_k = (params or {}).get("top_k")
        top_k = DEFAULT_TOP_K if top_k is None else int(top_k)
        if top_k < 1:
            raise MlflowException(f"top_k must be at least 1, got {top_k}", INVALID_PARAMETER_VALUE)
        texts = [_text(row, value) for row, value in enumerate(model_input["text"])]
        contexts = (
            [_context(row, value) for row, value in enumerate(model_input["context"])]
            if "context" in model_input
            else None
        )
        return self.inference.predict_documents(texts, contexts, top_k)


def _text(row: int, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise MlflowException(
            f"row {row}: text must be a non-empty string, got {str(value)[:80]!r}",
            INVALID_PARAMETER_VALUE,
        )
    return value


def _context(row: int, value: Any) -> dict[str, Any] | None:
    """A row's context: a JSON object, or None when empty; anything else is the caller's error."""
    if value is None or (isinstance(value, float) and pd.isna(value)) or value == "":
        return None
    try:
        parsed = json.loads(value)
    except (TypeError, ValueError):
        parsed = None
    if not isinstance(parsed, dict):
        raise MlflowException(
            f"row {row}: context must be a JSON object, got {str(value)[:80]!r}",
            INVALID_PARAMETER_VALUE,
        )
    return parsed


def log_pyfunc_model(
    skops_file: Path,
    fallback: FallbackPolicy,
    input_example: pd.DataFrame,
    pip_requirements: list[str],
    metadata: dict[str, Any],
) -> ModelInfo:
    """Log the pyfunc under the active run as `model` (not registered here)."""
    return mlflow.pyfunc.log_model(
        name="model",
        python_model=str(_ENTRY),
        artifacts={PIPELINE_ARTIFACT: str(skops_file)},
        # `models` and `features` travel with the model: the entry file imports this module,
        # and the skops file holds `features.transformers` objects.
        code_paths=[str(_PACKAGES / "models"), str(_PACKAGES / "features")],
        model_config={"fallback": fallback.to_dict()},
        signature=SIGNATURE,
        input_example=input_example,
        pip_requirements=pip_requirements,
        metadata=metadata,
    )
