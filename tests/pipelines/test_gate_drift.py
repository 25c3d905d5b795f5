"""Drift in the gate: `model_promotion` judges the challenger's answers on recent traffic.

Real Dagster (the `model_promotion` asset materialised, its upstream assets given as the
versions and examples they would have produced), a real MLflow SQLite registry, a real
conversation store holding recent HTTP predictions. Six Banking77 intents: the champion learnt
20 messages of each, the challenger 60 (so a sound challenger beats it on the test split);
recent customers ask with other messages of the same intents.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg
import pandas as pd
import pytest

from conversations import store_engine
from conversations.writer import PredictionRecord, insert_predictions
from models.registry import TAG_FALLBACK, TAG_GATE, IntentRegistry, RegistryConfig
from models.splits import assign_splits
from monitoring.gate_drift import DRIFT_CHECK, FALLBACK_CHECK
from pipelines.assets.promotion import model_promotion
from pipelines.resources import AlertNotifier, ConversationSources, MlflowRegistry
from tests.conftest import register_version

pytestmark = pytest.mark.slow


def _examples(rows: pd.DataFrame) -> pd.DataFrame:
    """`training_examples` as the pipeline makes them, for the gate to score on."""
    examples = rows.rename(columns={"category": "intent"}).assign(context="{}")
    examples["message_id"] = [f"m-{i}" for i in range(len(examples))]
    examples["split"] = assign_splits(examples["text"].tolist(), examples["intent"].tolist())
    return examples


@pytest.fixture(scope="module")
def gate(tmp_path_factory, banking77_train) -> dict[str, Any]:
    """A champion, a normal challenger, a damaged one, one that learnt a seventh intent, and
    unseen messages to ask them."""
    root = tmp_path_factory.mktemp("gate-drift")
    names = sorted(banking77_train["category"].unique())
    intents, new_intent = names[:6], names[6]
    rows = banking77_train[banking77_train["category"].isin(intents)].groupby("category")
    registry = IntentRegistry(RegistryConfig(f"sqlite:///{root / 'mlflow.db'}"))
    champion = register_version(rows.head(20).reset_index(drop=True), registry, root / "a")
    registry.force_promote(champion, "the gate-drift tests' champion")
    learnt = rows.head(60).reset_index(drop=True)
    normal = register_version(learnt, registry, root / "a")
    damaged = register_version(learnt, registry, root / "a")
    # Damaged after training: a fallback threshold above certainty, as a broken calibration
    # could leave it, says "not sure" to every answer (on these six easy intents the models'
    # calibrated confidence is ~1.0, so a merely high threshold would not show).
    registry.client.set_model_version_tag(
        registry.name, damaged, TAG_FALLBACK, json.dumps({"threshold": 1.01, "margin": 0.0})
    )
    taught = banking77_train[banking77_train["category"] == new_intent]
    with_new = pd.concat([learnt, taught.head(60)], ignore_index=True)
    learner = register_version(with_new, registry, root / "a")
    unseen = banking77_train[banking77_train["category"].isin(intents)]
    unseen = unseen[~unseen["text"].isin(learnt["text"])]["text"].tolist()
    return {
        "root": root,
        "registry": registry,
        "versions": {
            "champion": champion,
            "normal": normal,
            "damaged": damaged,
            "learner": learner,
        },
        "examples": {"learnt": _examples(learnt), "with_new": _examples(with_new)},
        "unseen": unseen,
        "unseen_new": taught["text"].iloc[60:140].tolist(),
    }


def _store(gate: dict[str, Any], name: str, texts: list[str], record_text: bool = True) -> str:
    """A store whose last day holds `texts` as HTTP predictions served by the champion."""
    url = f"sqlite:///{gate['root'] / f'{name}.db'}"
    now = datetime.now(UTC)
    records = [
        PredictionRecord(
            message_id=f"http-{name}-{i}",
            intent="card_arrival",  # what was served does not matter: both models answer again
            confidence=0.9,
            fallback=False,
            model_name=gate["registry"].name,
            model_version=gate["versions"]["champion"],
            ts=now - timedelta(minutes=5 + i),
            channel="http",
            text=text if record_text else None,
            text_sha256=None if record_text else f"{i:064x}",
        )
        for i, text in enumerate(texts)
    ]
    engine = store_engine.create_engine(url)
    with engine.begin() as connection:
        insert_predictions(connection, records)
    engine.dispose()
    return url


def _promote(
    gate: dict[str, Any], version: str, store_url: str, examples: str = "learnt"
) -> dict[str, Any]:
    """Materialise `model_promotion` for `version` against the champion; its decision.

    The version's earlier decisions are cleared first: each test judges it afresh.
    """
    registry = gate["registry"]
    registry.set_alias("champion", gate["versions"]["champion"])
    if registry.version(version).tags.get(TAG_GATE):
        registry.client.delete_model_version_tag(registry.name, version, TAG_GATE)
    chosen = gate["examples"][examples]

    @dg.asset(name="intent_model")
    def trained() -> dict:
        return {"version": version}

    @dg.asset(name="training_examples")
    def examples_asset() -> pd.DataFrame:
        return chosen

    tracking = registry.config.tracking_uri
    result = dg.materialize(
        [trained, examples_asset, model_promotion],
        resources={
            "mlflow_registry": MlflowRegistry(tracking_uri=tracking),
            "sources": ConversationSources(store_url=store_url),
            "notifier": AlertNotifier(
                notifiers=["log"], smtp_host="localhost", smtp_port=25, smtp_from="g@x", smtp_to=[]
            ),
        },
    )
    assert result.success
    decision = result.output_for_node("model_promotion")
    assert decision["version"] == version
    return decision


def _checks(decision: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {check["name"]: check for check in decision["checks"]}


def test_a_challenger_that_falls_back_on_recent_traffic_is_refused_naming_the_check(gate):
    store = _store(gate, "busy", gate["unseen"][:240])

    decision = _promote(gate, gate["versions"]["damaged"], store)

    refused_by = [check["name"] for check in decision["checks"] if not check["passed"]]
    assert refused_by == [FALLBACK_CHECK]  # the offline checks pass: only live traffic shows it
    fallback = _checks(decision)[FALLBACK_CHECK]
    assert fallback["passed"] is False
    assert "of 240 recent messages (last 168 h)" in fallback["reason"]
    assert "customers would be handed off more often" in fallback["reason"]
    registry = gate["registry"]
    assert str(registry.version_by_alias("champion").version) == gate["versions"]["champion"]


def test_a_normal_challenger_passes_both_recent_checks(gate):
    store = _store(gate, "normal", gate["unseen"][:240])

    decision = _promote(gate, gate["versions"]["normal"], store)

    checks = _checks(decision)
    assert decision["passed"] is True, [c for c in decision["checks"] if not c["passed"]]
    for name in (FALLBACK_CHECK, DRIFT_CHECK):
        assert checks[name]["passed"] is True, checks[name]
        assert "240 recent messages" in checks[name]["reason"]
        assert "not judged" not in checks[name]["reason"]


def test_a_challenger_answering_with_an_intent_it_learnt_is_not_refused_as_drift(gate):
    # Customers ask about an intent the champion never learnt; agents labelled it since.
    store = _store(gate, "learning", gate["unseen"][:240] + gate["unseen_new"])

    decision = _promote(gate, gate["versions"]["learner"], store, examples="with_new")

    assert decision["passed"] is True, [c for c in decision["checks"] if not c["passed"]]
    # Judged on what the champion answered: it fell back on the new intent's messages, which
    # the challenger now answers (on all 320, its picks would read as drift and refuse it).
    drift = _checks(decision)[DRIFT_CHECK]
    assert drift["passed"] is True and "not judged" not in drift["reason"]
    assert " of 320 recent messages (last 168 h) the champion answered" in drift["reason"]


def test_too_few_recent_messages_are_not_judged_and_do_not_refuse(gate):
    store = _store(gate, "quiet", gate["unseen"][:20])
    checks = _checks(_promote(gate, gate["versions"]["damaged"], store))

    for name in (FALLBACK_CHECK, DRIFT_CHECK):
        assert checks[name]["passed"] is True
        assert checks[name]["reason"].startswith("not judged: only 20 recent messages")


def test_recent_messages_kept_as_hashes_are_not_judged_saying_why(gate):
    store = _store(gate, "hashed", gate["unseen"][:240], record_text=False)
    checks = _checks(_promote(gate, gate["versions"]["damaged"], store))

    assert checks[FALLBACK_CHECK]["passed"] is True
    assert "240 recent messages" in checks[FALLBACK_CHECK]["reason"]
    assert "SERVING_RECORD_TEXT" in checks[FALLBACK_CHECK]["reason"]
