"""Calibration over time: the champion's expected calibration error (ECE) on the window's
labelled traffic against its value at training time (`test_ece` on the version's MLflow run).

The ECE is models/calibration.py's, so both figures are computed the same way (15 bins). Agents
mostly label what the bot got wrong, so the window's figure is pessimistic: read it as a trend.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from models.calibration import expected_calibration_error

if TYPE_CHECKING:
    from upath import UPath

    from models.registry import IntentRegistry

logger = logging.getLogger(__name__)
DIAGRAM = "reliability_diagram.png"


@dataclass(frozen=True)
class CalibrationOverTime:
    """ECE on the window's labels (when there are enough) beside the training-time ECE."""

    labels: int
    min_labels: int
    training_ece: float | None
    judged: bool = False
    ece: float | None = None
    # The version's reliability diagram copied beside the page (file name), when logged.
    diagram: str | None = None

    def to_dict(self) -> dict[str, object]:
        """As summary.json holds it."""
        return asdict(self)


def calibration_over_time(
    labels: pd.DataFrame, min_labels: int, training_ece: float | None
) -> CalibrationOverTime:
    """ECE of the served confidences on labelled messages (intent, predicted_intent, confidence)."""
    needed = ["intent", "predicted_intent", "confidence"]
    usable = labels.dropna(subset=needed) if set(needed) <= set(labels.columns) else labels.head(0)
    if len(usable) < min_labels:
        return CalibrationOverTime(len(usable), min_labels, training_ece)
    correct = (usable["intent"].astype(str) == usable["predicted_intent"].astype(str)).to_numpy()
    ece = expected_calibration_error(usable["confidence"].astype(float).to_numpy(), correct)
    return CalibrationOverTime(len(usable), min_labels, training_ece, True, round(ece, 4))


def copy_reliability_diagram(registry: IntentRegistry, version: str, run_dir: UPath) -> str | None:
    """The version's `reliability_diagram.png` (logged at training) beside the page, or None."""
    run_id = registry.version(version).run_id
    if not run_id:
        return None
    try:
        local = registry.client.download_artifacts(run_id, DIAGRAM)
    except Exception as exc:  # an older version without the artifact: the page says so
        logger.info("no %s on run %s: %s", DIAGRAM, run_id, exc)
        return None
    with Path(local).open("rb") as source, (run_dir / DIAGRAM).open("wb") as target:
        shutil.copyfileobj(source, target)
    return DIAGRAM


def measure_calibration(
    registry: IntentRegistry,
    version: str,
    labels: pd.DataFrame,
    min_labels: int,
    run_dir: UPath,
) -> CalibrationOverTime:
    """The window's ECE, the version's `test_ece` and its reliability diagram beside the page."""
    training_ece = registry.describe(registry.version(version)).metrics.get("test_ece")
    measured = calibration_over_time(labels, min_labels, training_ece)
    return replace(measured, diagram=copy_reliability_diagram(registry, version, run_dir))
