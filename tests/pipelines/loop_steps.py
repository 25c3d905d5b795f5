"""The serving side of the production loop: chat, feedback and the version both workers serve.

Each step talks to a real `bentoml serve` as its clients do (WebSocket, HTTP) and checks what
landed in the PostgreSQL conversation store by reading the store itself.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pandas as pd
import sqlalchemy as sa

from conversations import tables
from conversations.readers import read_conversation_store
from serving.chat.client import ChatClient
from serving.process_tree import tree
from tests.mlflow_server import MlflowServer
from tests.serving.chat.conftest import run, token, unique_user
from tests.serving.conftest import FEEDBACK_KEY, ServiceProcess

WORKER_COMMAND = "_bentoml_impl.worker.service"
FOLLOW_POLLS = 480  # every 0.5 s: a registry poll, a download and a warm-up per worker
SERVED_ON_FRESH_CONNECTIONS = 20
SWAPS_METRIC = "intent_model_swaps_total"


def served_version(service: ServiceProcess) -> str:
    """The version /version reports (on a connection of its own)."""
    return str(httpx.get(f"{service.url}/version", timeout=10).json()["version"])


def worker_processes(service: ServiceProcess) -> list[str]:
    """The command lines of the server's BentoML workers."""
    assert service.process is not None
    commands = [" ".join(member.cmdline()) for member in tree(service.process.pid)]
    return [command for command in commands if WORKER_COMMAND in command]


async def _escalated_conversation(service: ServiceProcess, customer_id: str) -> tuple[dict, dict]:
    async with ChatClient.connect(service.ws_url, token(customer_id)) as customer:
        await customer.say("I ordered a card two weeks ago and it still has not arrived")
        created = await customer.expect("support_request_created")
        reply = await customer.expect("bot_reply")
        # The customer's own words, as long as a frame allows: handoff_reason held 64.
        await customer.send("support_escalate", request_id=created["request_id"], reason="w" * 2000)
        await customer.send("heartbeat")
        await customer.expect("pong")  # frames are handled in order: the escalation is done
        assert not customer.of_type("error"), customer.of_type("error")
        return created, reply


async def _short_conversation(service: ServiceProcess, customer_id: str, texts: list[str]) -> None:
    async with ChatClient.connect(service.ws_url, token(customer_id)) as customer:
        for text in texts:
            await customer.say(text)
            await customer.expect("bot_reply", timeout=30)
        assert not customer.of_type("error"), customer.of_type("error")


CHATS = [
    ["My card payment was declined at the shop", "Someone used my card without asking"],
    ["When will my new card be delivered?", "I lost my wallet with the card in it"],
]


def chat_lands_in_postgres(service: ServiceProcess, store_url: str) -> int:
    """Customers chat over WebSocket; their turns, the bot's replies and an escalation are rows
    of the store. Returns the number of customer turns."""
    customer_id = unique_user("loop-customer")
    created, reply = run(_escalated_conversation(service, customer_id))
    for texts in CHATS:
        run(_short_conversation(service, unique_user("loop-customer"), texts))

    engine = sa.create_engine(store_url)
    try:
        with engine.connect() as connection:
            request = (
                connection.execute(
                    sa.select(tables.support_requests).where(
                        tables.support_requests.c.request_id == created["request_id"]
                    )
                )
                .mappings()
                .one()
            )
    finally:
        engine.dispose()
    assert (request["handoff_reason"], request["escalation_reason"]) == ("escalated", "w" * 2000)
    frame = read_conversation_store(store_url).set_index("message_id")
    assert frame.loc[reply["message_id"], "speaker"] == "bot"
    assert frame.loc[reply["reply_to"], "user_id"] == customer_id
    turns = 1 + sum(len(texts) for texts in CHATS)
    chat = frame[frame["channel"] != "feedback"]
    assert (chat["speaker"] == "customer").sum() == turns
    return turns


def _post_feedback(client: httpx.Client, body: dict[str, str]) -> httpx.Response:
    return client.post("/feedback", json=body, headers={"X-API-Key": FEEDBACK_KEY})


def feedback_lands_in_postgres(
    service: ServiceProcess, store_url: str, examples: pd.DataFrame
) -> int:
    """The chat backend labels `examples` (text, category) over HTTP with what the model
    predicted for them; each is a row of the store with the service's trust. A NUL is a 400
    naming its field, and stores nothing. Returns the number of labels stored."""
    examples = pd.concat(
        [examples, pd.DataFrame({"text": ["Is my card on its way?"], "category": "card_arrival"})]
    )
    with httpx.Client(base_url=service.url, timeout=30) as client:
        items = [{"text": text} for text in examples["text"]]
        answer = client.post("/batch_predict", json={"items": items})
        assert answer.status_code == 200, answer.text
        predicted = [document["intent"] for document in answer.json()["predictions"]]
        bodies = [
            {"text": text, "true_intent": intent, "predicted_intent": guess}
            for text, intent, guess in zip(
                examples["text"], examples["category"], predicted, strict=True
            )
        ]
        # /feedback's message_id bound is 128 characters (labels.message_id held 64).
        bodies[-1]["message_id"] = "f" * 128
        with ThreadPoolExecutor(max_workers=4) as pool:
            answers = list(pool.map(lambda body: _post_feedback(client, body), bodies))
        assert [answer.status_code for answer in answers] == [200] * len(bodies)
        # PostgreSQL refuses U+0000 in text: the label reached the store and the answer was a 500.
        for field, value in [("text", "where\x00 is my card"), ("message_id", "m\x00")]:
            body = {"text": "where is my card", "true_intent": "card_arrival", field: value}
            answer = _post_feedback(client, body)
            assert answer.status_code == 400, answer.text
            [problem] = answer.json()["detail"]
            assert problem["loc"] == [field] and "NUL" in problem["msg"], problem
    frame = read_conversation_store(store_url)
    stored = frame[frame["channel"] == "feedback"]
    assert sorted(stored["text"]) == sorted(body["text"] for body in bodies)
    assert set(stored["label_trust"]) == {"service"}
    return len(bodies)


def swaps(service: ServiceProcess) -> int:
    """Hot swaps so far, summed over the workers (/metrics: every worker's counter adds up)."""
    metrics = httpx.get(f"{service.url}/metrics", timeout=10).text
    [line] = [line for line in metrics.splitlines() if line.startswith(f"{SWAPS_METRIC} ")]
    return int(float(line.split()[1]))


def every_worker_serves(service: ServiceProcess, version: str, swaps_before: int) -> None:
    """Wait until /version reports `version` and each worker has swapped to it once."""
    workers = len(worker_processes(service))
    for _ in range(FOLLOW_POLLS):
        if served_version(service) == version and swaps(service) >= swaps_before + workers:
            break
        time.sleep(0.5)
    assert swaps(service) == swaps_before + workers
    # New connections land on either worker: none answers with the old version any more.
    answered = {served_version(service) for _ in range(SERVED_ON_FRESH_CONNECTIONS)}
    assert answered == {version}


def artifact_downloads(server: MlflowServer) -> int:
    """How many artifact downloads the tracking server's proxy has served."""
    log = server.log.read_text(errors="replace")
    return log.count('"GET /api/2.0/mlflow-artifacts/artifacts/')


def predicts_with(service: ServiceProcess, version: str, intents: tuple[str, ...]) -> None:
    """/predict answers with `version`, one of its intents (or the fallback), and a confidence."""
    answer = httpx.post(f"{service.url}/predict", json={"text": "I lost my card"}, timeout=30)
    assert answer.status_code == 200, answer.text
    document = answer.json()
    assert document["model"]["version"] == version
    assert document["intent"] in {*intents, "nlu_fallback"}
    assert 0 <= document["confidence"] <= 1


def http_predictions_recorded(store_url: str, expected: int, wait_s: float = 120.0) -> int:
    """Wait until the store holds `expected` predictions answered over HTTP (each worker's
    prediction log flushes in the background) and return how many it holds."""
    engine = sa.create_engine(store_url)
    predictions = tables.predictions
    query = sa.select(sa.func.count()).where(predictions.c.channel == "http")
    deadline = time.monotonic() + wait_s
    try:
        while True:
            with engine.connect() as connection:
                found = int(connection.execute(query).scalar_one())
            if found >= expected or time.monotonic() > deadline:
                return found
            time.sleep(0.5)
    finally:
        engine.dispose()
