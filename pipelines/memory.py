"""Giving freed memory back to the system between the steps of an in-process run.

`make pipeline` runs every step in one process (`execute_in_process`). A step that built a large
frame and dropped it leaves much of it resident: cyclic garbage waits for the collector, and
glibc's malloc keeps freed heap pages for reuse instead of returning them. The next step then
starts from the previous one's high-water mark, and the run's peak is that plus its own
(bench/README.md: at 1M messages `intent_model` started at ~2.9 GB, most of it not live).
`release_memory` collects garbage and asks glibc to return free pages (`malloc_trim(0)`);
`release_memory_hook` does so after every successful step.

A full collection walks every object the collector tracks, and the imports alone (Dagster,
MLflow, scikit-learn, pandas) leave ~340k of them: ~0.3-0.5 s of CPU per collection, paid after
each step. `frozen_until_done` moves what is alive before a run starts (modules, definitions,
the instance) out of the collector's reach for the run, so each collection walks only what the
steps made.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging
import platform
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any

import dagster as dg

logger = logging.getLogger(__name__)


@cache
def _malloc_trim() -> Any | None:
    """glibc's `malloc_trim`, or None where the C library is not glibc (macOS, musl)."""
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):  # no such library or symbol: nothing to trim with
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


def release_memory() -> bool:
    """Collect garbage, then return free heap pages to the system; True if glibc trimmed any."""
    gc.collect()
    trim = _malloc_trim()
    return bool(trim(0)) if trim is not None else False


@dg.success_hook(name="release_memory")
def release_memory_hook(context: dg.HookContext) -> None:
    """After each successful step of an in-process run: give its freed memory back."""
    released = release_memory()
    logger.debug("%s: memory released (trimmed: %s)", context.step_key, released)


@contextmanager
def frozen_until_done() -> Iterator[None]:
    """Objects alive on entry are left out of garbage collections until the block ends.

    They outlive the run anyway (imports, the job, the instance); what the steps allocate is
    still collected. On exit they are handed back to the collector (`gc.unfreeze`), so a caller
    that runs again in the same process (a test) loses nothing.
    """
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
