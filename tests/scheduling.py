"""The order test files reach pytest-xdist's workers in: the longest first.

`make test` runs two workers with `--dist loadfile` (a file's tests, and its module fixtures,
stay on one worker) and `--no-loadscope-reorder` (files are handed out in collection order, as
each worker frees up). Handed out in folder order, a 90 s file could start last on one worker
while the other idles; started first, the long files overlap and the many short ones fill the
gaps, so both workers finish within a few seconds of each other.
"""

from __future__ import annotations

from typing import Protocol

# Seconds per file (setup, call and teardown of all its tests) in a two-worker run of the whole
# suite while other jobs shared the cores; files not listed take under 25 s and keep their folder
# order. Only the order matters: refresh from `pytest -n 2 --durations=0` when a file grows a lot.
FILE_COST_S: dict[str, float] = {
    "tests/pipelines/test_production_loop.py": 175,
    "tests/pipelines/test_crash_recovery.py": 167,
    "tests/serving/chat/test_chat_resilience.py": 163,
    "tests/pipelines/test_evaluate.py": 110,
    "tests/serving/chat/test_dev_login.py": 107,
    "tests/pipelines/test_tracking_server.py": 94,
    "tests/pipelines/test_pipeline.py": 82,
    "tests/serving/chat/test_chat_attacks.py": 72,
    "tests/pipelines/test_cli_progress.py": 71,
    "tests/serving/test_bento.py": 66,
    "tests/serving/test_prediction_log.py": 60,
    "tests/serving/test_startup_errors.py": 58,
    "tests/test_orphans.py": 48,
    "tests/models/test_recovery.py": 46,
    "tests/pipelines/test_run_monitoring.py": 41,
    "tests/pipelines/test_code_location.py": 40,
    "tests/pipelines/test_run_queue.py": 38,
    "tests/serving/chat/test_two_workers.py": 38,
    "tests/monitoring/test_dagster.py": 38,
    "tests/serving/test_openapi_fuzz.py": 35,
    "tests/serving/test_shared_rate_limit.py": 32,
    "tests/models/test_inference.py": 32,
    "tests/models/test_registry.py": 30,
    "tests/notebooks/test_model_review.py": 30,
    "tests/monitoring/test_job.py": 28,
    "tests/serving/test_metrics_dir.py": 27,
    # Measured on an idle machine (ci10, 2026-11-30): new long files of issue 12 and the S3 one.
    "tests/pipelines/test_object_store.py": 48,
    "tests/serving/test_shadow.py": 40,
    "tests/serving/test_shadow_hold.py": 39,
    "tests/serving/test_prediction_log_crash.py": 40,
    "tests/pipelines/test_demo_shadow.py": 60,
    # Issue 14's pages: a service of its own and three Chromium pages (measured under load).
    "tests/serving/chat/test_chat_pages.py": 100,
}


class Item(Protocol):
    """What ordering needs of a pytest item: its node id (`path::name[params]`)."""

    nodeid: str


def _file(item: Item) -> str:
    return item.nodeid.split("::", 1)[0]


def longest_files_first(items: list[Item]) -> None:
    """Reorder `items` in place: files by descending cost, a file's tests kept together in order.

    Deterministic, so every worker collects the same order (xdist refuses differing ones).
    """
    first_seen: dict[str, int] = {}
    for index, item in enumerate(items):
        first_seen.setdefault(_file(item), index)
    items.sort(key=lambda item: (-FILE_COST_S.get(_file(item), 0.0), first_seen[_file(item)]))
