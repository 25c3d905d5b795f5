"""A real context-aware model trained on the generated dialogues, and a bot that speaks them."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import yaml

from conversations.readers import read_conversation_jsonl
from conversations.validation import validate_messages
from models.examples import build_training_examples
from models.training import TrainingOutcome
from serving.chat.settings import REPO_ROOT
from tests.conftest import trained
from tests.dialogues import NEEDS, write_dialogues

OPENINGS = {"lost": "i lost my card yesterday", "refund": "i want my money back for the shoes"}
AGREED = {"lost": "confirm_block", "refund": "confirm_refund"}


def dialogue_examples(folder: Path, conversations: int = 600) -> pd.DataFrame:
    """tests/dialogues.py's corpus as the pipeline's training examples."""
    path = folder / "dialogues.jsonl"
    write_dialogues(path, conversations=conversations)
    kept = validate_messages(read_conversation_jsonl(path), 2000).kept
    return build_training_examples(kept, test_fraction=0.2, validation_fraction=0.1, seed=0)


def train_dialogue_model(examples: pd.DataFrame) -> TrainingOutcome:
    """`tfidf_logreg_dialogue` fitted on the examples' training split (once a run: `trained`)."""
    splits = [examples[examples["split"] == s] for s in ("train", "validation", "test")]
    return trained("tfidf_logreg_dialogue", splits)


def dialogue_catalogue(folder: Path) -> Path:
    """The bot says what the corpus's bot says: each need's offer, then "Done"."""
    replies = yaml.safe_load((REPO_ROOT / "data" / "responses.yaml").read_text("utf-8"))
    replies |= {need.intent: [need.offer] for need in NEEDS}
    replies |= {need.agree: ["Done. Anything else?"] for need in NEEDS}
    path = folder / "responses.yaml"
    path.write_text(yaml.safe_dump(replies), encoding="utf-8")
    return path
