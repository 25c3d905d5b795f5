"""The drift demo's verdict on its own run (pipelines/demo_story.py): it ends as expected only
when drift was seen, the retrained model was held and then promoted on shadow pairs, and the
model trained on damaged labels was refused. Any other ending fails `make drift-demo`.
"""

from __future__ import annotations

from typing import Any

import pytest

from monitoring.metrics import Verdict
from pipelines.demo_story import ended_as_expected

EXPECTED: dict[str, Any] = {
    "verdict": Verdict.DRIFT,
    "retrained": {"model_promotion": {"decided": True, "passed": False, "held": True}},
    "promoted": {"decided": True, "passed": True, "held": False},
    "refused": {"model_promotion": {"decided": True, "passed": False, "held": False}},
}


def test_the_story_ends_as_expected_when_every_step_did_what_it_shows() -> None:
    assert ended_as_expected(**EXPECTED) is True


@pytest.mark.parametrize(
    ("step", "ending"),
    [
        ("verdict", Verdict.OK),
        ("verdict", Verdict.DEGRADED),
        ("retrained", {"model_promotion": {"decided": True, "passed": True, "held": False}}),
        ("retrained", {"model_promotion": {"decided": False}}),
        ("promoted", {"decided": True, "passed": False, "held": True}),
        ("promoted", {"decided": False}),
        ("refused", {"model_promotion": {"decided": True, "passed": True, "held": False}}),
        ("refused", {"model_promotion": {"decided": False}}),
    ],
    ids=[
        "no-drift",
        "degraded-not-drift",
        "retrained-promoted-offline",
        "retrained-not-judged",
        "shadow-not-enough",
        "not-rejudged",
        "damaged-promoted",
        "damaged-not-judged",
    ],
)
def test_any_other_ending_is_a_failed_demo(step: str, ending: Any) -> None:
    assert ended_as_expected(**(EXPECTED | {step: ending})) is False
