"""xdist's workers get the longest test files first, each file's tests together and in order."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tests.scheduling import FILE_COST_S, longest_files_first

REPO_ROOT = Path(__file__).resolve().parents[1]


@dataclass
class FakeItem:
    """A collected test as the ordering sees it."""

    nodeid: str


def test_costly_files_move_first_and_the_rest_keep_their_order():
    slow, slower = sorted(FILE_COST_S, key=FILE_COST_S.__getitem__)[-2:]
    nodeids = [
        "tests/a/test_quick.py::test_one",
        f"{slow}::test_x",
        "tests/b/test_quick.py::test_two",
        f"{slower}::test_y[1]",
        f"{slow}::test_z",
        f"{slower}::test_y[2]",
        "tests/a/test_quick.py::test_three",
    ]
    items = [FakeItem(nodeid) for nodeid in nodeids]
    longest_files_first(items)
    assert [item.nodeid for item in items] == [
        f"{slower}::test_y[1]",
        f"{slower}::test_y[2]",
        f"{slow}::test_x",
        f"{slow}::test_z",
        "tests/a/test_quick.py::test_one",
        "tests/a/test_quick.py::test_three",
        "tests/b/test_quick.py::test_two",
    ]


def test_every_costed_file_exists():
    # A renamed file would silently fall back to the end of the queue.
    assert [name for name in FILE_COST_S if not (REPO_ROOT / name).is_file()] == []
