"""Banking77 (Casanueva et al., 2020; CC-BY-4.0): where its files are and how to cite it.

The data set is never committed here: it is read from `BANKING77_DIR` (default: the shared
folder beside the repo, used only when it exists; an empty value turns Banking77 off). Any
folder holding `train.csv`/`test.csv` (`text,category`) works. It is one optional source among
the labelled CSVs, the conversation JSONL files and the chat store.
"""

from __future__ import annotations

import logging
from pathlib import Path

logger = logging.getLogger(__name__)

CITATION = (
    "Casanueva, Temčinas, Gerz, Henderson, Vulić (2020). Efficient Intent Detection with Dual "
    "Sentence Encoders. NLP4ConvAI workshop, ACL 2020. Data: Banking77, CC-BY-4.0."
)
SPLIT_FILES = ("train.csv", "test.csv")
VARIABLE = "BANKING77_DIR"


class Banking77NotFound(FileNotFoundError):
    """The configured Banking77 folder does not exist (a typo, an unmounted volume)."""


def require_folder(directory: Path) -> Path:
    """`directory`, or Banking77NotFound naming BANKING77_DIR and how to turn Banking77 off."""
    if not directory.is_dir():
        raise Banking77NotFound(
            f"{VARIABLE}: folder {directory} does not exist; point it at a folder holding "
            f"{' and/or '.join(SPLIT_FILES)} (text,category columns), or set {VARIABLE}= "
            "(empty) to train without Banking77"
        )
    return directory


def csv_paths(directory: Path) -> list[Path]:
    """The Banking77 CSV files in `directory` (which must exist); none is a warning, not an error.

    A folder that exists but holds no Banking77 file is like an empty inbox: the other sources
    may still hold labelled data, and training says so when none does.
    """
    require_folder(directory)
    paths = [directory / name for name in SPLIT_FILES if (directory / name).is_file()]
    if not paths:
        logger.warning(
            "%s %s holds no Banking77 file (%s): Banking77 contributes no rows",
            VARIABLE,
            directory,
            ", ".join(SPLIT_FILES),
        )
    return paths
