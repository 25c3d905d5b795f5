"""The temperature of the chosen candidate, fitted on the validation predictions of the winner
fitted without validation (models/candidate_choice.py), which the fallback policy and the
out-of-scope draws (models/out_of_scope.py) are chosen on too.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from models.calibration import class_index, fit_temperature, scale_probabilities
from models.candidates import Candidate
from models.evaluation import Predictions, predict_labelled
from models.inputs import model_input

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class HeldOutCalibration:
    """The temperature chosen on validation, and the validation predictions it was chosen on."""

    temperature: float  # 1.0 for a candidate that calibrates itself
    predictions: Predictions
    raw: np.ndarray  # validation probabilities before scaling
    calibrated: np.ndarray  # ...and after


def calibrate(candidate: Candidate, held_out: Any, validation: pd.DataFrame) -> HeldOutCalibration:
    """The temperature for `candidate`, from `held_out`'s validation predictions."""
    predictions, raw = predict_labelled(held_out, model_input(validation), validation["intent"])
    if candidate.calibrated:
        return HeldOutCalibration(1.0, predictions, raw, raw)
    index, known = class_index(held_out.classes_, validation["intent"].to_numpy())
    temperature = fit_temperature(raw[known], index)
    logger.info("%s: temperature %.3f fitted on validation", candidate.name, temperature)
    return HeldOutCalibration(temperature, predictions, raw, scale_probabilities(raw, temperature))
