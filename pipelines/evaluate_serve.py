"""`make evaluate`'s serving half: a real `bentoml serve` of one version, scored over HTTP.

The version is served as `make serve` serves a champion (`serving.service:IntentService`), here
under an alias of the sandbox's registry, on a port of its own, with everything that could skew
the scores or refuse requests turned off (rate limit, registry polling, the chat tier). The test
set goes through `/batch_predict` in batches; latency is single `/predict` calls one at a time.
The whole process tree is stopped afterwards (BentoML's workers run in sessions of their own).
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import httpx

from models.benchmark import Latency, ServedAnswer, latency
from serving.local_serve import serving_on_loopback
from serving.process_tree import ServerStartError

logger = logging.getLogger("pipelines.evaluate")
WARM_UP_CALLS = 10
PROGRESS_EVERY_S = 5.0


class ServingFailed(RuntimeError):
    """The server did not start, or answered a request with an error (one-line message)."""


@dataclass(frozen=True)
class ServedVersion:
    """Which registered version to serve, from which sandbox stores."""

    model_name: str
    alias: str
    version: str
    tracking_uri: str
    store_url: str
    root: Path  # the server's log and BentoML home go here


def server_environment(
    served: ServedVersion, batch_size: int, environ: dict[str, str]
) -> dict[str, str]:
    """The serving process's environment: the sandbox's registry, nothing that refuses requests."""
    env = {k: v for k, v in environ.items() if k != "SERVING_MAX_BODY_BYTES"}
    return env | {
        "SERVING_MODEL_NAME": served.model_name,
        "SERVING_MODEL_ALIAS": served.alias,
        "SERVING_MLFLOW_TRACKING_URI": served.tracking_uri,
        "SERVING_MLFLOW_REGISTRY_URI": served.tracking_uri,
        "SERVING_STORE_URL": served.store_url,
        "SERVING_POLL_INTERVAL_S": "0",  # the evaluated version, never a newer one mid-run
        "SERVING_RATE_LIMIT_PER_S": "0",
        "SERVING_TOP_K": "5",
        "SERVING_MAX_BATCH_ITEMS": str(max(batch_size, 1)),
        "CHAT_ENABLED": "false",
        "BENTOML_HOME": str(served.root / "bentoml"),
    }


class _Terminated(Exception):
    """SIGTERM arrived: stop the server as Ctrl-C would."""


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise _Terminated


@contextmanager
def running_server(env: dict[str, str], log: Path, port: int) -> Iterator[str]:
    """`bentoml serve` on `port` until the block ends (Ctrl-C and SIGTERM too); its base URL."""
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        with serving_on_loopback(env, log, port) as url:
            yield url
        logger.info("stopped the server and its workers")
    except ServerStartError as failure:
        raise ServingFailed(f"bentoml serve did not start ({failure}); its log: {log}") from None
    except _Terminated:
        raise KeyboardInterrupt from None
    finally:
        signal.signal(signal.SIGTERM, previous)


def _post(client: httpx.Client, path: str, body: object) -> httpx.Response:
    """POST `body`; an error answer is ServingFailed naming the status and the API's detail."""
    try:
        response = client.post(path, json=body)
    except httpx.HTTPError as error:
        raise ServingFailed(f"{path}: {type(error).__name__}: {error}") from None
    if response.status_code != 200:
        detail = " ".join(response.text.split())[:300]
        raise ServingFailed(f"{path} answered {response.status_code}: {detail}")
    return response


def score_batches(
    url: str, texts: Sequence[str], batch_size: int, version: str
) -> list[ServedAnswer]:
    """Every text's answer from `/batch_predict`, in order; each batch must name `version`."""
    answers: list[ServedAnswer] = []
    last_report = time.monotonic()
    with httpx.Client(base_url=url, timeout=300) as client:
        for start in range(0, len(texts), batch_size):
            batch = texts[start : start + batch_size]
            document = _post(client, "/batch_predict", {"items": [{"text": t} for t in batch]})
            payload = document.json()
            served = str(payload["model"]["version"])
            if served != version:
                raise ServingFailed(f"/batch_predict answered with version {served}, not {version}")
            answers.extend(ServedAnswer.from_document(p) for p in payload["predictions"])
            if time.monotonic() - last_report >= PROGRESS_EVERY_S or len(answers) == len(texts):
                logger.info(
                    "scored %d/%d test texts through /batch_predict", len(answers), len(texts)
                )
                last_report = time.monotonic()
    if len(answers) != len(texts):
        raise ServingFailed(f"/batch_predict answered {len(answers)} of {len(texts)} texts")
    return answers


def probe_latency(url: str, texts: Sequence[str], calls: int) -> Latency:
    """Client-side time of `calls` single `/predict` requests sent one at a time (c=1)."""
    if not texts:
        raise ServingFailed("no text to time /predict with")
    timings: list[float] = []
    with httpx.Client(base_url=url, timeout=60) as client:
        for index in range(WARM_UP_CALLS):  # connection set-up and first-call costs left out
            _post(client, "/predict", {"text": texts[index % len(texts)]})
        for index in range(calls):
            started = time.perf_counter()
            _post(client, "/predict", {"text": texts[index % len(texts)]})
            timings.append(time.perf_counter() - started)
    return latency(timings)
