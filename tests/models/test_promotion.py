"""The gate: one test per refusing condition, each with its recorded reason."""

from __future__ import annotations

from dataclasses import replace

from models.baselines import BaselineScore
from models.behavioural import BehaviouralFailure, BehaviouralResult
from models.data_quality import DataQualityResult
from models.gate_records import GateInputs, ModelScore, PromotionRules
from models.promotion import decide_promotion

RULES = PromotionRules(min_improvement=0.01, accuracy_floor=0.8, min_feedback_labels=5)
GOOD_BEHAVIOUR = BehaviouralResult(
    {"typo": 0.95, "casing": 0.99, "punctuation": 0.98}, 300, 0.97, 77, []
)
CLEAN_DATA = DataQualityResult(["no missing text"], [])
F1 = {"card_arrival": 0.9, "exchange_rate": 0.8}
SUPPORT = {"card_arrival": 40, "exchange_rate": 40}


def inputs(
    challenger_accuracy: float = 0.92, champion_accuracy: float | None = 0.90, **changes
) -> GateInputs:
    """Inputs that pass every check unless `changes` say otherwise."""
    champion_score = (
        ModelScore("1", champion_accuracy, 0.0, F1, 0.8) if champion_accuracy is not None else None
    )
    base = GateInputs(
        challenger=ModelScore("2", challenger_accuracy, 0.0, F1, 0.85),
        champion=champion_score,
        rules=RULES,
        intent_support=SUPPORT,
        feedback_labels=20,
        behavioural=GOOD_BEHAVIOUR,
        data_quality=CLEAN_DATA,
    )
    return replace(base, **changes)


def failing(decision) -> dict[str, str]:
    return {check.name: check.reason for check in decision.checks if not check.passed}


def test_a_good_challenger_passes_every_check():
    decision = decide_promotion(inputs())
    assert decision.passed, failing(decision)
    assert [c.name for c in decision.checks] == [
        "accuracy_floor",
        "beats_baselines",
        "beats_champion",
        "no_intent_regression",
        "recent_feedback",
        "invariance",
        "minimum_functionality",
        "data_quality",
    ]


def test_first_model_needs_the_floor():
    assert decide_promotion(inputs(0.85, None)).passed
    refused = failing(decide_promotion(inputs(0.75, None)))
    assert list(refused) == ["accuracy_floor"]
    assert "0.7500 < floor 0.8000" in refused["accuracy_floor"]


BASELINES = (
    BaselineScore("majority_class", 0.05, 0.01),
    BaselineScore("word_tfidf_linear", 0.88, 0.8),
)


def test_no_accuracy_floor_applies_unless_configured():
    assert PromotionRules().accuracy_floor is None  # 0.85 is Banking77's setting, not a global


def test_without_a_floor_a_first_model_must_beat_the_run_baselines_by_the_margin():
    rules = replace(RULES, accuracy_floor=None, baseline_margin=0.01)
    assert decide_promotion(inputs(0.90, None, rules=rules, baselines=BASELINES)).passed
    refused = failing(decide_promotion(inputs(0.885, None, rules=rules, baselines=BASELINES)))
    assert list(refused) == ["beats_baselines"]
    reason = refused["beats_baselines"]
    assert "0.8850 < 0.8900" in reason and "word_tfidf_linear 0.8800" in reason
    assert "majority_class 0.0500" in reason and "margin 0.0100" in reason
    # A low accuracy is fine on hard data when it beats what a plain model manages there.
    hard = (
        BaselineScore("majority_class", 0.2, 0.05),
        BaselineScore("word_tfidf_linear", 0.5, 0.4),
    )
    assert decide_promotion(inputs(0.55, None, rules=rules, baselines=hard)).passed


def test_baselines_not_evaluated_refuse_a_first_model_without_a_floor():
    rules = replace(RULES, accuracy_floor=None)
    refused = failing(decide_promotion(inputs(0.99, None, rules=rules)))
    assert refused == {"beats_baselines": "baselines not evaluated"}


def test_a_configured_floor_decides_the_first_model_and_the_reason_shows_the_baselines():
    decision = decide_promotion(inputs(0.85, None, baselines=BASELINES))
    assert decision.passed  # floor 0.8: below the word baseline, but the user's floor decides
    reason = next(c.reason for c in decision.checks if c.name == "beats_baselines")
    assert "word_tfidf_linear 0.8800" in reason and "floor decides" in reason


def test_a_suite_without_examples_for_the_model_intents_has_nothing_to_check():
    unknown = replace(GOOD_BEHAVIOUR, functionality=None, functionality_cases=0)
    decision = decide_promotion(inputs(behavioural=unknown))
    check = next(c for c in decision.checks if c.name == "minimum_functionality")
    assert check.passed and "no examples for any of the model's intents" in check.reason


def test_challenger_must_beat_the_champion_by_the_margin():
    refused = failing(decide_promotion(inputs(0.905, 0.90)))
    assert list(refused) == ["beats_champion"]
    assert "champion v1" in refused["beats_champion"] and "+0.0050" in refused["beats_champion"]


def test_equal_scores_never_promote_even_with_zero_margin():
    rules = replace(RULES, min_improvement=0.0)
    same = ModelScore("2", 0.9, 0.0, F1, 0.8)  # the champion's feedback accuracy too
    assert "beats_champion" in failing(decide_promotion(inputs(0.9, challenger=same, rules=rules)))


def test_a_tie_on_test_with_new_intents_learnt_from_feedback_promotes():
    # Agent labels teaching intents the frozen test split cannot hold (models/examples.py): the
    # challenger ties on test, where those intents never appear, and the feedback split shows
    # what it learnt (the drift demo's v2: 0.9070 both on test, 0.967 vs 0.0 on feedback).
    rules = replace(RULES, min_improvement=0.0)
    learnt = ModelScore("2", 0.9, 0.0, F1, 0.97)
    champion = ModelScore("1", 0.9, 0.0, F1, 0.0)
    decision = decide_promotion(inputs(challenger=learnt, champion=champion, rules=rules))
    assert decision.passed, failing(decision)
    reason = next(c.reason for c in decision.checks if c.name == "beats_champion")
    assert "feedback 0.9700 vs 0.0000" in reason
    # Nothing learnt, or too few labels to tell: a tie still never moves the champion.
    same = replace(learnt, feedback_accuracy=0.0)
    tie = inputs(challenger=same, champion=champion, rules=rules)
    assert list(failing(decide_promotion(tie))) == ["beats_champion"]
    few = inputs(challenger=learnt, champion=champion, rules=rules, feedback_labels=2)
    assert "beats_champion" in failing(decide_promotion(few))
    # A margin asked on test is still asked: a feedback gain does not replace it.
    margin = inputs(challenger=learnt, champion=champion)
    assert list(failing(decide_promotion(margin))) == ["beats_champion"]


def test_a_taught_challenger_may_give_back_a_little_test_accuracy_and_no_more():
    # The drift demo's retrain on current main: two new intents learnt from agent labels, test
    # accuracy 0.9121 against the champion's 0.9125, refused by a strict tie rule.
    rules = replace(RULES, min_improvement=0.0, max_test_loss_when_taught=0.005)
    champion = ModelScore("1", 0.9125, 0.0, F1, 0.0)
    taught = ModelScore("2", 0.9121, 0.0, F1, 0.97)
    new = ("card_delivery_estimate", "crypto_top_up")
    decision = decide_promotion(
        inputs(challenger=taught, champion=champion, rules=rules, new_intents=new)
    )
    assert decision.passed, failing(decision)
    reason = next(c.reason for c in decision.checks if c.name == "beats_champion")
    assert "gain -0.0004" in reason and "required >= -0.0050 since taught card_deli" in reason
    # Beyond the allowance; the same small loss without a feedback gain; or better on feedback
    # with no new intent (then a loss is a loss): refused.
    worse = replace(taught, test_accuracy=0.9070)
    beyond = inputs(challenger=worse, champion=champion, rules=rules, new_intents=new)
    refused = failing(decide_promotion(beyond))
    assert list(refused) == ["beats_champion"] and "gain -0.0055" in refused["beats_champion"]
    untaught = replace(taught, feedback_accuracy=0.0)
    plain = inputs(challenger=untaught, champion=champion, rules=rules, new_intents=new)
    assert list(failing(decide_promotion(plain))) == ["beats_champion"]
    known = inputs(challenger=taught, champion=champion, rules=rules)
    assert list(failing(decide_promotion(known))) == ["beats_champion"]


def test_an_intent_that_loses_too_much_f1_refuses():
    worse = ModelScore("2", 0.95, 0.0, {"card_arrival": 0.5, "exchange_rate": 0.85}, 0.85)
    refused = failing(decide_promotion(inputs(challenger=worse)))
    assert list(refused) == ["no_intent_regression"]
    assert "card_arrival −0.400" in refused["no_intent_regression"]
    rare = inputs(challenger=worse, intent_support={"card_arrival": 3, "exchange_rate": 40})
    assert decide_promotion(rare).passed  # too few test examples to judge that intent


def test_worse_on_recent_feedback_refuses():
    worse = ModelScore("2", 0.95, 0.0, F1, 0.6)
    refused = failing(decide_promotion(inputs(challenger=worse)))
    assert list(refused) == ["recent_feedback"]
    assert "0.6000 vs champion 0.8000" in refused["recent_feedback"]
    assert decide_promotion(inputs(challenger=worse, feedback_labels=2)).passed


def test_fragile_predictions_refuse():
    fragile = replace(GOOD_BEHAVIOUR, invariance={"typo": 0.6, "casing": 0.99, "punctuation": 0.9})
    refused = failing(decide_promotion(inputs(behavioural=fragile)))
    assert list(refused) == ["invariance"] and "typo 60.0%" in refused["invariance"]


def test_missing_minimum_functionality_refuses():
    failures = [
        BehaviouralFailure(
            test="minimum_functionality",
            text="I lost my card",
            expected="lost_or_stolen_card",
            got="card_arrival",
        )
    ]
    weak = replace(GOOD_BEHAVIOUR, functionality=0.5, failures=failures)
    refused = failing(decide_promotion(inputs(behavioural=weak)))
    assert list(refused) == ["minimum_functionality"]
    assert "50.0% of 77" in refused["minimum_functionality"]
    assert "'I lost my card' → card_arrival" in refused["minimum_functionality"]


def test_bad_training_data_refuses():
    dirty = DataQualityResult([], ["Column 'text' missing values: Actual value 3"])
    refused = failing(decide_promotion(inputs(data_quality=dirty)))
    assert list(refused) == ["data_quality"] and "missing values" in refused["data_quality"]


def test_checks_not_evaluated_do_not_pass():
    bare = GateInputs(ModelScore("2", 0.95, 0.9), ModelScore("1", 0.9, 0.9), RULES)
    refused = failing(decide_promotion(bare))
    assert set(refused) >= {
        "no_intent_regression",
        "invariance",
        "minimum_functionality",
        "data_quality",
    }


def test_decision_has_the_documented_shape():
    document = decide_promotion(inputs()).to_dict()
    assert set(document) == {"version", "passed", "checks"}
    assert all(set(check) == {"name", "passed", "reason"} for check in document["checks"])
