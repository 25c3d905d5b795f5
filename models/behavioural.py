"""Behavioural tests of a model (CheckList-style), pure: a predict function in, rates out.

Invariance: a typo, different casing or different punctuation must not change the predicted
intent. Each test message keeps its own context (what came before it in its conversation): in a
dialogue "yes please" means what the bot just offered, and a model asked without that context
answers another question. Minimum functionality: plain hand-written requests per intent
(`data/behavioral/minimum_functionality.yaml`) must be classified right; they stand alone.
"""

from __future__ import annotations

import random
import re
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

PERTURBATIONS = ("typo", "casing", "punctuation")
NO_CONTEXT = "{}"


@dataclass(frozen=True)
class Utterance:
    """A message to classify and its context (the JSON text the model is trained with)."""

    text: str
    context: str = NO_CONTEXT


Predict = Callable[[list[Utterance]], Sequence[str]]


def load_functionality(path: Path) -> dict[str, list[str]]:
    """Intent → examples that must be classified as that intent."""
    document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(document, dict):
        raise ValueError(f"{path}: expected a mapping of intent to a list of examples")
    return {str(intent): [str(text) for text in texts] for intent, texts in document.items()}


def typo(text: str, rng: random.Random) -> str:
    """Swap two adjacent letters inside one longer word."""
    words = text.split()
    candidates = [i for i, word in enumerate(words) if len(word) > 4 and word.isalpha()]
    if not candidates:
        return text
    index = rng.choice(candidates)
    word = words[index]
    at = rng.randrange(1, len(word) - 2)
    words[index] = word[:at] + word[at + 1] + word[at] + word[at + 2 :]
    return " ".join(words)


def casing(text: str, rng: random.Random) -> str:
    """All lower or all upper case."""
    return text.upper() if rng.random() < 0.5 else text.lower()


def punctuation(text: str, rng: random.Random) -> str:
    """Strip the final punctuation, or end with a different mark."""
    bare = text.rstrip(string.punctuation + " ")
    return bare + rng.choice(["", "?", "!", "...", " ??"])


PERTURB: dict[str, Callable[[str, random.Random], str]] = {
    "typo": typo,
    "casing": casing,
    "punctuation": punctuation,
}


@dataclass(frozen=True)
class BehaviouralFailure:
    """A message the model got wrong: `test` is minimum_functionality or a perturbation."""

    test: str
    text: str
    expected: str
    got: str
    # The message before the perturbation (invariance failures only).
    original: str | None = None


@dataclass
class BehaviouralResult:
    """Pass rates of each test family and a few failures to show people."""

    invariance: dict[str, float]
    invariance_cases: int
    functionality: float | None
    functionality_cases: int
    failures: list[BehaviouralFailure] = field(default_factory=list)


def run_behavioural_suite(
    predict: Predict,
    known_intents: Sequence[str],
    functionality: dict[str, list[str]],
    invariance_cases: Sequence[Utterance],
    seed: int = 0,
    show_failures: int = 10,
) -> BehaviouralResult:
    """Run both families against `predict` (utterances in, intents out).

    A perturbed message keeps the context of the one it perturbs.
    """
    rng = random.Random(seed)
    known = set(known_intents)
    cases = [
        (intent, text)
        for intent, texts in functionality.items()
        if intent in known
        for text in texts
    ]
    failures: list[BehaviouralFailure] = []
    functionality_rate = None
    if cases:
        predicted = list(predict([Utterance(text) for _, text in cases]))
        right = [want == got for (want, _), got in zip(cases, predicted, strict=True)]
        functionality_rate = sum(right) / len(right)
        failures += [
            BehaviouralFailure("minimum_functionality", text, want, got)
            for (want, text), got, ok in zip(cases, predicted, right, strict=True)
            if not ok
        ][:show_failures]
    base_cases = [case for case in invariance_cases if re.search(r"[A-Za-z]", case.text)]
    base_texts = [case.text for case in base_cases]
    base = list(predict(base_cases))
    rates: dict[str, float] = {}
    for kind in PERTURBATIONS:
        changed = [PERTURB[kind](text, rng) for text in base_texts]
        pairs = zip(changed, base_cases, strict=True)
        after = list(predict([Utterance(new, case.context) for new, case in pairs]))
        same = [a == b for a, b in zip(base, after, strict=True)]
        rates[kind] = round(sum(same) / len(same), 4) if same else 1.0
        failures += [
            BehaviouralFailure(kind, new, a, b, original=old)
            for old, new, a, b, ok in zip(base_texts, changed, base, after, same, strict=True)
            if not ok
        ][: max(0, show_failures - len(failures))]
    return BehaviouralResult(
        rates,
        len(base_texts),
        round(functionality_rate, 4) if functionality_rate is not None else None,
        len(cases),
        failures,
    )
