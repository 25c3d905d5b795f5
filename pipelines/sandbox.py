"""The environment of a throwaway sandbox: every store and source of the embedded profile under
one folder, so a demo or a benchmark never touches the user's champion, stores or data.
"""

from __future__ import annotations

from pathlib import Path


def sandbox_environment(root: Path, banking77_dir: Path) -> dict[str, str]:
    """Environment variables pointing the pipeline, monitoring and serving into `root`."""
    return {
        "DAGSTER_HOME": str(root / "dagster_home"),
        "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}",
        "MLFLOW_ARTIFACT_ROOT": str(root / "artifacts"),
        "CONVERSATION_STORE_URL": f"sqlite:///{root / 'conversations.db'}",
        "LAKE_DIR": str(root / "lake"),
        "REPORTS_DIR": str(root / "reports"),
        "MONITORING_REPORTS_DIR": str(root / "reports"),
        "CONVERSATION_JSONL_DIR": str(root / "incoming"),
        "BANKING77_DIR": str(banking77_dir),
        "LABELLED_CSV_PATHS": "[]",
    }
