"""Which candidates a training run fits unless its config names them: TRAIN_MODEL_PROFILE.

`default` puts TF-IDF ⊕ two sentence encoders under a linear + RBF + nearest-neighbour head
first (features/embeddings.py, features/paraphrase.py: onnxruntime, one ONNX session per
process; models/linear_rbf.py) before the TF-IDF candidates; `light` keeps the TF-IDF
candidates only, for machines where ~190 MB of install, ~380 MB or more of RSS per serving
worker and ~10–14 ms of CPU per new text are worth more than ~3.4 points of accuracy
(bench/README.md, "Towards 0.945 top-1 (5)"). A training run's
config (`ops.intent_model.config.candidates`) still overrides either.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic_settings import BaseSettings, SettingsConfigDict

from models.settings_errors import load_settings


class ModelProfile(StrEnum):
    """The two candidate sets."""

    DEFAULT = "default"
    LIGHT = "light"


class ProfileSettings(BaseSettings):
    """TRAIN_MODEL_PROFILE: `default` or `light` (anything else is refused, naming it)."""

    model_config = SettingsConfigDict(env_prefix="TRAIN_", frozen=True)

    model_profile: ModelProfile = ModelProfile.DEFAULT


def profile_candidates() -> list[str]:
    """The candidate names of TRAIN_MODEL_PROFILE; SettingsProblem (one line) for a bad value.

    models.candidates (scikit-learn, ~1 CPU s) is imported here, not with this module: the
    pipeline's definitions load the settings class, and a run that keeps the model fits nothing.
    """
    profile = load_settings(ProfileSettings).model_profile
    from models.candidates import DEFAULT_CANDIDATES, LIGHT_CANDIDATES

    chosen = DEFAULT_CANDIDATES if profile is ModelProfile.DEFAULT else LIGHT_CANDIDATES
    return list(chosen)
