"""A monitoring run reading a real PostgreSQL store judges the same traffic as one on SQLite."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest

from monitoring.job import run_monitoring
from tests.monitoring.conftest import NOW, replay, settings_for

pytestmark = pytest.mark.slow


def fill(store_url: str, champion: dict, known: pd.DataFrame, unseen: pd.DataFrame) -> None:
    """Calm traffic three days ago, shifted traffic (unseen intents) in the last day."""
    model = champion["model"]
    replay(store_url, model, known["text"].tolist(), NOW - timedelta(days=3))
    replay(store_url, model, unseen["text"].tolist(), NOW)


def test_the_verdict_on_postgres_matches_sqlite(
    champion: dict,
    known_split: dict[str, pd.DataFrame],
    banking77_test: pd.DataFrame,
    intents: dict[str, list[str]],
    postgres_url: str,
    tmp_path: Path,
) -> None:
    known = known_split["held_out"].sample(300, random_state=1)
    unseen = banking77_test[banking77_test["category"].isin(intents["unseen"])]
    unseen = unseen.sample(150, random_state=2)
    summaries = {}
    for name, url in (("sqlite", f"sqlite:///{tmp_path / 'store.db'}"), ("postgres", postgres_url)):
        fill(url, champion, known, unseen)
        settings = settings_for(champion, url, tmp_path / f"reports-{name}")
        summaries[name] = run_monitoring(settings, now=NOW).summary

    on_sqlite, on_postgres = summaries["sqlite"], summaries["postgres"]
    assert on_postgres.verdict == on_sqlite.verdict == "drift"
    assert on_postgres.current_messages == on_sqlite.current_messages == 150
    assert on_postgres.drifted_columns == on_sqlite.drifted_columns
    assert on_postgres.predictions.fallback_rate == on_sqlite.predictions.fallback_rate
