"""The columns a model is fitted on and served with.

Kept apart from models/training.py so the gate's baselines (and through them the registry that
serving imports) do not pull in the training search and its dependencies (Optuna): serving's
Bento installs what `serving.service` can import (serving/bento_requirements.py).
"""

from __future__ import annotations

import pandas as pd

MODEL_INPUT_COLUMNS = ("text", "context")


def model_input(frame: pd.DataFrame) -> pd.DataFrame:
    """The columns a model is fitted on and served with."""
    return frame.loc[:, list(MODEL_INPUT_COLUMNS)].reset_index(drop=True)
