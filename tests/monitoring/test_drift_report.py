"""Library warnings from the Evidently report: counted and logged once, others untouched."""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import ConvergenceWarning

from monitoring.drift_report import counted_convergence_warnings, run_drift_report


def test_only_convergence_warnings_are_collected() -> None:
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        with counted_convergence_warnings() as collected:
            warnings.warn("did not converge", ConvergenceWarning, stacklevel=1)
            warnings.warn("something else", UserWarning, stacklevel=1)
            warnings.warn("did not converge either", ConvergenceWarning, stacklevel=1)
    assert collected == ["did not converge", "did not converge either"]
    assert [(w.category, str(w.message)) for w in shown] == [(UserWarning, "something else")]


def _frame(texts: list[str], seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "text": texts,
            "predicted_intent": rng.choice(["card_arrival", "top_up"], len(texts)),
            "confidence": rng.random(len(texts)),
            "fallback": rng.random(len(texts)) < 0.1,
        }
    )


@pytest.mark.slow
def test_the_text_classifier_cap_is_one_log_line_not_warnings(
    banking77_train: pd.DataFrame, tmp_path, caplog
) -> None:
    # 800 messages a side: Evidently's SGD domain classifier reaches its 50-epoch cap here.
    reference = banking77_train.sample(800, random_state=0)["text"].tolist()
    current = [
        f"{text.lower()} please" for text in banking77_train.sample(800, random_state=1)["text"]
    ]
    caplog.set_level(logging.INFO, logger="monitoring.drift_report")
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        report = run_drift_report(
            _frame(reference, 0), _frame(current, 1), 0.55, tmp_path / "report.html"
        )
    assert report.html_path.is_file()
    assert not [w for w in shown if issubclass(w.category, ConvergenceWarning)]
    capped = [r for r in caplog.records if "50-epoch cap" in r.getMessage()]
    assert len(capped) == 1
