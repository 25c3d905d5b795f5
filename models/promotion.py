"""Promotion rules: pure functions that decide whether a challenger replaces the champion.

Every check returns a named result with a human reason, so the decision can be recorded on the
model version and shown to people. Both models are scored on the same frozen test split.
Checks: accuracy floor, beats the baselines (first model), beats the champion by the margin, no
per-intent regression, recent feedback, behavioural invariance and minimum functionality, data
quality of the training set.

The first model's rule is relative to the data: with no accuracy floor configured, it must beat
baselines trained in the same run on the same split (models/baselines.py) by `baseline_margin`.
A floor is a user's statement about their data (Banking77's is 0.85, data/README.md): when set,
it decides the first model and every later one must reach it too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from models.gate_records import Check, GateDecision, GateInputs


def check_accuracy_floor(inputs: GateInputs) -> Check:
    """The challenger's test accuracy reaches the configured floor (when one is configured)."""
    accuracy, floor = inputs.challenger.test_accuracy, inputs.rules.accuracy_floor
    if floor is None:
        return Check(
            "accuracy_floor", True, "no floor configured: the baselines judge a first model"
        )
    passed = accuracy >= floor
    relation = ">=" if passed else "<"
    return Check(
        "accuracy_floor", passed, f"test_accuracy {accuracy:.4f} {relation} floor {floor:.4f}"
    )


def _baseline_scores(inputs: GateInputs) -> str:
    return ", ".join(f"{b.name} {b.test_accuracy:.4f}" for b in inputs.baselines) or "none"


def check_beats_baselines(inputs: GateInputs) -> Check:
    """A first model beats every baseline of its run by `baseline_margin` (unless a floor is set).

    With a champion, `beats_champion` decides; with a floor, the floor does. The baselines'
    scores are in the reason either way.
    """
    accuracy, rules = inputs.challenger.test_accuracy, inputs.rules
    scores = f"baselines {_baseline_scores(inputs)}"
    if inputs.champion is not None:
        return Check("beats_baselines", True, f"{scores}; a champion exists: it is the bar")
    if rules.accuracy_floor is not None:
        return Check("beats_baselines", True, f"{scores}; the configured floor decides")
    if not inputs.baselines:
        return Check("beats_baselines", False, "baselines not evaluated")
    needed = max(b.test_accuracy for b in inputs.baselines) + rules.baseline_margin
    passed = accuracy >= needed
    return Check(
        "beats_baselines",
        passed,
        f"test_accuracy {accuracy:.4f} {'>=' if passed else '<'} {needed:.4f} = best of "
        f"{scores} + margin {rules.baseline_margin:.4f}",
    )


def check_beats_champion(inputs: GateInputs) -> Check:
    """The challenger beats the champion's test accuracy by at least the configured margin.

    Equal test scores never promote, unless the challenger is strictly better on the recent
    feedback split (with enough labels to compare): that is where intents agents taught it show
    up, since the frozen test split only holds curated or reviewed truth (models/examples.py).
    A challenger that learnt intents the champion never knew, and is better on that split, may
    give back `max_test_loss_when_taught` of the test margin: its new intents take a few old
    messages that resemble them. Per-intent losses stay bounded by `no_intent_regression`.
    """
    champion, challenger, rules = inputs.champion, inputs.challenger, inputs.rules
    if champion is None:
        return Check("beats_champion", True, "no champion yet: the baselines or the floor decide")
    gain = challenger.test_accuracy - champion.test_accuracy
    scores = (
        f"test_accuracy {challenger.test_accuracy:.4f} vs champion v{champion.version} "
        f"{champion.test_accuracy:.4f} (gain {gain:+.4f}"
    )
    learnt = _feedback_gain(inputs)
    if learnt is not None and inputs.new_intents:
        required = rules.min_improvement - rules.max_test_loss_when_taught
        return Check(
            "beats_champion",
            gain >= required,
            f"{scores}, required >= {required:+.4f} since taught "
            f"{', '.join(inputs.new_intents)}: {learnt})",
        )
    # A retrain that changes nothing must not move the champion: some strict gain is required.
    passed = challenger.test_accuracy >= champion.test_accuracy + rules.min_improvement and (
        gain > 0 or learnt is not None
    )
    return Check(
        "beats_champion",
        passed,
        f"{scores}, required > 0 and >= {rules.min_improvement:+.4f}"
        + (f", or a tie with {learnt}" if learnt else "")
        + ")",
    )


def _feedback_gain(inputs: GateInputs) -> str | None:
    """How the challenger beats the champion on enough recent feedback labels, else None."""
    challenger, champion = inputs.challenger, inputs.champion
    if champion is None or inputs.feedback_labels < inputs.rules.min_feedback_labels:
        return None
    if challenger.feedback_accuracy is None or champion.feedback_accuracy is None:
        return None
    if challenger.feedback_accuracy <= champion.feedback_accuracy:
        return None
    return (
        f"feedback {challenger.feedback_accuracy:.4f} vs {champion.feedback_accuracy:.4f} "
        f"on {inputs.feedback_labels} agent labels"
    )


def check_no_intent_regression(inputs: GateInputs) -> Check:
    """No well-supported intent loses more than the allowed F1 against the champion."""
    champion, challenger, rules = inputs.champion, inputs.challenger, inputs.rules
    if champion is None:
        return Check("no_intent_regression", True, "no champion yet: nothing to regress from")
    if not challenger.per_intent_f1 or not champion.per_intent_f1:
        return Check("no_intent_regression", False, "per-intent F1 not evaluated")
    losses = sorted(
        (
            (champion.per_intent_f1[intent] - challenger.per_intent_f1.get(intent, 0.0), intent)
            for intent, support in inputs.intent_support.items()
            if support >= rules.min_intent_support and intent in champion.per_intent_f1
        ),
        reverse=True,
    )
    worse = [(loss, intent) for loss, intent in losses if loss > rules.max_intent_f1_drop]
    if worse:
        named = ", ".join(f"{intent} −{loss:.3f}" for loss, intent in worse[:5])
        return Check(
            "no_intent_regression",
            False,
            f"{len(worse)} intents lose more than {rules.max_intent_f1_drop:.2f} F1: {named}",
        )
    worst = f"{losses[0][1]} {-losses[0][0]:+.3f}" if losses else "none compared"
    return Check(
        "no_intent_regression",
        True,
        f"{len(losses)} intents with ≥{rules.min_intent_support} test examples; worst {worst}",
    )


def check_recent_feedback(inputs: GateInputs) -> Check:
    """At least as accurate as the champion on recent labelled feedback."""
    champion, challenger, rules = inputs.champion, inputs.challenger, inputs.rules
    if inputs.feedback_labels < rules.min_feedback_labels:
        return Check(
            "recent_feedback",
            True,
            f"{inputs.feedback_labels} recent agent labels in the held-out feedback split "
            f"(< {rules.min_feedback_labels}): not enough to compare",
        )
    if challenger.feedback_accuracy is None:
        return Check("recent_feedback", False, "feedback accuracy not evaluated")
    if champion is None or champion.feedback_accuracy is None:
        return Check(
            "recent_feedback",
            True,
            f"accuracy {challenger.feedback_accuracy:.4f} on {inputs.feedback_labels} "
            "labels; no champion to compare",
        )
    passed = challenger.feedback_accuracy >= champion.feedback_accuracy - rules.feedback_tolerance
    return Check(
        "recent_feedback",
        passed,
        f"accuracy on {inputs.feedback_labels} recent labels {challenger.feedback_accuracy:.4f} "
        f"vs champion {champion.feedback_accuracy:.4f} (tolerance {rules.feedback_tolerance})",
    )


def check_invariance(inputs: GateInputs) -> Check:
    """Predictions survive typos, casing and punctuation changes."""
    result = inputs.behavioural
    if result is None:
        return Check("invariance", False, "behavioural tests not run")
    worst = min(result.invariance.values())
    rates = ", ".join(f"{kind} {rate:.1%}" for kind, rate in result.invariance.items())
    return Check(
        "invariance",
        worst >= inputs.rules.min_invariance,
        f"unchanged predictions on {result.invariance_cases} messages: {rates} "
        f"(minimum {inputs.rules.min_invariance:.0%})",
    )


def check_minimum_functionality(inputs: GateInputs) -> Check:
    """Plain per-intent requests (data/behavioral/) are classified right."""
    result = inputs.behavioural
    if result is None:
        return Check("minimum_functionality", False, "behavioural tests not run")
    if result.functionality is None:
        # The suite was run and names none of this model's intents (data not Banking77's):
        # there is nothing to check until someone writes examples for them.
        return Check(
            "minimum_functionality",
            True,
            "no examples for any of the model's intents in data/behavioral/: nothing to check "
            "(add examples for your intents to check them)",
        )
    wrong = [f for f in result.failures if f.test == "minimum_functionality"][:3]
    examples = "; ".join(f"'{f.text}' → {f.got} (want {f.expected})" for f in wrong)
    return Check(
        "minimum_functionality",
        result.functionality >= inputs.rules.min_functionality,
        f"{result.functionality:.1%} of {result.functionality_cases} examples right "
        f"(minimum {inputs.rules.min_functionality:.0%})"
        + (f"; e.g. {examples}" if examples else ""),
    )


def check_data_quality(inputs: GateInputs) -> Check:
    """The Evidently data-quality tests on the challenger's training data pass."""
    result = inputs.data_quality
    if result is None:
        return Check("data_quality", False, "data-quality tests not run")
    if result.ok:
        return Check("data_quality", True, f"{len(result.passed)} Evidently tests passed")
    return Check("data_quality", False, "failed: " + "; ".join(result.failed))


CHECKS: tuple[Callable[[GateInputs], Check], ...] = (
    check_accuracy_floor,
    check_beats_baselines,
    check_beats_champion,
    check_no_intent_regression,
    check_recent_feedback,
    check_invariance,
    check_minimum_functionality,
    check_data_quality,
)


def decide_promotion(inputs: GateInputs, live_checks: Sequence[Check] = ()) -> GateDecision:
    """Run every check on the challenger, then append checks judged on live traffic.

    `live_checks` are computed outside this module from the recent window (shadow scoring,
    drift of the challenger's answers): they need stores and servers, the rules here do not.
    """
    checks = [check(inputs) for check in CHECKS]
    return GateDecision(inputs.challenger.version, [*checks, *live_checks])
