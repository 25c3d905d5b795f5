"""MLflow's client and error type, imported when first used.

Importing `mlflow` costs ~2 CPU s. Dagster's definitions, `models.registry`'s names and a pipeline
run whose retrain rule keeps the model (pipelines/retrain_skip.py) use none of it, so the modules
they import reach MLflow through these functions instead of importing it at module level.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlflow import MlflowClient


def mlflow_client(tracking_uri: str, registry_uri: str | None = None) -> MlflowClient:
    """An MLflow client for these stores (the registry defaults to the tracking store)."""
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri, registry_uri or tracking_uri)


def mlflow_error() -> type[Exception]:
    """`MlflowException`, for `except mlflow_error():` (evaluated only when something raised)."""
    from mlflow.exceptions import MlflowException

    return MlflowException


def download_model(
    name: str, version: str, scratch: str, tracking_uri: str, registry_uri: str | None
) -> str:
    """Download a registered version's artifacts into `scratch`; the local folder."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    from mlflow.artifacts import download_artifacts

    # Resolve the version's real artifact location with this registry's client: a `models:/` URI
    # would be resolved against MLflow's process-global registry, not the one configured here.
    location = mlflow_client(tracking_uri, registry_uri).get_model_version_download_uri(
        name, version
    )
    return download_artifacts(artifact_uri=location, dst_path=scratch, tracking_uri=tracking_uri)
