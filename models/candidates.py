"""The declared search space: each candidate is a scikit-learn pipeline over a DataFrame with a
`text` column (and optionally `context`/`ts`), so the logged model takes exactly what serving has.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

from features.dialogue_tokens import DialogueTokens
from features.embeddings import MINILM, SentenceEmbeddings
from features.paraphrase import ParaphraseEmbeddings
from features.transformers import MessageFeatures, word_char_tfidf
from models.inputs import MODEL_INPUT_COLUMNS
from models.linear_rbf import LinearRbfClassifier
from models.selection import FitCost

TEXT_ONLY = ("text",)


@dataclass(frozen=True)
class Candidate:
    """A named model configuration and the factory that builds it unfitted."""

    name: str
    description: str
    params: dict[str, Any]  # hyper-parameters, logged as MLflow params
    build: Callable[[], Pipeline] = field(repr=False)
    # How its fit time grows with the data: the search skips it when it would overrun its budget.
    cost: FitCost = field(default_factory=FitCost)
    # Reads the conversation context (features/dialogue.py): not fitted on data that has none.
    uses_context: bool = False
    # Its probabilities are calibrated by the pipeline itself (CalibratedClassifierCV): no
    # temperature is fitted on top (models/calibration.py).
    calibrated: bool = False
    # The input columns its pipeline reads: rows equal in these (and in the intent) are fitted
    # once, weighted by their count (models/weighted_examples.py). All of them unless declared.
    reads: tuple[str, ...] = MODEL_INPUT_COLUMNS


def _logreg(c: float = 30.0) -> Pipeline:
    return Pipeline(
        [("features", word_char_tfidf()), ("clf", LogisticRegression(C=c, max_iter=3000))]
    )


def _linearsvc_calibrated(c: float = 1.0) -> Pipeline:
    # One calibrated model (ensemble=False, a single temperature) rather than
    # CalibratedClassifierCV's default five fitted copies (36–94 ms per single prediction).
    calibrated = CalibratedClassifierCV(LinearSVC(C=c), method="temperature", ensemble=False, cv=3)
    return Pipeline([("features", word_char_tfidf()), ("clf", calibrated)])


def _tfidf_minilm(weight: float) -> ColumnTransformer:
    # Sentence embeddings beside the TF-IDF blocks (features/embeddings.py); each block's rows
    # are unit vectors, so `weight` is the embeddings' share (2 chosen by CV, bench/README.md).
    features = word_char_tfidf()
    features.transformers.append(("minilm", SentenceEmbeddings(weight=weight), "text"))
    return features


def _tfidf_minilm_linearsvc(
    c: float = 0.3, weight: float = 2.0, class_weight: str | None = None
) -> Pipeline:
    svc = LinearSVC(C=c, class_weight=class_weight)
    calibrated = CalibratedClassifierCV(svc, method="temperature", ensemble=False, cv=3)
    return Pipeline([("features", _tfidf_minilm(weight)), ("clf", calibrated)])


def _tfidf_minilm_l3_svc_rbf(
    c: float = 0.3,
    rbf_c: float = 10.0,
    gamma: float = 1.0,
    rbf_weight: float = 0.2,
    knn_weight: float = 2.0,
) -> Pipeline:
    # Both sentence views after the TF-IDF blocks: the head's RBF part reads those trailing
    # columns, each block as wide as its encoder (models/linear_rbf.py checks the layout).
    features = _tfidf_minilm(2.0)
    paraphrase = ParaphraseEmbeddings(weight=1.0)
    features.transformers.append(("l3", paraphrase, "text"))
    views = [t for _, t, _ in features.transformers if isinstance(t, SentenceEmbeddings)]
    head = LinearRbfClassifier(
        c=c,
        rbf_c=rbf_c,
        gamma=gamma,
        rbf_weight=rbf_weight,
        rbf_blocks=tuple(view.spec.dimensions for view in views),
        knn_weight=knn_weight,
        knn_block=[view.spec for view in views].index(MINILM),  # neighbours by MiniLM
    )
    calibrated = CalibratedClassifierCV(head, method="temperature", ensemble=False, cv=3)
    return Pipeline([("features", features), ("clf", calibrated)])


def _tfidf_minilm_logreg(
    c: float = 30.0, weight: float = 2.0, class_weight: str | None = None
) -> Pipeline:
    logreg = LogisticRegression(C=c, class_weight=class_weight, max_iter=3000)
    return Pipeline([("features", _tfidf_minilm(weight)), ("clf", logreg)])


def _design_random_forest() -> Pipeline:
    # The design document's configuration, kept as the baseline every model must beat
    # (including its stop-word removal, which costs several points on intents).
    tfidf = TfidfVectorizer(max_features=5000, ngram_range=(1, 2), stop_words="english", min_df=5)
    forest = RandomForestClassifier(
        n_estimators=100, class_weight="balanced", random_state=42, n_jobs=-1
    )
    return Pipeline([("features", ColumnTransformer([("tfidf", tfidf, "text")])), ("clf", forest)])


def _logreg_dialogue(c: float = 30.0) -> Pipeline:
    # The text's TF-IDF plus tokens of the turn's place in its conversation (previous intents,
    # the bot's last message, turn, text words paired with them): features/dialogue.py.
    dialogue = Pipeline(
        [
            ("tokens", DialogueTokens()),
            (
                "tfidf",
                TfidfVectorizer(token_pattern=r"\S+", lowercase=False, sublinear_tf=True, min_df=2),
            ),
        ]
    )
    features = word_char_tfidf()
    features.transformers.append(("dialogue", dialogue, ["text", "context"]))
    return Pipeline([("features", features), ("clf", LogisticRegression(C=c, max_iter=3000))])


def _logreg_message_features(c: float = 30.0) -> Pipeline:
    union = FeatureUnion(
        [
            ("tfidf", word_char_tfidf()),
            ("message", Pipeline([("extract", MessageFeatures()), ("scale", StandardScaler())])),
        ]
    )
    return Pipeline([("features", union), ("clf", LogisticRegression(C=c, max_iter=3000))])


SEARCH_SPACE: dict[str, Candidate] = {
    candidate.name: candidate
    for candidate in (
        Candidate(
            "tfidf_logreg",
            "word 1-2g + char_wb 2-5g TF-IDF, LogisticRegression(C=30)",
            {"features": "tfidf_word_char", "classifier": "logistic_regression", "C": 30.0},
            _logreg,
            FitCost(seconds_per_1k=2.9),  # 25.9 s on Banking77's 9,113 (bench/README.md)
            reads=TEXT_ONLY,
        ),
        Candidate(
            "tfidf_linearsvc_calibrated",
            "word 1-2g + char_wb 2-5g TF-IDF, LinearSVC(C=1) with temperature calibration",
            {"features": "tfidf_word_char", "classifier": "linear_svc_temperature", "C": 1.0},
            _linearsvc_calibrated,
            FitCost(seconds_per_1k=2.0),  # 18.2 s on Banking77
            calibrated=True,
            reads=TEXT_ONLY,
        ),
        Candidate(
            "tfidf_minilm_linearsvc",
            "word 1-2g + char_wb 2-5g TF-IDF ⊕ all-MiniLM-L6-v2 embeddings × 2, LinearSVC(C=0.3) "
            "with temperature calibration",
            {
                "features": "tfidf_word_char+minilm",
                "classifier": "linear_svc_temperature",
                "C": 0.3,
                "embedding_weight": 2.0,
            },
            _tfidf_minilm_linearsvc,
            # Per 1k examples: encoding ~7.2 CPU s (once per text and process) + fit 3.9 s
            # (38.8 s on Banking77's 10,003 train.csv texts, bench/README.md).
            FitCost(seconds_per_1k=11.0),
            calibrated=True,
            reads=TEXT_ONLY,
        ),
        Candidate(
            "tfidf_minilm_l3_svc_rbf",
            "word 1-2g + char_wb 2-5g TF-IDF ⊕ all-MiniLM-L6-v2 × 2 ⊕ paraphrase-MiniLM-L3 × 1, "
            "LinearSVC(C=0.3) + 0.2 × RBF SVC(C=10, gamma=1) on the two embeddings + 2 × "
            "per-intent nearest MiniLM cosine, with temperature calibration",
            {
                "features": "tfidf_word_char+minilm+l3",
                "classifier": "linear_svc+rbf_svc_temperature",
                "C": 0.3,
                "rbf_C": 10.0,
                "gamma": 1.0,
                "rbf_weight": 0.2,
                "knn_weight": 2.0,
            },
            _tfidf_minilm_l3_svc_rbf,
            # Estimate per 1k: encoding ~7.2 + ~2.6 CPU s, linear fits ~5, RBF fits ~4.5.
            FitCost(seconds_per_1k=19.0),
            calibrated=True,
            reads=TEXT_ONLY,
        ),
        Candidate(
            "tfidf_minilm_logreg",
            "word 1-2g + char_wb 2-5g TF-IDF ⊕ all-MiniLM-L6-v2 embeddings × 2, "
            "LogisticRegression(C=30)",
            {
                "features": "tfidf_word_char+minilm",
                "classifier": "logistic_regression",
                "C": 30.0,
                "embedding_weight": 2.0,
            },
            _tfidf_minilm_logreg,
            FitCost(seconds_per_1k=12.0),  # encoding ~7.2 + fit 4.7 CPU s per 1k
            reads=TEXT_ONLY,
        ),
        Candidate(
            "design_random_forest",
            "design document baseline: TF-IDF(5k, 1-2g, English stop words) + RandomForest(100)",
            {"features": "tfidf_5k_stopwords", "classifier": "random_forest", "n_estimators": 100},
            _design_random_forest,
            # 4.9 s on Banking77, but fully grown trees grow faster than the data (issue 15).
            FitCost(seconds_per_1k=0.18, exponent=1.5),
            reads=TEXT_ONLY,
        ),
        Candidate(
            "tfidf_logreg_dialogue",
            "tfidf_logreg plus conversation context tokens (previous intents, the bot's last "
            "message, turn position, text words paired with them)",
            {
                "features": "tfidf_word_char+dialogue",
                "classifier": "logistic_regression",
                "C": 30.0,
            },
            _logreg_dialogue,
            FitCost(seconds_per_1k=3.5),
            uses_context=True,
        ),
        Candidate(
            "tfidf_logreg_message_features",
            "tfidf_logreg plus scaled message features (stats, sentiment, spaCy, context)",
            {"features": "tfidf_word_char+message", "classifier": "logistic_regression", "C": 30.0},
            _logreg_message_features,
            FitCost(seconds_per_1k=9.0),  # spaCy over every example: ~55 s per 13k
        ),
    )
}
# In order of priority: under the selection budget the later ones are the first skipped.
# tfidf_logreg_dialogue competes only on data with conversation context (multi-turn).
# The light profile (TRAIN_MODEL_PROFILE=light, models/candidate_profile.py): TF-IDF only.
LIGHT_CANDIDATES: tuple[str, ...] = (
    "tfidf_logreg",
    "tfidf_logreg_dialogue",
    "tfidf_linearsvc_calibrated",
    "design_random_forest",
)
# Default: both sentence encoders and the linear + RBF head (bench/README.md, "Towards 0.945
# top-1 (5)"); tfidf_minilm_linearsvc (MiniLM only, linear) stays available by name.
DEFAULT_CANDIDATES: tuple[str, ...] = ("tfidf_minilm_l3_svc_rbf", *LIGHT_CANDIDATES)


def resolve(names: list[str] | tuple[str, ...]) -> list[Candidate]:
    """The candidates named, failing with the known names when one is unknown."""
    unknown = [name for name in names if name not in SEARCH_SPACE]
    if unknown:
        raise ValueError(
            f"unknown model candidates {unknown}; known: {', '.join(sorted(SEARCH_SPACE))}"
        )
    if not names:
        raise ValueError("at least one model candidate is required")
    return [SEARCH_SPACE[name] for name in names]
