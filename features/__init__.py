"""Message features shared by training and serving: one code path, batch-first."""

from features.extractor import FEATURE_NAMES, FeatureExtractor, FeatureSettings

__all__ = ["FEATURE_NAMES", "FeatureExtractor", "FeatureSettings"]
