"""The support bot's policy: what to answer, when to ask again, when to hand off to a human.

Pure logic (no I/O beyond reading the catalogue), so the policy is tested without a server.
"""

from __future__ import annotations

import itertools
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import yaml

REPHRASE, HANDOFF, HANDOFF_FAILED, RESOLVED, DEFAULT = (
    "_rephrase",
    "_handoff",
    "_handoff_failed",
    "_resolved",
    "default",
)
REQUIRED_KEYS = (REPHRASE, HANDOFF, HANDOFF_FAILED, RESOLVED, DEFAULT)

# An explicit request for a person, in the ways customers write it.
HUMAN_REQUEST = re.compile(
    r"\b(human|real person|a person|live agent|an agent|agent please|representative|"
    r"someone real|speak to (?:someone|somebody)|talk to (?:someone|somebody)|operator)\b",
    re.IGNORECASE,
)


class CatalogueError(ValueError):
    """A response catalogue that cannot be used; the message names the key."""


class ResponseCatalogue:
    """Replies per intent, read from YAML (`data/responses.yaml`)."""

    def __init__(self, replies: dict[str, list[str]], rng: random.Random | None = None) -> None:
        for key in REQUIRED_KEYS:
            if not replies.get(key):
                raise CatalogueError(f"response catalogue has no replies for {key!r}")
        for key, options in replies.items():
            if not isinstance(options, list) or not all(
                isinstance(option, str) and option.strip() for option in options
            ):
                raise CatalogueError(f"response catalogue key {key!r}: a list of non-empty texts")
        self.replies = replies
        self.rng = rng or random.Random()

    @classmethod
    def load(cls, path: Path) -> ResponseCatalogue:
        """Read a catalogue file; errors name the file and the key."""
        try:
            document = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise CatalogueError(f"cannot read response catalogue {path}: {exc}") from exc
        if not isinstance(document, dict):
            raise CatalogueError(f"response catalogue {path} must map intents to lists of replies")
        return cls({str(key): value for key, value in document.items()})

    def missing(self, intents: Sequence[str]) -> list[str]:
        """Intents the model knows that fall back to the default reply."""
        return [intent for intent in intents if intent not in self.replies]

    def reply(self, key: str) -> str:
        """A reply for an intent (or a bot turn), the default one when the intent is unknown."""
        return self.rng.choice(self.replies.get(key) or self.replies[DEFAULT])


@dataclass(frozen=True)
class Turn:
    """A customer turn the bot already classified."""

    intent: str
    fallback: bool
    polarity: float


@dataclass(frozen=True)
class Signals:
    """The classified current message plus what it says about the customer's mood."""

    text: str
    intent: str
    fallback: bool
    polarity: float


def frustration_score(current: Signals, history: Sequence[Turn]) -> float:
    """0 (calm) to 1 (angry), from the design's signals.

    Negative polarity of this message (0.4), exclamation marks (0.2), the same intent asked
    again after an answer (0.2) and a falling polarity over the last turns (0.2).
    """
    negativity = max(0.0, -current.polarity)
    exclamations = min(current.text.count("!"), 3) / 3
    shouting = sum(1 for word in current.text.split() if len(word) > 2 and word.isupper())
    exclamations = max(exclamations, min(shouting, 3) / 3)
    repeated = (
        1.0
        if not current.fallback and any(t.intent == current.intent for t in history[-2:])
        else 0.0
    )
    polarities = [turn.polarity for turn in history[-2:]] + [current.polarity]
    falling = (
        1.0
        if len(polarities) >= 2
        and all(b < a for a, b in itertools.pairwise(polarities))
        and current.polarity < 0
        else 0.0
    )
    return round(0.4 * negativity + 0.2 * exclamations + 0.2 * repeated + 0.2 * falling, 4)


class Action(StrEnum):
    """What the bot does with a customer message."""

    ANSWER = "answer"
    REPHRASE = "rephrase"
    HANDOFF = "handoff"


class HandoffReason(StrEnum):
    """Why a conversation went to a human (`support_requests.handoff_reason`).

    The bot's rules give the first four; the rest come from frames. An escalation's own words
    are kept apart, in `support_requests.escalation_reason`.
    """

    ASKED_FOR_HUMAN = "asked_for_human"
    REPEATED_FALLBACK = "repeated_fallback"
    FRUSTRATION = "frustration"
    MODEL_UNAVAILABLE = "model_unavailable"
    CUSTOMER_REQUEST = "customer_request"  # a `support_request` frame
    ESCALATED = "escalated"  # a `support_escalate` frame
    AGENT_JOINED = "agent_joined"  # an agent joined the room before any hand-off


@dataclass(frozen=True)
class BotPolicy:
    """Thresholds of the hand-off rules."""

    handoff_after_fallbacks: int = 2
    frustration_threshold: float = 0.6


@dataclass(frozen=True)
class Decision:
    """The bot's decision for one message."""

    action: Action
    reason: HandoffReason | None
    frustration: float


def decide(policy: BotPolicy, current: Signals, history: Sequence[Turn]) -> Decision:
    """Answer, ask to rephrase, or hand off (the first hand-off rule that holds wins)."""
    frustration = frustration_score(current, history)
    if HUMAN_REQUEST.search(current.text):
        return Decision(Action.HANDOFF, HandoffReason.ASKED_FOR_HUMAN, frustration)
    if frustration >= policy.frustration_threshold:
        return Decision(Action.HANDOFF, HandoffReason.FRUSTRATION, frustration)
    if current.fallback:
        fallbacks = 1 + sum(1 for turn in history if turn.fallback)
        if fallbacks >= policy.handoff_after_fallbacks:
            return Decision(Action.HANDOFF, HandoffReason.REPEATED_FALLBACK, frustration)
        return Decision(Action.REPHRASE, None, frustration)
    return Decision(Action.ANSWER, None, frustration)
