"""How much of the data the candidate search sees, and which candidates it can afford.

On large data the candidates are compared on a sample of the training split (at most
`max_examples`, every intent kept), then only the winner is fitted on all of it. Each candidate
declares how its fit time grows (`FitCost`); before fitting one, its estimate (scaled by how
fast the candidates fitted so far actually ran on this machine) is checked against what is left
of `seconds`, and a candidate that would overrun is skipped with the reason. Pure: no MLflow.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

# The sizes FitCost was measured at (bench/README.md: Banking77, 9,113 examples, 77 intents).
REFERENCE_INTENTS = 77


@dataclass(frozen=True)
class FitCost:
    """Estimated fit seconds: `seconds_per_1k` × (examples / 1000) ** `exponent` × intents / 77."""

    seconds_per_1k: float = 3.0
    exponent: float = 1.0

    def estimate(self, examples: int, intents: int) -> float:
        """Seconds to fit `examples` of `intents` intents on the reference machine."""
        scale = (max(examples, 1) / 1000) ** self.exponent
        return self.seconds_per_1k * scale * max(intents, 1) / REFERENCE_INTENTS


class SelectionBudget(BaseSettings):
    """The search's limits: a training sample size and the fit seconds the candidates share.

    TRAIN_SELECTION_MAX_EXAMPLES, TRAIN_SELECTION_SECONDS, TRAIN_SELECTION_SEED; a training
    run's config (`ops.intent_model.config`) overrides them.
    """

    model_config = SettingsConfigDict(env_prefix="TRAIN_SELECTION_", frozen=True)

    max_examples: int = Field(default=20_000, gt=0)
    seconds: float = Field(default=300.0, gt=0)
    seed: int = 0


@dataclass(frozen=True)
class SkippedCandidate:
    """A candidate left out of the search, and why."""

    name: str
    reason: str


def selection_sample(train: pd.DataFrame, max_examples: int, seed: int) -> pd.DataFrame:
    """At most `max_examples` rows of `train`, the same share of each intent (at least one each).

    `train` itself when it is small enough, so small data is searched exactly as before.
    """
    if len(train) <= max_examples:
        return train
    share = max_examples / len(train)
    parts = [
        rows.sample(max(1, math.floor(len(rows) * share)), random_state=seed)
        for _, rows in train.groupby("intent", sort=True)
    ]
    return pd.concat(parts).sort_index()


class BudgetClock:
    """What the search has spent, and how fast this machine fits against the estimates."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.spent = 0.0
        self.estimated = 0.0

    @property
    def speed(self) -> float:
        """Actual / estimated fit time so far (1.0 before any fit, never below 0.25)."""
        if self.estimated <= 0:
            return 1.0
        return max(self.spent / self.estimated, 0.25)

    def skip_reason(self, name: str, cost: FitCost, examples: int, intents: int) -> str | None:
        """Why `name` would overrun what is left of the budget; None when it fits."""
        expected = cost.estimate(examples, intents) * self.speed
        left = self.seconds - self.spent
        if expected <= left:
            return None
        return (
            f"{name}: estimated fit {expected:.0f} s on {examples} examples exceeds the "
            f"{left:.0f} s left of the {self.seconds:.0f} s selection budget"
        )

    def record(self, cost: FitCost, examples: int, intents: int, seconds: float) -> None:
        """A finished fit: its real time and what it was expected to take."""
        self.spent += seconds
        self.estimated += cost.estimate(examples, intents)
