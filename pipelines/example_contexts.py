"""The filled contexts of labelled turns, kept per conversation between training runs.

Each labelled customer turn's context says what came before it in its conversation
(`features.dialogue.conversation_contexts`: a pass over every row, ~3.6 s of CPU at 1M
messages). A turn's filled context depends only on its own conversation's rows, so a run keeps
those of the conversations whose rows did not change since the last build and fills the rest:
after 1 % more messages, ~1 % of the conversations.

What is kept (`<lake>/example_contexts/contexts-<code>.parquet`): each labelled turn's filled
context by message id, with its conversation's digest (`ConversationDigests`: a 64-bit hash of
the conversation's rows in their order, every column but provenance). A conversation is reused
only when every labelled turn of it was kept with the digest it has now, by the same context
code (`context_code`, a digest of the source of features/dialogue.py and dialogue_state.py);
anything else (nothing kept, an unreadable file, a frame whose message ids repeat) fills every
context as before. The
result equals `conversation_contexts` on every labelled customer turn
(tests/pipelines/test_example_contexts.py).
"""

from __future__ import annotations

import hashlib
import inspect
import logging
from dataclasses import dataclass
from functools import cache

import numpy as np
import pandas as pd
from upath import UPath

from conversations.schema import Speaker
from features import dialogue, dialogue_state
from models.location import read_parquet, refreshed, remove_tree, write_parquet
from pipelines.example_inputs import InputRows

logger = logging.getLogger(__name__)
FOLDER = "example_contexts"


@cache
def context_code() -> str:
    """Digest of the code that fills contexts: a change there invalidates every kept context
    (features/dialogue.py, and the session keys it writes, from features/dialogue_state.py)."""
    source = inspect.getsource(dialogue) + inspect.getsource(dialogue_state)
    return hashlib.sha256(source.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class ContextReuse:
    """How many conversations with labelled turns were filled again, and how many reused."""

    filled: int
    reused: int
    reason: str  # why nothing was reused, or "" when the store was used

    def describe(self) -> str:
        """One line for the run's log."""
        if self.reason:
            return f"contexts of all {self.filled} labelled conversations filled: {self.reason}"
        return (
            f"contexts of {self.filled} changed or new labelled conversations filled, "
            f"{self.reused} reused"
        )


@dataclass(frozen=True)
class ConversationDigests:
    """Per conversation id of the input rows, a 64-bit digest of its rows in their order.

    `codes` gives each input row's conversation (its position in `ids`; -1: no id).
    """

    ids: np.ndarray
    digests: np.ndarray  # uint64, one per id
    codes: np.ndarray

    @classmethod
    def of(cls, inputs: InputRows) -> ConversationDigests:
        """The digests of the input rows' conversations (integer codes: no string groupby)."""
        codes, ids = pd.factorize(inputs.rows["conversation_id"].to_numpy(dtype=object))
        has_id = codes >= 0
        order = np.argsort(codes[has_id], kind="stable")
        sizes = np.bincount(codes[has_id], minlength=len(ids))
        starts = np.cumsum(sizes) - sizes  # each conversation's first place in `order`
        # Each row's place in its conversation, mixed into its hash: the same rows in another
        # order can fill other contexts (turns that tie are taken in row order).
        place = np.empty(len(order), dtype=np.int64)
        place[order] = np.arange(len(order)) - np.repeat(starts, sizes)
        mixed = pd.util.hash_pandas_object(
            pd.DataFrame({"row": inputs.hashes[has_id], "place": place}), index=False
        ).to_numpy()
        # uint64 sums wrap; the size is mixed in too.
        sums = np.add.reduceat(mixed[order], starts) if len(order) else mixed[:0]
        return cls(np.asarray(ids, dtype=object), sums ^ sizes.astype(np.uint64), codes)

    def __len__(self) -> int:
        return len(self.ids)


@dataclass(frozen=True)
class KeptContexts:
    """What the last build kept: per labelled turn, its context and its conversation's digest."""

    message_ids: pd.Index
    contexts: np.ndarray
    digests: np.ndarray  # uint64


@dataclass(frozen=True)
class ContextStore:
    """The kept contexts: one Parquet file under `<lake>/example_contexts/`, named by the
    context code (a file of other code is never read)."""

    root: UPath

    def path(self) -> UPath:
        """This context code's file."""
        return self.root / FOLDER / f"contexts-{context_code()}.parquet"

    def load(self) -> KeptContexts | None:
        """What the last build kept, or None (nothing kept by this code, or unreadable)."""
        try:
            frame = read_parquet(refreshed(self.root / FOLDER) / self.path().name)
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as error:  # a torn write: fill every context
            logger.warning("kept contexts unreadable, filling all: %s", error)
            return None
        return KeptContexts(
            pd.Index(frame["message_id"].to_numpy(object)),
            frame["context"].to_numpy(object),
            frame["digest"].to_numpy(np.uint64),
        )

    def save(self, message_ids: np.ndarray, contexts: np.ndarray, digests: np.ndarray) -> None:
        """Keep this build's labelled turns (every turn carries its conversation's digest, so
        a turn is reused only with the content it was filled from)."""
        folder = self.root / FOLDER
        remove_tree(folder)  # files of other context code
        folder.mkdir(parents=True, exist_ok=True)
        frame = pd.DataFrame({"message_id": message_ids, "context": contexts, "digest": digests})
        write_parquet(frame, self.path())


def filled_contexts(
    conversations: pd.DataFrame, inputs: InputRows, store: ContextStore | None
) -> tuple[pd.Series | None, ContextReuse]:
    """Each row's context, labelled customer turns' filled as `conversation_contexts` fills
    them (other rows may keep their stored context: examples read only labelled turns).

    None for a frame without the dialogue columns: its contexts are used as they are.
    """
    if not {"conversation_id", "turn", "context"} <= set(conversations.columns):
        return None, ContextReuse(0, 0, "no dialogue columns")
    if store is None:
        return dialogue.conversation_contexts(conversations), ContextReuse(0, 0, "no store")
    if conversations["message_id"].duplicated().any() or not conversations.index.is_unique:
        return dialogue.conversation_contexts(conversations), ContextReuse(0, 0, "repeated ids")
    rows = inputs.rows
    labelled = ((rows["speaker"] == Speaker.CUSTOMER.value) & rows["intent"].notna()).to_numpy()
    current = ConversationDigests.of(inputs)
    message_ids = rows["message_id"].to_numpy(object)
    result = conversations["context"].astype(object)
    unchanged, reason = _reuse(current, labelled, message_ids, store.load(), result, rows.index)
    # The other input rows: their conversation changed, is new, or has no id.
    fill = rows.index[~unchanged]
    result.loc[fill] = dialogue.conversation_contexts(conversations.loc[fill]).to_numpy()
    keep = labelled & (current.codes >= 0)
    store.save(
        message_ids[keep],
        result.loc[rows.index[keep]].to_numpy(),
        current.digests[current.codes[keep]],
    )
    reused = len(np.unique(current.codes[unchanged]))
    return result, ContextReuse(len(current) - reused, reused, reason)


def _reuse(
    current: ConversationDigests,
    labelled: np.ndarray,
    message_ids: np.ndarray,
    kept: KeptContexts | None,
    result: pd.Series,
    labels: pd.Index,
) -> tuple[np.ndarray, str]:
    """Set the kept contexts of unchanged conversations' labelled turns in `result`.

    A conversation is unchanged when each of its labelled turns was kept with the digest the
    conversation has now. Returns which input rows belong to an unchanged conversation, and
    why none do ("" when the kept contexts were usable).
    """
    if kept is None or not len(kept.message_ids):
        return np.zeros(len(labels), dtype=bool), "no contexts kept by this context code"
    has_id = current.codes >= 0
    turns = labelled & has_id
    found = kept.message_ids.get_indexer(pd.Index(message_ids[turns]))
    digest_now = current.digests[current.codes[turns]]
    same = (found >= 0) & (kept.digests[found] == digest_now)
    # Conversations with a labelled turn not kept as it is now are filled again.
    stale = np.bincount(current.codes[turns][~same], minlength=len(current)) > 0
    unchanged = np.zeros(len(labels), dtype=bool)
    unchanged[has_id] = ~stale[current.codes[has_id]]
    reuse = turns & unchanged
    result.loc[labels[reuse]] = kept.contexts[found[unchanged[turns]]]
    return unchanged, ""
