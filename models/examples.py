"""Turning validated conversations into labelled training examples.

Each labelled customer message is an example, with its context: in a dialogue the same words
("yes please") carry different intents in different conversations, so equal texts of different
messages are different examples. Relabels of one message collapse to one example: a message is
its `message_id`, except a message that is its conversation's only one (a labelled-CSV row, a
label posted with just a text): it has nothing but its text, so equal standalone texts are one
utterance, and a text-only correction relabels the seed utterance it repeats.

Which label may be used where depends on its trust level (conversations.schema.LabelTrust):

- The frozen test split, on which the gate scores every model, takes its truth only from
  `curated` (data-set) and `reviewed` (operator-confirmed) labels.
- Agent labels on test-split texts are held out in their own `feedback` split: never trained on,
  never the test split's truth, scored by the gate's recent-feedback check.
- Train and validation texts take the winning label among curated, service, agent and reviewed.
- `unverified` labels (stored before trust levels existed) are kept in the store, never used.

Splits go by normalised text (models/splits.py): every example of a text is in the same split,
so a text in test is never trained on under another message id.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from conversations.schema import TRUST_RANK, LabelTrust, Speaker, normalise_text
from features.dialogue import conversation_contexts
from models.splits import FEEDBACK, TEST, assign_splits, text_bucket

EXAMPLE_COLUMNS = (
    "message_id",
    "text",
    "context",
    "ts",
    "intent",
    "label_source",
    "label_trust",
    "split",
)
TEST_TRUTH = frozenset({LabelTrust.CURATED.value, LabelTrust.REVIEWED.value})
FEEDBACK_TRUST = frozenset({LabelTrust.AGENT.value})
TRAINING_TRUST = frozenset(
    {
        LabelTrust.CURATED.value,
        LabelTrust.SERVICE.value,
        LabelTrust.AGENT.value,
        LabelTrust.REVIEWED.value,
    }
)


def conversation_sizes(conversations: pd.DataFrame) -> np.ndarray:
    """Each row's number of messages in its conversation (1 for a row without an id).

    Integer codes, not `value_counts` of the ids: ~0.1 s instead of ~1 s on a 1M-row union.
    """
    codes, _ = pd.factorize(conversations["conversation_id"].to_numpy(dtype=object))
    counts = np.bincount(codes[codes >= 0])
    return np.where(codes >= 0, counts[np.maximum(codes, 0)] if len(counts) else 1, 1)


def example_keys(labelled: pd.DataFrame, sizes: np.ndarray | None) -> pd.Series:
    """What identifies each labelled message as an example (relabels share a key).

    A turn of a conversation with other messages (any speaker) is its message id; a message
    that is its conversation's only one is its normalised text. `sizes`: each labelled row's
    conversation size (`conversation_sizes`); None for a bare frame of utterances.
    """
    if sizes is None:  # a bare frame of utterances: all standalone
        return "text:" + labelled["text_key"]
    alone = sizes <= 1
    by_text = "text:" + labelled["text_key"]
    by_message = "message:" + labelled["message_id"].astype(str)
    return by_text.where(alone, by_message)


def per_distinct(values: pd.Series, function: Callable[[Any], Any]) -> pd.Series:
    """`values.map(function)`, calling `function` once per distinct value (texts repeat a lot)."""
    if values.empty:  # keeps the dtype `map` gives (a mapping of nothing would give float)
        return values.map(function)
    distinct = values.unique()
    return values.map(dict(zip(distinct, map(function, distinct), strict=True)))


def _labelled(conversations: pd.DataFrame) -> pd.DataFrame:
    chosen = (
        (conversations["speaker"] == Speaker.CUSTOMER.value) & conversations["intent"].notna()
    ).to_numpy()
    labelled = conversations[chosen].copy()
    has_ids = "conversation_id" in conversations
    sizes = conversation_sizes(conversations)[chosen] if has_ids else None
    if "label_trust" not in labelled:  # frames written before trust levels existed
        labelled["label_trust"] = LabelTrust.UNVERIFIED.value
    labelled["label_trust"] = labelled["label_trust"].fillna(LabelTrust.UNVERIFIED.value)
    labelled["text_key"] = per_distinct(labelled["text"].astype(str), normalise_text)
    labelled["example_key"] = example_keys(labelled, sizes)
    labelled["position"] = range(len(labelled))
    return labelled


def _winning(labelled: pd.DataFrame, allowed: frozenset[str]) -> pd.DataFrame:
    """Per example, the most trusted of the `allowed` labels, then the newest."""
    usable = labelled[labelled["label_trust"].isin(allowed)]
    # A key held by one label wins as it is: only repeated keys are ranked (in the union, where
    # message ids are unique, that is the standalone texts; the sort was ~1.5 s of CPU at 1M).
    repeated = usable["example_key"].duplicated(keep=False).to_numpy()
    if not repeated.any():
        return usable
    contested = usable[repeated].assign(
        rank=lambda rows: rows["label_trust"].map(TRUST_RANK),
        order_ts=lambda rows: rows["ts"].fillna(pd.Timestamp(0, tz="UTC")),
    )
    winners = (
        contested.sort_values(["example_key", "rank", "order_ts", "position"])
        .groupby("example_key", sort=False)
        .tail(1)
        .drop(columns=["rank", "order_ts"])
    )
    return pd.concat([usable[~repeated], winners])


def in_frozen_test(
    labelled: pd.DataFrame, test_fraction: float, test_sources: frozenset[str]
) -> pd.Series:
    """Whether each labelled row's text is in the frozen test split.

    A text is: by its hash (`test_fraction`), or because some row of it comes from one of
    `test_sources` (rows' `source` lineage names, e.g. `official_test/test.csv`): a declared
    test file is test whole, and its texts are never trained on, whichever file repeats them.
    """
    in_test = per_distinct(labelled["text_key"], text_bucket) < test_fraction
    if test_sources and "source" in labelled:
        declared = labelled.loc[labelled["source"].isin(test_sources), "text_key"]
        in_test |= labelled["text_key"].isin(declared.unique())
    return in_test


def labelled_customer_turns(
    conversations: pd.DataFrame,
    test_fraction: float,
    test_sources: frozenset[str] = frozenset(),
) -> pd.DataFrame:
    """One example per labelled customer message and use, with `split` set for test texts.

    Test-split texts (`in_frozen_test`) get `split` = test (curated/reviewed truth) or feedback
    (agent labels); the rest get their winning label and no split yet.
    """
    labelled = _labelled(conversations)
    in_test = in_frozen_test(labelled, test_fraction, test_sources)
    truth = _winning(labelled[in_test], TEST_TRUTH).assign(split=TEST)
    feedback = _winning(labelled[in_test], FEEDBACK_TRUST).assign(split=FEEDBACK)
    rest = _winning(labelled[~in_test], TRAINING_TRUST).assign(split=None)
    chosen = pd.concat([truth, feedback, rest]).sort_values("position")
    return chosen.drop(columns=["example_key", "position"])


def build_training_examples(
    conversations: pd.DataFrame,
    test_fraction: float,
    validation_fraction: float,
    seed: int,
    contexts: pd.Series | None = None,
    test_sources: frozenset[str] = frozenset(),
) -> pd.DataFrame:
    """Labelled customer turns with frozen-test / feedback / stratified-validation splits.

    `contexts`, when given, are the rows' contexts as `conversation_contexts` fills them (at
    least on labelled customer turns; pipelines/example_contexts.py keeps them between runs).
    `test_sources`: files whose texts are all test (`in_frozen_test`; `make evaluate` declares the
    official test file and sets `test_fraction` 0, so every other example trains or validates).
    `unsplit_examples` then `draw_validation`: a caller that may not train can stop between them.
    """
    examples = unsplit_examples(conversations, test_fraction, contexts, test_sources)
    return draw_validation(examples, test_fraction, validation_fraction, seed)


def unsplit_examples(
    conversations: pd.DataFrame,
    test_fraction: float,
    contexts: pd.Series | None = None,
    test_sources: frozenset[str] = frozenset(),
) -> pd.DataFrame:
    """The examples before the validation draw: test and feedback rows have their split, the
    rest none yet; plus a `text_key` column (the normalised text) the draw reads.

    Their message ids, texts, contexts and intents are final: what the retrain rule compares
    (models/retraining.py, `ExampleIndex`) is known here, without scikit-learn.
    """
    if contexts is not None:
        conversations = conversations.assign(context=contexts)
    elif {"conversation_id", "turn", "context"} <= set(conversations.columns):
        # Each turn's context says what came before it (features/dialogue.py).
        conversations = conversations.assign(context=conversation_contexts(conversations))
    examples = labelled_customer_turns(conversations, test_fraction, test_sources)
    examples = examples.reset_index(drop=True)
    examples["text"] = examples["text"].astype(str)
    examples["intent"] = examples["intent"].astype(str)
    return examples


def draw_validation(
    examples: pd.DataFrame, test_fraction: float, validation_fraction: float, seed: int
) -> pd.DataFrame:
    """`unsplit_examples` with train or validation on the rest, in `EXAMPLE_COLUMNS`.

    Validation is drawn by text, like test: one stratified draw over the distinct texts (each
    standing for the label of its first example), so all examples of a text share a split and
    validation never scores a text the model trained on. With each text once (Banking77) this
    is the draw over the examples themselves.
    """
    rest = examples["split"].isna().to_numpy()
    if rest.any():
        examples = examples.copy()
        pending = examples.loc[rest]
        first = pending.drop_duplicates("text_key")
        by_text = assign_splits(
            first["text"].tolist(),
            first["intent"].tolist(),
            test_fraction=test_fraction,
            validation_fraction=validation_fraction,
            seed=seed,
        )
        chosen = dict(zip(first["text_key"], by_text, strict=True))
        examples.loc[rest, "split"] = pending["text_key"].map(chosen).to_numpy()
    return examples.loc[:, list(EXAMPLE_COLUMNS)]
