"""Banking77 (Casanueva et al., 2020; CC-BY-4.0): where its files are and how to cite it.

The data set is never committed here: it is read from `BANKING77_DIR` (default: the shared
folder beside the repo). Any folder holding `train.csv`/`test.csv` (`text,category`) works.
"""

from __future__ import annotations

from pathlib import Path

CITATION = (
    "Casanueva, Temčinas, Gerz, Henderson, Vulić (2020). Efficient Intent Detection with Dual "
    "Sentence Encoders. NLP4ConvAI workshop, ACL 2020. Data: Banking77, CC-BY-4.0."
)
SPLIT_FILES = ("train.csv", "test.csv")


class Banking77NotFound(FileNotFoundError):
    """The configured folder does not hold the Banking77 CSV files."""


def csv_paths(directory: Path) -> list[Path]:
    """The Banking77 CSV files in `directory`; the error says where to put them."""
    paths = [directory / name for name in SPLIT_FILES if (directory / name).is_file()]
    if not paths:
        raise Banking77NotFound(
            f"no Banking77 CSV files ({', '.join(SPLIT_FILES)}) in {directory}; "
            "set BANKING77_DIR "
            "to a folder holding them (text,category columns)"
        )
    return paths
