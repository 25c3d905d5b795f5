"""Monitoring runs end to end: a real registry, a SQLite store, Evidently, MLflow, HTML."""

from __future__ import annotations

import json
import random
from datetime import timedelta

import pytest
from mlflow import MlflowClient

from monitoring.job import run_monitoring
from tests.monitoring.conftest import NOW, replay, settings_for

pytestmark = pytest.mark.slow


def noisy(text: str, rng: random.Random) -> str:
    """A paraphrase-ish corruption: shouting, typos, exclamation marks."""
    words = text.split()
    position = rng.randrange(len(words))
    words[position] = words[position][::-1]
    return " ".join(words).upper() + " !!!"


@pytest.fixture(scope="module")
def runs(champion, known_split, banking77_test, intents, tmp_path_factory):
    root = tmp_path_factory.mktemp("monitoring-runs")
    store_url = f"sqlite:///{root / 'store.db'}"
    model = champion["model"]
    rng = random.Random(7)
    known = banking77_test[banking77_test["category"].isin(intents["known"])]
    unseen = banking77_test[banking77_test["category"].isin(intents["unseen"])]

    calm_end = NOW - timedelta(days=3)
    calm = known_split["held_out"].sample(600, random_state=1)["text"].tolist()
    replay(store_url, model, calm, calm_end)

    shifted = unseen.sample(200, random_state=2)["text"].tolist()
    shifted += [noisy(text, rng) for text in known.sample(100, random_state=3)["text"]]
    replay(store_url, model, shifted, NOW)

    labelled_end = NOW - timedelta(days=6)
    wrong = unseen.sample(60, random_state=4)
    replay(
        store_url,
        model,
        wrong["text"].tolist(),
        labelled_end,
        true_intents=wrong["category"].tolist(),
    )

    reports = root / "reports"
    outcome = {}
    for name, end in (("labelled", labelled_end), ("calm", calm_end), ("shifted", NOW)):
        settings = settings_for(champion, store_url, reports, window_end=end)
        outcome[name] = run_monitoring(settings, now=end)
    return outcome


def test_an_unshifted_window_is_ok(runs):
    calm = runs["calm"].summary
    assert calm.verdict == "ok", calm.reasons
    assert calm.current_messages == 600
    assert calm.drifted_columns == ()


def test_a_shifted_window_is_drift_with_the_shifted_columns_named(runs):
    shifted = runs["shifted"].summary
    assert shifted.verdict == "drift"
    assert {"text", "fallback"} <= set(shifted.drifted_columns)
    assert any("fallback rate" in reason for reason in shifted.reasons)
    # Relative to the training reference, not a fixed rate: how unsure a model is on unseen
    # texts depends on the model (a calibrated, embedding-based champion falls back less).
    fallback = shifted.predictions.fallback_rate
    assert (fallback.current or 0) > 5 * (fallback.reference or 0) > 0
    assert shifted.descriptor_means["current"]["length"] > 0


def test_wrong_answers_on_labels_are_degraded(runs):
    labelled = runs["labelled"].summary
    assert labelled.verdict == "degraded"
    assert labelled.performance.labels == 60
    assert (labelled.performance.accuracy or 0) < 0.5


def test_reports_index_summary_and_mlflow_run(runs, champion):
    shifted = runs["shifted"]
    summary = json.loads(shifted.summary_path.read_text())
    assert summary["verdict"] == "drift" and summary["mlflow_run_id"]
    page = (shifted.run_dir / "index.html").read_text()
    assert "verdict: drift" in page and "evidently.html" in page
    assert summary["latest_gate_decision"]["version"] == "1"
    assert "Latest promotion decision" in page and "promoted" in page
    assert shifted.report_path.stat().st_size > 100_000
    index = shifted.index_path.read_text()
    assert all(result.run_dir.name in index for result in runs.values())
    tracking = champion["config"].tracking_uri
    run = MlflowClient(tracking, tracking).get_run(summary["mlflow_run_id"])
    assert run.data.tags["verdict"] == "drift"
    fallback = shifted.summary.predictions.fallback_rate
    assert fallback.current is not None and fallback.current > 5 * (fallback.reference or 0)
    assert run.data.metrics["current_fallback_rate"] == pytest.approx(fallback.current)
    # Artifacts beside the tracking database, never in ./mlruns of the working directory.
    assert str(champion["root"]) in run.info.artifact_uri


def test_the_report_page_opens_in_a_browser_with_its_summary(runs, browser, screenshot_dir):
    shifted = runs["shifted"]
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    page.goto(f"file://{shifted.run_dir / 'index.html'}")
    verdict = page.locator("#verdict")
    assert "verdict: drift" in verdict.inner_text()
    assert "fallback rate" in page.locator("#summary").inner_text()
    assert page.locator("iframe").count() == 1
    page.screenshot(path=str(screenshot_dir / "drift_report.png"))
    index = browser.new_page()
    index.goto(f"file://{shifted.index_path}")
    assert index.locator("#runs a").count() == len(runs)
    page.close()
    index.close()
    assert (screenshot_dir / "drift_report.png").stat().st_size > 10_000
