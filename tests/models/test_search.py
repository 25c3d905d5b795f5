"""The hyper-parameter search (models/search.py): its trials in MLflow (real SQLite store), its
seed, its budget, the best model rebuilt from logged params, and bad settings refused by name."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from mlflow.entities import Run

from models.candidates import SEARCH_SPACE, resolve
from models.inputs import model_input
from models.registry import IntentRegistry, RegistryConfig
from models.run_contents import TAG_CHOSEN, TAG_TRIAL
from models.search import SearchData, SearchSettings, declared_params, rebuild, search_candidate
from models.search_space import KNOBS, knobs_for
from models.selection import BudgetClock
from models.settings_errors import SettingsProblem
from models.splits import assign_splits
from models.tracking import log_and_register
from models.training import train_intent_model
from monitoring.settings import MonitoringSettings
from pipelines.assets.training import TrainingConfig
from pipelines.definitions import build_definitions
from pipelines.settings import PipelineSettings

KNOB_PARAMS = {"C", "word_ngram_max", "char_ngram_max", "class_weight"}  # tfidf_logreg's


@pytest.fixture()
def registry(tmp_path) -> IntentRegistry:
    return IntentRegistry(RegistryConfig(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}"))


@pytest.fixture(scope="module")
def splits(small_slice: pd.DataFrame) -> list[pd.DataFrame]:
    frame = small_slice.rename(columns={"category": "intent"}).assign(context="{}")
    frame["split"] = assign_splits(frame["text"].tolist(), frame["intent"].tolist())
    return [frame[frame["split"] == name] for name in ("train", "validation", "test")]


def _data(splits: list[pd.DataFrame]) -> SearchData:
    train, validation, _ = splits
    return SearchData(
        model_input(train),
        model_input(validation),
        train["intent"].to_numpy(),
        validation["intent"],
    )


def _search(splits: list[pd.DataFrame], settings: SearchSettings, clock_seconds: float = np.inf):
    candidate = resolve(["tfidf_logreg"])[0]
    return search_candidate(candidate, _data(splits), settings, BudgetClock(clock_seconds), 1)


def _runs(client: MlflowClient, parent: Run, where: str = "") -> list[Run]:
    query = f"tags.mlflow.parentRunId = '{parent.info.run_id}'" + where
    return client.search_runs([parent.info.experiment_id], filter_string=query)


def test_every_knob_is_a_parameter_of_its_candidates_pipeline_and_admits_its_default():
    for name, knobs in KNOBS.items():
        if name not in SEARCH_SPACE:  # declared for a candidate this checkout does not have
            continue
        candidate = SEARCH_SPACE[name]
        held = candidate.build().get_params()
        assert {knob.path for knob in knobs} <= set(held), name
        declared = declared_params(candidate, knobs)
        assert all(knob.admits(declared[knob.name]) for knob in knobs), (name, declared)


def test_a_three_trial_search_logs_three_trial_runs_under_the_training_run(
    registry, splits, tmp_path
):
    search = SearchSettings(trials=3, seconds=10_000)
    outcome = train_intent_model(resolve(["tfidf_logreg"]), *splits, search=search)
    version = log_and_register(
        outcome, registry, "search-tests", str(tmp_path / "artifacts"), "fp-1", {}, {}
    )
    client = registry.client
    parent = client.get_run(version.run_id)
    (candidate_run,) = _runs(client, parent)
    trials = _runs(client, candidate_run, f" and tags.`{TAG_TRIAL}` != ''")
    assert sorted(run.data.tags[TAG_TRIAL] for run in trials) == ["0", "1", "2"]
    for run in trials:
        assert set(run.data.params) >= KNOB_PARAMS
        assert {"validation_macro_f1", "validation_accuracy", "fit_seconds"} <= set(
            run.data.metrics
        )
    # Trial 0 is the candidate as declared; the two others were sampled.
    first = next(run for run in trials if run.data.tags[TAG_TRIAL] == "0")
    assert float(first.data.params["C"]) == 30.0
    assert first.data.params["word_ngram_max"] == "2"
    (best,) = [run for run in trials if run.data.tags[TAG_CHOSEN] == "true"]
    assert best.data.metrics["validation_macro_f1"] == max(
        run.data.metrics["validation_macro_f1"] for run in trials
    )
    # The training run and its candidate's run carry the best trial's params.
    for run in (parent, candidate_run):
        assert {k: run.data.params[k] for k in KNOB_PARAMS} == {
            k: best.data.params[k] for k in KNOB_PARAMS
        }


def test_the_best_model_is_rebuilt_from_the_logged_params_with_the_same_predictions(
    registry, splits, tmp_path
):
    # A search range without C=30, so the registered model's C is a sampled one.
    search = SearchSettings(trials=3, seconds=10_000, space={"tfidf_logreg": {"C": (1.0, 10.0)}})
    outcome = train_intent_model(resolve(["tfidf_logreg"]), *splits, search=search)
    version = log_and_register(
        outcome, registry, "search-tests", str(tmp_path / "artifacts"), "fp-1", {}, {}
    )
    logged = registry.client.get_run(version.run_id).data.params
    assert float(logged["C"]) != 30.0
    train, validation, test = splits
    everything = pd.concat([train, validation])
    rebuilt = rebuild(logged["candidate"], logged).fit(
        model_input(everything), everything["intent"].to_numpy()
    )
    sample = model_input(test).head(20)
    registered = registry.load_pipeline(version.version)
    assert list(rebuilt.predict(sample)) == list(registered.predict(sample))


def test_the_same_seed_gives_the_same_trials_and_another_seed_other_ones(splits):
    first = _search(splits, SearchSettings(trials=4, seconds=10_000, seed=7))
    again = _search(splits, SearchSettings(trials=4, seconds=10_000, seed=7))
    other = _search(splits, SearchSettings(trials=4, seconds=10_000, seed=8))
    assert [t.params for t in first.record.trials] == [t.params for t in again.record.trials]
    assert first.candidate.params == again.candidate.params
    assert [t.params for t in first.record.trials[1:]] != [
        t.params for t in other.record.trials[1:]
    ]


def test_the_budget_stops_the_search(splits):
    assert len(_search(splits, SearchSettings(trials=2, seconds=10_000)).record.trials) == 2
    # After the first trial, another would overrun the candidate's seconds: none is started.
    stopped = _search(splits, SearchSettings(trials=5, seconds=1e-9))
    assert len(stopped.record.trials) == 1 and "stopped after 1 trials" in (
        stopped.record.stopped or ""
    )
    # The same when what is left of the selection budget (TRAIN_SELECTION_SECONDS) is spent.
    assert len(_search(splits, SearchSettings(trials=5, seconds=10_000), 1e-9).record.trials) == 1


def test_a_search_range_replaces_the_declared_one():
    (c,) = [
        knob
        for knob in knobs_for("tfidf_logreg", {"tfidf_logreg": {"C": (2, 3)}})
        if knob.name == "C"
    ]
    assert (c.low, c.high, c.log) == (2, 3, True)


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("TRAIN_SEARCH_TRIALS", "0", "TRAIN_SEARCH_TRIALS: Input should be greater than or equal"),
        ("TRAIN_SEARCH_SECONDS", "-1", "TRAIN_SEARCH_SECONDS: Input should be greater than 0"),
        ("TRAIN_SEARCH_SPACE", '{"tfidf_logreg": {"gamma": [1, 2]}}', "TRAIN_SEARCH_SPACE:"),
    ],
)
def test_a_bad_search_setting_stops_the_code_location_at_load(variable, value, named):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(variable, value)
        with pytest.raises(SettingsProblem) as refused:
            build_definitions(PipelineSettings(), MonitoringSettings())
    assert str(refused.value).startswith(f"bad setting {named}")


@pytest.mark.parametrize(
    ("config", "named"),
    [
        ({"search_trials": 0}, "ops.intent_model.config.search_trials: Input should be greater"),
        (
            {"search_space": {"tfidf_logreg": {"C": [5.0, 1.0]}}},
            "ops.intent_model.config.search_space: candidate tfidf_logreg: C: bad range",
        ),
        (
            {"search_space": {"nope": {"C": [1.0, 2.0]}}},
            "ops.intent_model.config.search_space: no search space for candidate 'nope'",
        ),
    ],
)
def test_a_bad_search_run_config_is_refused_naming_its_key(config, named):
    with pytest.raises(ValueError) as refused:
        TrainingConfig(candidates=["tfidf_logreg"], **config).search_settings()
    assert str(refused.value).startswith(f"bad run config {named}")
