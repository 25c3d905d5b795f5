"""What the served worker counted during a chat run: group commits, model batches, checkpoints.

Read from the server's /metrics before and after a run (serving/chat/group_commit.py,
serving/batcher.py, serving/chat/checkpoint.py): the mean group says whether concurrent messages
share transactions, the mean batch whether the model gets real batches under load, and the
checkpoint time what SQLite's WAL copies cost (on their own thread, off the event loop).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import httpx

NAMES = (
    "chat_commit_groups_total",
    "chat_commit_jobs_total",
    "intent_model_batches_total",
    "intent_model_batched_items_total",
    "chat_wal_checkpoints_total",
    "chat_wal_checkpoint_seconds_total",
    "chat_wal_restarts_total",
    "chat_wal_loop_checkpoints_total",
    "chat_wal_loop_checkpoint_seconds_total",
)


@dataclass(frozen=True)
class WorkerCounts:
    """A run's share of the worker's counters (after minus before)."""

    mean_group: float = 0.0  # write jobs per group commit
    mean_batch: float = 0.0  # messages per model call
    checkpoints: int = 0  # WAL checkpoints (0: none counted, e.g. code without the thread)
    checkpoint_ms: float = 0.0  # their mean time
    restarts: int = 0  # times the WAL started over
    loop_checkpoints: int = 0  # checkpoints the event loop ran itself (the thread's tries failed)
    loop_checkpoint_ms: float = 0.0  # their mean time


def read_counters(port: int) -> dict[str, float]:
    """The counters of NAMES on the server's /metrics (0 for one it does not export)."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=30).text
    values = {}
    for name in NAMES:
        found = re.findall(rf"^{name}(?:{{[^}}]*}})? ([0-9.e+-]+)$", text, re.MULTILINE)
        values[name] = sum(float(value) for value in found)  # summed over workers' labels
    return values


def counts_between(before: dict[str, float], after: dict[str, float]) -> WorkerCounts:
    """The means over what was counted between two readings."""
    delta = {name: after[name] - before[name] for name in NAMES}
    groups, batches = delta["chat_commit_groups_total"], delta["intent_model_batches_total"]
    checkpoints = int(delta["chat_wal_checkpoints_total"])
    on_loop = int(delta["chat_wal_loop_checkpoints_total"])
    return WorkerCounts(
        mean_group=round(delta["chat_commit_jobs_total"] / groups, 2) if groups else 0.0,
        mean_batch=round(delta["intent_model_batched_items_total"] / batches, 2)
        if batches
        else 0.0,
        checkpoints=checkpoints,
        checkpoint_ms=round(1000 * delta["chat_wal_checkpoint_seconds_total"] / checkpoints, 2)
        if checkpoints
        else 0.0,
        restarts=int(delta["chat_wal_restarts_total"]),
        loop_checkpoints=on_loop,
        loop_checkpoint_ms=round(
            1000 * delta["chat_wal_loop_checkpoint_seconds_total"] / on_loop, 2
        )
        if on_loop
        else 0.0,
    )
