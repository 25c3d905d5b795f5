"""`make shell`: talk to the served model from a terminal, like `rasa shell`.

    python -m serving.shell [--url http://127.0.0.1:3000]

Each line typed is sent to the intent service's `POST /predict`; the answer is shown as the
intent and its confidence, the top alternatives, whether it fell back, and what the support bot
would reply (data/responses.yaml, with the chat tier's hand-off rules from serving/chat/bot.py,
so a second "not sure" in a row hands off as the chat does). `/quit`, `/exit` or Ctrl-D end it.

The service is `SERVICE_URL` (default `make serve`'s address); when nothing answers there, the
shell says so in one line and exits 2 before reading anything.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, TextIO

import httpx
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from models.settings_errors import SettingsProblem, load_settings
from serving.chat.bot import (
    HANDOFF,
    REPHRASE,
    Action,
    BotPolicy,
    CatalogueError,
    ResponseCatalogue,
    Signals,
    Turn,
    decide,
)
from serving.chat.settings import ChatSettings

QUIT_COMMANDS = frozenset({"/quit", "/exit"})
EXIT_UNUSABLE = 2  # no service at the URL, or a bad setting
EXIT_INTERRUPTED = 130


def service_url(value: str) -> str:
    """An http(s) URL without its trailing slash; ValueError for anything else."""
    if not value.startswith(("http://", "https://")):
        raise ValueError("SERVICE_URL must be an http:// or https:// URL")
    return value.rstrip("/")


class ShellSettings(BaseSettings):
    """Where the intent service is (env SERVICE_URL, SHELL_TIMEOUT_S)."""

    model_config = SettingsConfigDict(env_prefix="SHELL_", env_file=".env", extra="ignore")

    url: str = Field("http://127.0.0.1:3000", validation_alias="SERVICE_URL")
    timeout_s: float = Field(10.0, gt=0)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return service_url(value)


class ServiceUnreachable(Exception):
    """Nothing answers at the service URL (the message is one line)."""


@dataclass(frozen=True)
class Alternative:
    """One of the top intents and its confidence."""

    intent: str
    confidence: float


@dataclass(frozen=True)
class Prediction:
    """The fields of a `/predict` answer the shell shows."""

    intent: str
    confidence: float
    fallback: bool
    top_k: tuple[Alternative, ...]
    polarity: float

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Prediction:
        """Read a `/predict` answer (serving/README.md)."""
        return cls(
            intent=str(body["intent"]),
            confidence=float(body["confidence"]),
            fallback=bool(body["fallback"]),
            top_k=tuple(
                Alternative(str(item["intent"]), float(item["confidence"]))
                for item in body.get("top_k", [])
            ),
            polarity=float(body.get("sentiment", {}).get("polarity", 0.0)),
        )


class IntentClient:
    """The intent service's HTTP API, errors as one-line exceptions."""

    def __init__(self, url: str, timeout_s: float) -> None:
        self.url = url
        self.http = httpx.Client(base_url=url, timeout=timeout_s)

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return self.http.request(method, path, **kwargs)
        except httpx.TimeoutException:
            raise ServiceUnreachable(f"{self.url} did not answer in time") from None
        except httpx.TransportError as problem:
            raise ServiceUnreachable(
                f"no intent service answers at {self.url} ({problem})"
            ) from None

    def model(self) -> str:
        """`name vN` of the served model; ServiceUnreachable when nothing serves it here."""
        answer = self._request("GET", "/version")
        if answer.status_code != 200:
            raise ServiceUnreachable(
                f"{self.url} is not the intent service (GET /version answered {answer.status_code})"
            )
        body = answer.json()
        return f"{body.get('name', 'model')} v{body.get('version', '?')}"

    def predict(self, text: str) -> Prediction | str:
        """The prediction, or the service's error message when it refused the text."""
        answer = self._request("POST", "/predict", json={"text": text})
        if answer.status_code != 200:
            return f"the service answered {answer.status_code}: {_error_message(answer)}"
        return Prediction.from_json(answer.json())

    def close(self) -> None:
        """Close the connection pool."""
        self.http.close()


def _error_message(answer: httpx.Response) -> str:
    try:
        body = answer.json()
    except ValueError:
        return answer.text[:200]
    return str(body.get("error", body))[:200] if isinstance(body, dict) else str(body)[:200]


@dataclass
class BotReplies:
    """What the support bot answers, with the chat tier's catalogue and hand-off rules."""

    catalogue: ResponseCatalogue
    policy: BotPolicy
    history: list[Turn] = field(default_factory=list)

    def reply(self, text: str, prediction: Prediction) -> str:
        """The bot's reply to `text`, remembering the turn as the chat does."""
        signals = Signals(text, prediction.intent, prediction.fallback, prediction.polarity)
        decision = decide(self.policy, signals, self.history)
        self.history.append(Turn(prediction.intent, prediction.fallback, prediction.polarity))
        if decision.action == Action.HANDOFF:
            return f"{self.catalogue.reply(HANDOFF)}  [hand-off: {decision.reason}]"
        if decision.action == Action.REPHRASE:
            return self.catalogue.reply(REPHRASE)
        if prediction.intent not in self.catalogue.replies:
            return f"(no reply for {prediction.intent} in the response catalogue)"
        return self.catalogue.reply(prediction.intent)


def render(prediction: Prediction, bot_reply: str) -> str:
    """The lines shown for one message."""
    alternatives = "  ".join(f"{alt.intent} {alt.confidence:.3f}" for alt in prediction.top_k)
    return "\n".join(
        (
            f"  intent    {prediction.intent}  {prediction.confidence:.3f}",
            f"  top       {alternatives}",
            f"  fallback  {'yes (not sure)' if prediction.fallback else 'no'}",
            f"  bot       {bot_reply}",
        )
    )


def read_lines(stdin: TextIO, stdout: TextIO, prompt: str) -> Iterator[str]:
    """Lines typed until Ctrl-D or a quit command (a prompt only when a person types)."""
    interactive = stdin.isatty() and stdin is sys.stdin
    if interactive:
        import readline  # noqa: F401  (line editing and history for input())
    while True:
        if interactive:
            try:
                line = input(prompt) + "\n"
            except EOFError:  # Ctrl-D
                stdout.write("\n")
                return
        else:
            line = stdin.readline()
        if not line:  # end of input
            return
        text = line.strip()
        if text in QUIT_COMMANDS:
            return
        if text:
            yield text


def chat(client: IntentClient, bot: BotReplies, stdin: TextIO, stdout: TextIO) -> None:
    """Answer every line read from `stdin` on `stdout`; problems on stderr, and go on."""
    for text in read_lines(stdin, stdout, "you> "):
        try:
            prediction = client.predict(text)
        except ServiceUnreachable as problem:
            print(f"error: {problem}", file=sys.stderr, flush=True)
            continue
        if isinstance(prediction, str):
            print(f"error: {prediction}", file=sys.stderr, flush=True)
            continue
        print(render(prediction, bot.reply(text, prediction)), file=stdout, flush=True)


def main(argv: list[str] | None = None) -> int:
    """Entry point: exit 0 at the end of input, 2 when the service or a setting is unusable."""
    parser = argparse.ArgumentParser(prog="python -m serving.shell", description=__doc__)
    parser.add_argument("--url", help="the intent service (default: SERVICE_URL)")
    args = parser.parse_args(argv)
    try:
        settings = load_settings(ShellSettings)
        url = service_url(args.url) if args.url else settings.url
        chat_settings = load_settings(ChatSettings)
        catalogue = ResponseCatalogue.load(chat_settings.responses_path)
    except (SettingsProblem, CatalogueError, ValueError) as problem:
        print(f"error: {problem}", file=sys.stderr)
        return EXIT_UNUSABLE
    client = IntentClient(url, settings.timeout_s)
    try:
        model = client.model()
    except ServiceUnreachable as problem:
        client.close()
        print(f"error: {problem}; start it with `make serve` or set SERVICE_URL", file=sys.stderr)
        return EXIT_UNUSABLE
    policy = BotPolicy(chat_settings.handoff_after_fallbacks, chat_settings.frustration_threshold)
    print(f"{model} at {url}. Type a message; /quit or Ctrl-D to end.", flush=True)
    try:
        chat(client, BotReplies(catalogue, policy), sys.stdin, sys.stdout)
    except KeyboardInterrupt:
        print()
        return EXIT_INTERRUPTED
    finally:
        client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
