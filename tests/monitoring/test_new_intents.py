"""New intents, found: fallback messages of Banking77 intents the champion never saw cluster by
intent (purity measured here), with trend, top terms and samples, in the report and the queue."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta
from html import escape

import pandas as pd
import pytest
import sqlalchemy as sa

from conversations import intent_queue
from features.embeddings import shared_encoder
from monitoring.job import run_monitoring
from monitoring.new_intents import (
    ClusterConfig,
    FallbackMessage,
    IntentCluster,
    Trend,
    find_new_intents,
)
from tests.monitoring.conftest import NOW, predict, replay, settings_for

MIN_PURITY = 0.8


def arriving(frame: pd.DataFrame, end: datetime, prefix: str) -> list[FallbackMessage]:
    """Rows of `frame` as fallback messages spread over the 23 hours before `end`."""
    step = timedelta(hours=23) / max(len(frame), 1)
    start = end - timedelta(hours=23)
    return [
        FallbackMessage(f"{prefix}-{n}", start + step * n, text, "chat", "card_arrival")
        for n, text in enumerate(frame["text"])
    ]


def purity(members: Sequence[str], truth: dict[str, str]) -> tuple[str, float]:
    """The cluster's majority intent and its share of the members."""
    intent, count = Counter(truth[member] for member in members).most_common(1)[0]
    return intent, count / len(members)


def majorities(clusters: Sequence[IntentCluster], truth: dict[str, str]) -> dict[str, list]:
    """Held-out intent → the purities of the clusters it is the majority of."""
    found: dict[str, list] = {}
    for cluster in clusters:
        intent, share = purity([m.message_id for m in cluster.members], truth)
        found.setdefault(intent, []).append(share)
    return found


@pytest.fixture(scope="module")
def held_out(intents) -> list[str]:
    """Two Banking77 intents the champion was never trained on."""
    return intents["unseen"][:2]


@pytest.fixture(scope="module")
def window(banking77_test, intents, held_out):
    """Both held-out intents' test messages plus 30 in-scope messages the bot was unsure of."""
    new = banking77_test[banking77_test["category"].isin(held_out)]
    known = banking77_test[banking77_test["category"].isin(intents["known"])]
    frame = pd.concat([new, known.sample(30, random_state=0)]).sample(frac=1, random_state=1)
    messages = arriving(frame, NOW, "now")
    truth = dict(zip((m.message_id for m in messages), frame["category"], strict=True))
    return messages, truth


def test_fallbacks_of_two_held_out_intents_form_pure_clusters(window, held_out):
    messages, truth = window
    finding = find_new_intents(messages, [], shared_encoder().encode, ClusterConfig())
    found = majorities(finding.clusters, truth)
    shares = {intent: [round(s, 3) for s in values] for intent, values in found.items()}
    # Each cluster is ≥ 80 % one held-out intent, and each held-out intent has its cluster.
    assert set(found) == set(held_out), shares
    assert all(share >= MIN_PURITY for values in found.values() for share in values), shares
    for cluster in finding.clusters:
        assert cluster.size == len(cluster.members) >= ClusterConfig().min_cluster_size
        assert cluster.trend is Trend.NEW and cluster.previous_size == 0
        assert cluster.top_terms and cluster.samples
        assert cluster.samples[0] == cluster.members[0].text  # nearest the centre first
    assert finding.fallbacks == finding.considered == len(messages)
    sizes = [cluster.size for cluster in finding.clusters]
    assert sizes == sorted(sizes, reverse=True)
    assert [c.key for c in finding.clusters] == [f"c{n + 1}" for n in range(len(sizes))]


def test_the_same_window_gives_the_same_clusters_in_any_order(window):
    messages, _ = window
    encode = shared_encoder().encode
    first = find_new_intents(messages, [], encode)
    again = find_new_intents(list(reversed(messages)), [], encode)
    assert first.to_dict() == again.to_dict()


def test_a_trend_compares_with_the_previous_window(window, banking77_train, held_out):
    messages, truth = window
    earlier = banking77_train[banking77_train["category"] == held_out[0]].head(8)
    previous = arriving(earlier, NOW - timedelta(days=1), "before")
    finding = find_new_intents(messages, previous, shared_encoder().encode)
    by_intent: dict[str, list[IntentCluster]] = {}
    for cluster in finding.clusters:
        intent, _ = purity([m.message_id for m in cluster.members], truth)
        by_intent.setdefault(intent, []).append(cluster)
    grown = by_intent[held_out[0]]
    assert 1 <= sum(c.previous_size for c in grown) <= len(previous)
    assert Trend.RISING in {c.trend for c in grown}  # 40 now against a handful before
    assert sum(c.previous_size for c in by_intent[held_out[1]]) < len(previous) / 2


def test_messages_without_recorded_text_are_counted_not_clustered(window):
    messages, _ = window
    hashed = [
        FallbackMessage(f"http-{n}", message.ts, None, "http", "card_arrival")
        for n, message in enumerate(messages[:25])
    ]
    finding = find_new_intents([*messages, *hashed], [], shared_encoder().encode)
    assert finding.without_text == 25 and finding.considered == len(messages)
    assert any("SERVING_RECORD_TEXT" in note for note in finding.notes())
    only_hashed = find_new_intents(hashed, hashed, shared_encoder().encode)
    assert only_hashed.clusters == () and only_hashed.without_text == 25
    assert only_hashed.to_dict()["clustered"] == 0


@pytest.mark.slow
def test_a_monitoring_run_reports_and_queues_the_clusters(
    champion, banking77_train, held_out, known_split, tmp_path
):
    """Held-out intents' traffic through the real champion: what it falls back on is found."""
    store_url = f"sqlite:///{tmp_path / 'store.db'}"
    model = champion["model"]
    new = banking77_train[banking77_train["category"].isin(held_out)]
    new = new.groupby("category", group_keys=False).head(120)
    frame = pd.concat([new, known_split["held_out"].sample(200, random_state=5)])
    frame = frame.sample(frac=1, random_state=6)
    texts = frame["text"].tolist()
    message_ids = replay(store_url, model, texts, NOW)
    truth = dict(zip(message_ids, frame["category"], strict=True))
    answers = predict(model, texts)
    fell_back = {i for i, d in zip(message_ids, answers, strict=True) if d["fallback"]}

    settings = settings_for(champion, store_url, tmp_path / "reports", window_end=NOW)
    result = run_monitoring(settings, now=NOW, log_to_mlflow=False)

    engine = sa.create_engine(store_url)
    with engine.connect() as connection:
        queued = intent_queue.open_clusters(connection)
    engine.dispose()
    assert queued, "no cluster queued"
    shares: dict[str, list[float]] = {}
    for cluster in queued:
        members = [member.message_id for member in cluster.members]
        assert set(members) <= fell_back  # only what the bot could not answer
        intent, share = purity(members, truth)
        shares.setdefault(intent, []).append(round(share, 3))
        assert cluster.model_version == result.summary.model_version
        assert held_out[0] not in cluster.known_intents
    assert set(shares) == set(held_out), shares
    assert all(share >= MIN_PURITY for values in shares.values() for share in values), shares

    page = (result.run_dir / "index.html").read_text(encoding="utf-8")
    assert "New intents, found" in page
    assert page.count("class='cluster'") == len(queued)
    for cluster in queued:
        assert cluster.top_terms[0] in page
        assert escape(cluster.members[0].text) in page
    assert (result.run_dir / "new_intents.json").exists()
