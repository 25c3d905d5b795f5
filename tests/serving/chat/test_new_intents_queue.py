"""The agents' "label these" queue over a real `bentoml serve`: an agent names a cluster of
fallback messages, its members become agent labels in the store and training examples."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import dagster as dg
import pandas as pd
import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from conversations import intent_queue, store_engine, tables
from conversations.intent_queue import QueuedCluster, QueuedMember
from conversations.writer import PredictionRecord, insert_prediction
from monitoring.replay import replay_traffic
from pipelines.definitions import build_definitions
from pipelines.settings import PipelineSettings
from serving.chat.client import ChatClient
from tests.serving.chat.conftest import run, token, unique_user

pytestmark = pytest.mark.slow
TEXTS = [
    "can I top up my account with bitcoin",
    "do you accept ethereum deposits",
    "how do I buy crypto in the app",
    "I want to hold bitcoin in my account",
    "can I sell my crypto for pounds",
    "is there a crypto wallet",
]
HTTP_TEXT = "where do I find my crypto wallet address"


@pytest.fixture(scope="module")
def store_url(service, serving_registry) -> str:
    return f"sqlite:///{serving_registry['root'] / 'store.db'}"


def fallback(intent: str) -> dict:
    return {
        "intent": intent,
        "confidence": 0.2,
        "fallback": True,
        "model": {"name": "m", "version": "1"},
    }


def publish_cluster(store_url: str, known: list[str]) -> QueuedCluster:
    """Fallback messages (chat and one HTTP prediction) published as a monitoring run does."""
    now = datetime.now(UTC)
    ids = replay_traffic(
        store_url, TEXTS, [fallback(known[0])] * len(TEXTS), now - timedelta(hours=2), now
    )
    http_id = f"http-{uuid.uuid4().hex}"
    engine = store_engine.create_engine(store_url)
    with engine.begin() as connection:
        insert_prediction(
            connection,
            PredictionRecord(
                http_id, known[0], 0.1, True, "m", "1", now, channel="http", text=HTTP_TEXT
            ),
        )
    texts = dict(zip(ids, TEXTS, strict=True)) | {http_id: HTTP_TEXT}
    run_id = f"run-{uuid.uuid4().hex[:12]}"
    cluster = QueuedCluster(
        cluster_id=f"{run_id}-c1",
        run_id=run_id,
        created_at=now,
        model_version="1",
        known_intents=tuple(known),
        size=len(texts),
        previous_size=0,
        trend="new",
        top_terms=("crypto", "bitcoin"),
        members=tuple(
            QueuedMember(message_id, text, now, "chat", known[0])
            for message_id, text in texts.items()
        ),
    )
    intent_queue.ensure_tables(engine)
    with engine.begin() as connection:
        intent_queue.publish(connection, [cluster])
    engine.dispose()
    return cluster


async def _label(service, cluster: QueuedCluster, known: list[str]) -> dict:
    agent_id = unique_user("agent")
    members = [member.message_id for member in cluster.members]
    async with (
        ChatClient.connect(service.ws_url, token(agent_id, "agent")) as agent,
        ChatClient.connect(service.ws_url, token(unique_user("agent"), "agent")) as other,
        ChatClient.connect(service.ws_url, token(unique_user("cust"))) as customer,
    ):
        await customer.send("new_intents")
        assert (await customer.expect("error"))["code"] == 403
        await customer.send("label_cluster", cluster_id=cluster.cluster_id, intent="x")
        assert (await customer.expect("error"))["code"] == 403

        await agent.send("new_intents")
        queue = await agent.expect("new_intents")
        (listed,) = [c for c in queue["clusters"] if c["cluster_id"] == cluster.cluster_id]
        assert listed["size"] == len(members) and listed["trend"] == "new"
        assert [s["message_id"] for s in listed["samples"]] == members
        assert set(known) <= set(queue["known_intents"])

        refusals = [
            ({"cluster_id": "no-such-cluster", "intent": known[0]}, 404),
            ({"cluster_id": cluster.cluster_id, "intent": "crypto_wallet"}, 400),  # not known
            ({"cluster_id": cluster.cluster_id, "intent": known[0], "new_intent": True}, 400),
            (
                {"cluster_id": cluster.cluster_id, "intent": "Crypto Wallet!", "new_intent": True},
                400,
            ),
            (
                {
                    "cluster_id": cluster.cluster_id,
                    "intent": known[0],
                    "exclude_message_ids": ["z"],
                },
                400,
            ),
            ({"cluster_id": cluster.cluster_id, "intent": "", "new_intent": True}, 400),
            ({"cluster_id": cluster.cluster_id, "intent": "x", "surprise": 1}, 400),
        ]
        for data, code in refusals:
            await agent.send("label_cluster", **data)
            error = await agent.expect("error")
            assert error["code"] == code, (data, error)
            assert error["message"]

        await agent.send(
            "label_cluster",
            cluster_id=cluster.cluster_id,
            intent="crypto_wallet",
            new_intent=True,
            exclude_message_ids=[members[-2]],
        )
        done = await agent.expect("cluster_labelled")
        assert done["labels"] == len(members) - 1 and done["by"] == agent_id
        heard = await other.expect("cluster_labelled")
        assert heard["cluster_id"] == cluster.cluster_id

        await agent.send("label_cluster", cluster_id=cluster.cluster_id, intent=known[0])
        assert (await agent.expect("error"))["code"] == 409
        await other.send("new_intents")  # the agent's own frame budget is spent (burst 10)
        after = await other.expect("new_intents")
        assert cluster.cluster_id not in [c["cluster_id"] for c in after["clusters"]]
    return {"agent_id": agent_id, "excluded": members[-2]}


def labels_of(store_url: str, message_ids: set[str]) -> list[dict]:
    """The `labels` rows of the given messages."""
    engine = sa.create_engine(store_url)
    with engine.connect() as connection:
        query = sa.select(tables.labels).where(tables.labels.c.message_id.in_(message_ids))
        found = [dict(row) for row in connection.execute(query).mappings()]
    engine.dispose()
    return found


def test_an_agent_names_a_cluster_and_its_messages_become_training_examples(
    service, store_url, small_slice, tmp_path
):
    known = sorted(small_slice["category"].unique())
    cluster = publish_cluster(store_url, known)
    outcome = run(_label(service, cluster, known))

    members = {member.message_id for member in cluster.members}
    labels = labels_of(store_url, members)
    assert {label["message_id"] for label in labels} == members - {outcome["excluded"]}
    for label in labels:
        assert label["intent"] == "crypto_wallet" and label["is_new_intent"]
        assert (label["label_source"], label["trust"]) == ("agent", "agent")
        assert label["labelled_by"] == outcome["agent_id"]

    settings = PipelineSettings(
        banking77_dir=None,
        labelled_csv_paths=[],
        conversation_jsonl_dir=tmp_path / "incoming",
        conversation_store_url=store_url,
        lake_dir=tmp_path / "lake",
        mlflow_tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}",
    )
    (tmp_path / "incoming").mkdir()
    (tmp_path / "home").mkdir()
    job = build_definitions(settings).resolve_implicit_global_asset_job_def()
    selection = [
        dg.AssetKey(name)
        for name in (
            "conversation_log",
            "raw_conversations",
            "conversations",
            "quarantined_messages",
            "training_examples",
        )
    ]
    with dg.instance_for_test(temp_dir=str(tmp_path / "home")) as instance:
        assert job.execute_in_process(instance=instance, asset_selection=selection).success
    examples = pd.read_parquet(settings.lake_dir / "training_examples.parquet")
    learned = examples[examples["intent"] == "crypto_wallet"]
    assert set(learned["text"]) == {m.text for m in cluster.members} - {
        m.text for m in cluster.members if m.message_id == outcome["excluded"]
    }


def test_the_agent_console_lists_a_cluster_and_names_it(service, store_url, small_slice, browser):
    known = sorted(small_slice["category"].unique())
    cluster = publish_cluster(store_url, known)
    agent_id = unique_user("web-agent")
    context = browser.new_context(viewport={"width": 1100, "height": 720})
    page = context.new_page()
    page.goto(f"{service.url}/chat/agent?token={token(agent_id, 'agent')}")
    expect(page.locator("#status")).to_have_text("online", timeout=20_000)

    card = page.locator(f".cluster[data-cluster-id='{cluster.cluster_id}']")
    expect(card).to_contain_text(f"{cluster.size} messages", timeout=15_000)
    expect(card).to_contain_text("crypto, bitcoin")
    card.click()
    boxes = card.locator("input[data-message-id]")
    expect(boxes).to_have_count(len(cluster.members))
    boxes.nth(0).uncheck()  # this one does not belong
    card.locator(".cluster-intent").fill("crypto_payments")
    card.locator(".cluster-new").check()
    card.locator("button[type=submit]").click()
    expect(page.locator(".notice", has_text="labelled crypto_payments")).to_be_visible(
        timeout=15_000
    )
    expect(card).to_have_count(0)
    context.close()

    members = [member.message_id for member in cluster.members]
    labels = labels_of(store_url, set(members))
    assert {label["message_id"] for label in labels} == set(members[1:])
    assert {(label["intent"], label["labelled_by"]) for label in labels} == {
        ("crypto_payments", agent_id)
    }
