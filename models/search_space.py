"""Each candidate's tunable knobs: the ranges the hyper-parameter search (models/search.py) draws
from, and where each value goes in the candidate's unfitted scikit-learn pipeline.

A knob is set with `Pipeline.set_params(**{path: value})` on what `Candidate.build()` returns,
so the factories in models/candidates.py stay as they are; a test checks every path against its
candidate's pipeline. Knob names are the MLflow param names (`C` and `embedding_weight` as the
candidates already log them): a run's params rebuild its model (`models.search.rebuild`).
The design-document forest is a fixed baseline and has no knobs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from optuna.distributions import BaseDistribution

KnobValue = float | int | str


@dataclass(frozen=True)
class Knob:
    """One hyper-parameter: a numeric range (`low`..`high`) or `choices`, and its pipeline path."""

    name: str  # the MLflow param name
    path: str  # the scikit-learn `set_params` key
    low: float = 0.0
    high: float = 0.0
    log: bool = False  # sampled on a log scale (regularisation strengths)
    integer: bool = False
    choices: tuple[str, ...] = ()  # categorical; "none" stands for None
    range_start: int | None = None  # an integer n sets the n-gram range (range_start, n)

    def distribution(self) -> BaseDistribution:
        """The Optuna distribution this knob is sampled from."""
        # Imported on use: the code location imports this table, and optuna costs ~0.5 s.
        from optuna.distributions import (
            CategoricalDistribution,
            FloatDistribution,
            IntDistribution,
        )

        if self.choices:
            return CategoricalDistribution(list(self.choices))
        if self.integer:
            return IntDistribution(int(self.low), int(self.high), log=self.log)
        return FloatDistribution(self.low, self.high, log=self.log)

    def with_range(self, low: float, high: float) -> Knob:
        """The same knob over another numeric range (run config or TRAIN_SEARCH_SPACE)."""
        if self.choices:
            raise ValueError(f"{self.name} is categorical {list(self.choices)}: no range to set")
        if not low <= high or (self.log and low <= 0):
            raise ValueError(f"{self.name}: bad range [{low}, {high}]")
        return Knob(self.name, self.path, low, high, self.log, self.integer, (), self.range_start)

    def pipeline_value(self, value: KnobValue) -> Any:
        """What `set_params` receives for a sampled (or logged) value."""
        if self.range_start is not None:
            return (self.range_start, int(value))
        if self.choices:
            return None if value == "none" else str(value)
        return int(value) if self.integer else float(value)

    def knob_value(self, pipeline_value: Any) -> KnobValue:
        """The knob value a built pipeline holds now (the candidate's declared default)."""
        if self.range_start is not None:
            return int(pipeline_value[1])
        if self.choices:
            return "none" if pipeline_value is None else str(pipeline_value)
        return int(pipeline_value) if self.integer else float(pipeline_value)

    def parse(self, logged: str) -> KnobValue:
        """A value as MLflow logged it (a string) back to its type."""
        if self.choices:
            return logged
        return int(logged) if self.integer else float(logged)

    def admits(self, value: KnobValue) -> bool:
        """Whether `value` lies in this knob's range."""
        if self.choices:
            return value in self.choices
        return self.low <= float(value) <= self.high


def _c(path: str, low: float, high: float) -> Knob:
    return Knob("C", path, low, high, log=True)


def _ngrams(block: str) -> tuple[Knob, Knob]:
    # Word 1..n-grams and char_wb 2..n-grams of features.transformers.word_char_tfidf.
    return (
        Knob("word_ngram_max", f"{block}word__ngram_range", 1, 3, integer=True, range_start=1),
        Knob("char_ngram_max", f"{block}char__ngram_range", 4, 6, integer=True, range_start=2),
    )


def _class_weight(path: str) -> Knob:
    return Knob("class_weight", path, choices=("none", "balanced"))


_EMBEDDING_WEIGHT = Knob("embedding_weight", "features__minilm__weight", 0.5, 4.0)
_SVC = "clf__estimator__"  # LinearSVC inside CalibratedClassifierCV

KNOBS: dict[str, tuple[Knob, ...]] = {
    "tfidf_logreg": (
        _c("clf__C", 1.0, 100.0),
        *_ngrams("features__"),
        _class_weight("clf__class_weight"),
    ),
    "tfidf_linearsvc_calibrated": (
        _c(f"{_SVC}C", 0.05, 5.0),
        *_ngrams("features__"),
        _class_weight(f"{_SVC}class_weight"),
    ),
    "tfidf_minilm_linearsvc": (
        _c(f"{_SVC}C", 0.05, 3.0),
        _EMBEDDING_WEIGHT,
        _class_weight(f"{_SVC}class_weight"),
    ),
    # Its defaults were chosen by 5-fold CV on Banking77 (bench/README.md, "Towards 0.945 top-1
    # (4)" and "(5)"); on new data a budget that allows more than one trial searches the head's
    # weights around them.
    "tfidf_minilm_l3_svc_rbf": (
        _c(f"{_SVC}c", 0.05, 3.0),
        _EMBEDDING_WEIGHT,
        Knob("rbf_weight", f"{_SVC}rbf_weight", 0.05, 0.8),
        Knob("knn_weight", f"{_SVC}knn_weight", 0.0, 4.0),
    ),
    "tfidf_minilm_logreg": (
        _c("clf__C", 1.0, 100.0),
        _EMBEDDING_WEIGHT,
        _class_weight("clf__class_weight"),
    ),
    "tfidf_logreg_dialogue": (_c("clf__C", 1.0, 100.0), _class_weight("clf__class_weight")),
    "tfidf_logreg_message_features": (_c("clf__C", 1.0, 100.0), *_ngrams("features__tfidf__")),
    "design_random_forest": (),
}


def knobs_for(name: str, ranges: dict[str, dict[str, tuple[float, float]]]) -> tuple[Knob, ...]:
    """Candidate `name`'s knobs, numeric ranges replaced where `ranges` names them."""
    overrides = ranges.get(name, {})
    return tuple(
        knob.with_range(*overrides[knob.name]) if knob.name in overrides else knob
        for knob in KNOBS.get(name, ())
    )


def check_ranges(ranges: dict[str, dict[str, tuple[float, float]]]) -> None:
    """ValueError naming the candidate or knob of an override that cannot be used."""
    for name, knobs in ranges.items():
        if name not in KNOBS:
            raise ValueError(f"no search space for candidate {name!r}; known: {sorted(KNOBS)}")
        declared = {knob.name: knob for knob in KNOBS[name]}
        for knob_name, (low, high) in knobs.items():
            if knob_name not in declared:
                raise ValueError(
                    f"candidate {name} has no knob {knob_name!r}; knobs: {sorted(declared)}"
                )
            try:
                declared[knob_name].with_range(low, high)
            except ValueError as problem:
                raise ValueError(f"candidate {name}: {problem}") from None
