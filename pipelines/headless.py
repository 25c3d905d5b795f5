"""How `make pipeline` (`pipelines.cli materialize`) runs a job: in this process, lean.

`headless_job` gives a job the progress logger and the memory hook and runs it in-process
whatever PIPELINE_EXECUTOR says; `execute_headless` runs it once without keeping each step's
output alive until the run ends. Jobs are looked up here by name, in a module that is never
`__main__` (the CLI runs as `python -m pipelines.cli`), so Dagster can reconstruct them.
"""

from __future__ import annotations

import uuid
from typing import Any

# The jobs `execute_headless` is running, by a key per run (Dagster reconstructs them here).
_RUNNING: dict[str, Any] = {}


def running_job(key: str) -> Any:
    """A job `execute_headless` is running (what `execute_job` reconstructs, in-process)."""
    return _RUNNING[key]


def execute_headless(
    job: Any, instance: Any, run_config: dict[str, Any], tags: dict[str, str]
) -> Any:
    """Run `job` (a `headless_job`) once in this process; each output is dropped after use.

    `execute_job`, not `execute_in_process`: the latter keeps every step's output value
    referenced until the run ends (for `output_for_node`), so at 1M messages the 1M-row union
    and the examples stayed live through training. The steps read their inputs back from the
    lake; the summary needs only the run's events.
    """
    import dagster as dg

    from pipelines.memory import frozen_until_done

    # A key of its own per run: Dagster caches a reconstructed job by its pointer (module,
    # function, args), so a second job of the same name in this process would otherwise run the
    # first one's definition (a long-lived scheduler, a test session).
    key = f"{job.name}:{uuid.uuid4().hex}"
    _RUNNING[key] = job
    recon = dg.build_reconstructable_job(
        "pipelines.headless", "running_job", reconstructable_args=(key,)
    )
    try:
        # The per-step collections (pipelines/memory.py) then skip what was loaded before it.
        with frozen_until_done():
            return dg.execute_job(
                recon, instance, run_config=run_config, tags=tags, raise_on_error=False
            )
    finally:
        del _RUNNING[key]


def headless_job(job: Any) -> Any:
    """`job` as `materialize` runs it: in-process, progress lines, memory given back per step.

    The progress logger replaces Dagster's console logger for this run only; runs from the UI or
    the daemon keep the default one (a run config may still name `console`). Every step runs in
    this one process, so each returns what it freed before the next starts (pipelines/memory.py).
    """
    import dagster as dg

    from pipelines.checks import ALL_CHECKS
    from pipelines.memory import release_memory_hook
    from pipelines.progress import progress_logger

    checks = frozenset(check.node_def.name for check in ALL_CHECKS)
    job = job.with_logger_defs({"progress": progress_logger(checks), **dg.default_loggers()})
    # In this process whatever PIPELINE_EXECUTOR says: `make pipeline` runs here and now.
    return job.with_hooks({release_memory_hook}).with_executor_def(dg.in_process_executor)
