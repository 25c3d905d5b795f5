from models.promotion import GateInputs, ModelScore, PromotionRules, decide_promotion

RULES = PromotionRules(min_improvement=0.01, accuracy_floor=0.8)


def _decide(challenger: float, champion: float | None):
    champion_score = ModelScore("1", champion, 0.0) if champion is not None else None
    return decide_promotion(GateInputs(ModelScore("2", challenger, 0.0), champion_score, RULES))


def test_first_model_needs_the_floor():
    assert _decide(0.85, None).passed
    refused = _decide(0.75, None)
    assert not refused.passed
    assert [c.name for c in refused.checks if not c.passed] == ["accuracy_floor"]
    assert "0.7500 < floor 0.8000" in refused.checks[0].reason


def test_challenger_must_beat_the_champion_by_the_margin():
    assert _decide(0.92, 0.90).passed
    refused = _decide(0.905, 0.90)
    failing = [c for c in refused.checks if not c.passed]
    assert [c.name for c in failing] == ["beats_champion"]
    assert "champion v1" in failing[0].reason and "+0.0050" in failing[0].reason


def test_equal_scores_never_promote_even_with_zero_margin():
    rules = PromotionRules(min_improvement=0.0, accuracy_floor=0.5)
    same = decide_promotion(GateInputs(ModelScore("2", 0.9, 0.9), ModelScore("1", 0.9, 0.9), rules))
    assert not same.passed


def test_decision_has_the_documented_shape():
    document = _decide(0.95, 0.9).to_dict()
    assert set(document) == {"version", "passed", "checks"}
    assert all(set(check) == {"name", "passed", "reason"} for check in document["checks"])
