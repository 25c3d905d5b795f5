"""A registry whose champion knows 20 Banking77 intents, and a way to replay traffic."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from models.inference import IntentInference
from models.predictions import PredictionDocument
from models.registry import IntentRegistry, RegistryConfig
from monitoring.replay import replay_traffic
from monitoring.settings import MonitoringSettings
from tests.conftest import register_version
from tests.registry_template import registry_copy

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def intents(banking77_train) -> dict[str, list[str]]:
    """20 intents the champion knows and 10 it has never seen."""
    names = sorted(banking77_train["category"].unique())
    return {"known": names[:20], "unseen": names[40:50]}


@pytest.fixture(scope="session")
def banking77_test(banking77_dir) -> pd.DataFrame:
    return pd.read_csv(banking77_dir / "test.csv")


@pytest.fixture(scope="session")
def known_split(banking77_train, intents) -> dict[str, pd.DataFrame]:
    """Banking77 train rows of the known intents: 70% to train on, 30% held out as traffic."""
    chosen = banking77_train[banking77_train["category"].isin(intents["known"])]
    training = chosen.groupby("category", group_keys=False).sample(frac=0.7, random_state=0)
    return {"training": training, "held_out": chosen.drop(training.index)}


@pytest.fixture(scope="session")
def champion(tmp_path_factory, known_split):
    """A registered champion trained on 70% of the known intents' examples.

    Built once a run and copied to each worker (tests/registry_template.py).
    """

    def build(folder: Path) -> dict[str, str]:
        registry = IntentRegistry(RegistryConfig(tracking_uri=f"sqlite:///{folder / 'mlflow.db'}"))
        training = known_split["training"].reset_index(drop=True)
        version = register_version(training, registry, folder / "artifacts")
        registry.force_promote(version, "monitoring tests' champion")
        return {"version": version}

    root, built = registry_copy(tmp_path_factory, "monitoring", build)
    config = RegistryConfig(tracking_uri=f"sqlite:///{root / 'mlflow.db'}")
    registry = IntentRegistry(config)
    model = registry.load_inference(built["version"])
    return {"root": root, "config": config, "registry": registry, "model": model}


def predict(model: IntentInference, texts: list[str]) -> list[PredictionDocument]:
    """The champion's prediction documents, naming the version as served ones do."""
    return [prediction.to_document(model.ref) for prediction in model.predict(texts, None, 1)]


def replay(
    store_url: str, model, texts: list[str], end: datetime, hours: float = 23, **kwargs
) -> list[str]:
    """Store `texts` as customer traffic over the `hours` before `end`."""
    start = end - timedelta(hours=hours)
    return replay_traffic(store_url, texts, predict(model, texts), start, end, **kwargs)


def settings_for(champion: dict, store_url: str, reports_dir, **extra) -> MonitoringSettings:
    """Monitoring settings over the test registry and store."""
    return MonitoringSettings(
        store_url=store_url,
        mlflow_tracking_uri=champion["config"].tracking_uri,
        reports_dir=reports_dir,
        lake_dir=champion["root"] / "no-lake",
        **extra,
    )
