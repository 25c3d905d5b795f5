import numpy as np

from models.fallback import FallbackPolicy, choose_fallback_policy


def test_policy_flags_low_confidence_and_ambiguity():
    policy = FallbackPolicy(threshold=0.5, margin=0.1)
    probabilities = np.array([[0.9, 0.1, 0.0], [0.4, 0.3, 0.3], [0.52, 0.46, 0.02]])
    assert policy.is_fallback(probabilities).tolist() == [False, True, True]


def test_chosen_policy_stays_within_the_accuracy_budget():
    rng = np.random.default_rng(0)
    confidence = rng.uniform(0.2, 1.0, 2000)
    correct = rng.uniform(size=2000) < confidence  # confident answers are right more often
    probabilities = np.column_stack([confidence, 1 - confidence])
    policy = choose_fallback_policy(probabilities, correct, accuracy_budget=0.02)
    answered = ~policy.is_fallback(probabilities)
    assert (correct & answered).mean() >= correct.mean() - 0.02
    assert policy.threshold > 0.2 and policy.validation_answered_accuracy > correct.mean()


def test_a_small_perfect_validation_split_still_gets_a_threshold():
    # 23 rows, all right: the lowest quantile threshold must not drop its own row (a rounding
    # up once cost 1/23 of accuracy, over the budget, and left the model with no threshold).
    confidence = np.array([0.86170213, 0.65895613, 0.97723124] + [0.95] * 20)
    probabilities = np.column_stack([confidence, 1 - confidence])
    policy = choose_fallback_policy(probabilities, np.ones(23, dtype=bool), accuracy_budget=0.02)
    assert 0 < policy.threshold <= confidence.min()
    assert not policy.is_fallback(probabilities).any()
