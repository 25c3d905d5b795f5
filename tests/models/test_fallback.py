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
