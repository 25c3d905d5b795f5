"""Drift in the gate: Evidently test conditions on the challenger's answers to recent traffic.

Both models answer the same recent customer messages (the I/O side, monitoring/gate_drift_run.py,
reads them from the conversation store and scores them). Evidently compares the challenger's
answers (current) with the champion's (reference):

- `recent_fallback_rate`: `MeanValue` of the fallback flag ≤ the champion's + a tolerance
  (`Reference(absolute=...)`), and ≤ an absolute cap when one is set;
- `recent_prediction_drift`: `ValueDrift` of the intent each model ranks first, Jensen-Shannon
  distance below a threshold. The same texts on both sides, so any distance is the models
  disagreeing, not sampling noise between two windows. Left out: messages the champion was
  unsure of, and those the challenger answers with an intent the champion never learnt; there
  a challenger retrained on what agents labelled is meant to answer differently.

Too few recent messages is not a reason to refuse a challenger: both checks then pass, saying
"not judged" and why (a new deployment, a quiet week, texts kept only as hashes).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from models.gate_records import Check

FALLBACK_CHECK = "recent_fallback_rate"
DRIFT_CHECK = "recent_prediction_drift"


@dataclass(frozen=True)
class RecentDriftRules:
    """Thresholds of the two checks and the window they look at (PromotionConfig's recent_*)."""

    window_hours: float = 168.0
    # Fewer recent messages with text than this: not judged (both checks pass, saying so).
    # 200: with 77 intents, models that disagree on 10 % of the same messages, scattered,
    # read Jensen-Shannon ≈ 0.11 on 200 messages but ≈ 0.17 on 100 and ≈ 0.21 on 30: on
    # few messages the sparse counts look like drift (monitoring/README.md).
    min_messages: int = 200
    # The challenger may fall back on at most this much more of the recent messages.
    fallback_tolerance: float = 0.05
    # None: no absolute cap, only the comparison with the champion.
    max_fallback_rate: float | None = None
    # Jensen-Shannon distance between the two models' first-ranked intents on the same texts.
    max_prediction_drift: float = 0.2

    def __post_init__(self) -> None:
        problems = []
        if not self.window_hours > 0:
            problems.append("recent_window_hours must be > 0")
        if self.min_messages < 1:
            problems.append("recent_min_messages must be ≥ 1")
        if not 0 <= self.fallback_tolerance <= 1:
            problems.append("recent_fallback_tolerance must be in [0, 1]")
        if self.max_fallback_rate is not None and not 0 < self.max_fallback_rate <= 1:
            problems.append("recent_max_fallback_rate must be in (0, 1] or unset")
        if not 0 < self.max_prediction_drift <= 1:
            problems.append("recent_max_prediction_drift must be in (0, 1]")
        if problems:
            raise ValueError("; ".join(problems))


@dataclass(frozen=True)
class Answers:
    """One model's answers on the recent texts, in the same order for both models."""

    version: str
    top_intents: tuple[str, ...]  # the intent ranked first, before the fallback policy
    fallback: tuple[bool, ...]

    @property
    def fallback_count(self) -> int:
        """Messages this model would answer with `nlu_fallback`."""
        return sum(self.fallback)

    def subset(self, rows: Sequence[int]) -> Answers:
        """The answers on some of the messages only."""
        return Answers(
            self.version,
            tuple(self.top_intents[i] for i in rows),
            tuple(self.fallback[i] for i in rows),
        )


def not_judged(reason: str) -> list[Check]:
    """Both checks passing with the reason they were not judged (e.g. too little traffic)."""
    return [Check(name, True, f"not judged: {reason}") for name in (FALLBACK_CHECK, DRIFT_CHECK)]


def window_problem(
    messages: int, with_text: int, rules: RecentDriftRules, window: str
) -> str | None:
    """Why the recent window cannot be judged (too few messages, texts not kept), or None.

    `messages`: customer messages with a prediction in the window; `with_text`: those whose text
    the store kept (SERVING_RECORD_TEXT=hash/off keeps none for HTTP predictions).
    """
    if with_text >= rules.min_messages:
        return None
    if messages >= rules.min_messages:
        return (
            f"{messages} recent messages in the {window} but only {with_text} with their text "
            "(SERVING_RECORD_TEXT=hash or off keeps no text to score the challenger on)"
        )
    return (
        f"only {messages} recent messages in the {window} "
        f"(fewer than recent_min_messages {rules.min_messages})"
    )


def judge_recent_answers(
    champion: Answers,
    challenger: Answers,
    rules: RecentDriftRules,
    window: str,
    new_intents: frozenset[str] = frozenset(),
) -> list[Check]:
    """The two checks, decided by Evidently tests on the challenger's vs the champion's answers.

    `window` names the recent window in the reasons (e.g. "last 168 h"); `new_intents` are the
    challenger's intents the champion never learnt: messages it now answers with one of them are
    learning, not drift, and are left out of `recent_prediction_drift` (counted in its reason).
    """
    count = len(challenger.top_intents)
    if len(champion.top_intents) != count or len(challenger.fallback) != count:
        raise ValueError("both models must answer the same recent messages")
    problem = window_problem(count, count, rules, window)
    if problem is not None:
        return not_judged(problem)
    answered = [row for row, unsure in enumerate(champion.fallback) if not unsure]
    compared = [row for row in answered if challenger.top_intents[row] not in new_intents]
    learnt = len(answered) - len(compared)
    return [
        _fallback_check(
            champion, challenger, rules, _fallback_passes(champion, challenger, rules), window
        ),
        _drift_check(
            champion.subset(compared), challenger.subset(compared), rules, (count, learnt), window
        ),
    ]


def _frame(answers: Answers) -> Any:
    import pandas as pd

    return pd.DataFrame(
        {
            "predicted_intent": list(answers.top_intents),
            "fallback": [float(flag) for flag in answers.fallback],
        }
    )


def _run_report(metrics: list[Any], champion: Answers, challenger: Answers) -> dict[str, Any]:
    """An Evidently report of `metrics`: the challenger's answers current, the champion's
    reference. Its snapshot as a document."""
    from evidently import DataDefinition, Dataset, Report

    definition = DataDefinition(
        numerical_columns=["fallback"], categorical_columns=["predicted_intent"]
    )
    current, reference = (
        Dataset.from_pandas(_frame(answers), data_definition=definition)
        for answers in (challenger, champion)
    )
    return dict(Report(metrics).run(current, reference).dict())


def _all_tests_pass(document: dict[str, Any]) -> bool:
    return not any(str(test["status"]).endswith("FAIL") for test in document["tests"])


def _fallback_passes(champion: Answers, challenger: Answers, rules: RecentDriftRules) -> bool:
    """Evidently: the challenger's fallback rate within the champion's + tolerance (and cap)."""
    from evidently.metrics import MeanValue
    from evidently.tests import Reference, lte

    # `x <= Reference(absolute=t)` is x ≤ the champion's value + t (Evidently's ApproxValue).
    tests = [lte(Reference(absolute=rules.fallback_tolerance))]
    if rules.max_fallback_rate is not None:
        tests.append(lte(rules.max_fallback_rate))
    return _all_tests_pass(
        _run_report([MeanValue(column="fallback", tests=tests)], champion, challenger)
    )


def _prediction_drift(
    champion: Answers, challenger: Answers, rules: RecentDriftRules
) -> tuple[float, bool]:
    """Evidently: Jensen-Shannon distance of the first-ranked intents, and whether it is below
    the threshold."""
    from evidently.metrics import ValueDrift
    from evidently.tests import lt

    threshold = rules.max_prediction_drift
    metric = ValueDrift(
        column="predicted_intent",
        method="jensenshannon",
        threshold=threshold,
        tests=[lt(threshold)],
    )
    document = _run_report([metric], champion, challenger)
    return float(document["metrics"][0]["value"]), _all_tests_pass(document)


def _share(part: int, whole: int) -> str:
    return f"{part} of {whole} ({part / whole:.1%})"


def _fallback_check(
    champion: Answers, challenger: Answers, rules: RecentDriftRules, passed: bool, window: str
) -> Check:
    count = len(challenger.fallback)
    allowed = champion.fallback_count / count + rules.fallback_tolerance
    bound = f"the champion's rate + {rules.fallback_tolerance:.2f} = {min(allowed, 1.0):.1%}"
    if rules.max_fallback_rate is not None:
        bound += f", and the cap {rules.max_fallback_rate:.1%}"
    return Check(
        FALLBACK_CHECK,
        passed,
        f"of {count} recent messages ({window}) challenger v{challenger.version} would answer "
        f"'not sure' to {_share(challenger.fallback_count, count)}, champion "
        f"v{champion.version} to {_share(champion.fallback_count, count)}; allowed at most "
        f"{bound}" + ("" if passed else ": customers would be handed off more often"),
    )


def _drift_check(
    champion: Answers,
    challenger: Answers,
    rules: RecentDriftRules,
    counts: tuple[int, int],
    window: str,
) -> Check:
    """`champion` and `challenger`: their answers on the messages compared (answered by the
    champion, not with a new intent by the challenger); `counts`: all messages, and those the
    challenger answers with new intents."""
    (messages, learnt), compared = counts, len(champion.top_intents)
    scope = f"the {compared} of {messages} recent messages ({window}) the champion answered"
    if learnt:
        scope += f" (leaving out {learnt} the challenger answers with intents it learnt since)"
    if compared < rules.min_messages:
        return Check(
            DRIFT_CHECK,
            True,
            f"not judged: only {scope}, fewer than recent_min_messages {rules.min_messages}",
        )
    distance, passed = _prediction_drift(champion, challenger, rules)
    relation = "<" if passed else "≥"
    reason = (
        f"on {scope}, the intents the challenger picks vs the champion's: Jensen-Shannon "
        f"{_rounded(distance)} {relation} {rules.max_prediction_drift:.2f}"
    )
    moved = _largest_moves(champion.top_intents, challenger.top_intents)
    if moved:
        reason += "; it picks " + ", ".join(moved)
    return Check(DRIFT_CHECK, passed, reason)


def _rounded(value: float) -> str:
    return "nan" if math.isnan(value) else f"{value:.3f}"


def _largest_moves(before: Sequence[str], after: Sequence[str], limit: int = 3) -> list[str]:
    """The intents whose counts changed most, in words: 'card_arrival 12 times (champion 3)'."""
    old, new = Counter(before), Counter(after)
    changes = sorted(
        ((abs(new[name] - old[name]), name) for name in old.keys() | new.keys()),
        key=lambda item: (-item[0], item[1]),
    )
    return [
        f"{name} {new[name]} times (champion {old[name]})"
        for change, name in changes[:limit]
        if change > 0
    ]
