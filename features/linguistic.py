"""spaCy part-of-speech, entity and stop-word counts, computed in batches with `nlp.pipe`."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from spacy.language import Language

LINGUISTIC_NAMES: tuple[str, ...] = (
    "noun_count",
    "verb_count",
    "adj_count",
    "pron_count",
    "entity_count",
    "stopword_count",
)
_POS_COLUMNS = {"NOUN": 0, "PROPN": 0, "VERB": 1, "AUX": 1, "ADJ": 2, "PRON": 3}
# Only the tagger (POS via attribute_ruler) and NER are needed: the parser and lemmatizer are
# the slow half of the pipeline.
_UNUSED_PIPES = ("parser", "lemmatizer")


@cache
def load_pipeline(model: str) -> Language:
    """Load a spaCy pipeline once per process, with the components we do not use disabled."""
    # Imported on first use: `import spacy` costs seconds of CPU, and serving and the Dagster
    # code server import this package without ever running spaCy.
    import spacy

    return spacy.load(model, disable=list(_UNUSED_PIPES))


def linguistic_counts(texts: list[str], model: str, batch_size: int = 256) -> np.ndarray:
    """One row of LINGUISTIC_NAMES per text."""
    nlp = load_pipeline(model)
    out = np.zeros((len(texts), len(LINGUISTIC_NAMES)), dtype=np.float64)
    for row, doc in enumerate(nlp.pipe(texts, batch_size=batch_size)):
        for token in doc:
            column = _POS_COLUMNS.get(token.pos_)
            if column is not None:
                out[row, column] += 1
            if token.is_stop:
                out[row, 5] += 1
        out[row, 4] = len(doc.ents)
    return out
