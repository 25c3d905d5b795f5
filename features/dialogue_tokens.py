"""`DialogueTokens`: a turn and its context as one token document, for a vectoriser.

Apart from features/dialogue.py so that filling contexts (every pipeline run) does not import
scikit-learn (~1 CPU s). The class keeps the name `features.dialogue.DialogueTokens`: registered
models were pickled under it and the registry trusts it by that name (models/registry.py,
TRUSTED_SKOPS_TYPES); features/dialogue.py hands it out on first use.
"""

from __future__ import annotations

import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

from features.dialogue_state import dialogue_document, dialogue_state


class DialogueTokens(TransformerMixin, BaseEstimator):
    """`text` and `context` columns → one token document per row (stateless)."""

    def fit(self, frame: pd.DataFrame, y: object = None) -> DialogueTokens:
        """Nothing to learn: the vectoriser after it does."""
        return self

    def transform(self, frame: pd.DataFrame) -> list[str]:
        """A document per row of `frame`."""
        contexts = frame["context"].tolist() if "context" in frame else [None] * len(frame)
        return [
            dialogue_document(str(text), dialogue_state(context))
            for text, context in zip(frame["text"].tolist(), contexts, strict=True)
        ]


# Pickle and skops record a class by module and name: keep the name models were saved under.
DialogueTokens.__module__ = "features.dialogue"
