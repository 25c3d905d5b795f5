"""Memory freed by a step is given back to the system before the next step (pipelines/memory.py)."""

from __future__ import annotations

import gc
import weakref

import dagster as dg
import pandas as pd
import psutil
import pytest

from pipelines.headless import execute_headless, headless_job
from pipelines.memory import _malloc_trim, release_memory

MIB = 2**20


@pytest.mark.skipif(_malloc_trim() is None, reason="malloc_trim is glibc's")
def test_memory_freed_below_a_live_object_is_returned_to_the_system():
    process = psutil.Process()
    # ~100 MiB of small heap blocks (each below malloc's mmap threshold), then one block kept
    # above them: freeing the first leaves free pages under the heap's top, which free() alone
    # keeps, as a dropped frame's strings stay resident between two steps of a run.
    blocks = [bytearray(1024) for _ in range(100_000)]
    kept = bytearray(1024)
    del blocks
    gc.collect()
    freed = process.memory_info().rss

    assert release_memory()

    returned = freed - process.memory_info().rss
    assert returned > 50 * MIB, f"only {returned / MIB:.0f} MiB returned"
    assert len(kept) == 1024


def _two_steps() -> tuple[dg.JobDefinition, list[weakref.ref]]:
    """A job whose first step's frame the second step reports alive or gone (run metadata)."""
    made: list[weakref.ref] = []

    @dg.asset
    def upstream() -> pd.DataFrame:
        frame = pd.DataFrame({"text": ["a large union, in the real run"]})
        made.append(weakref.ref(frame))
        return frame

    @dg.asset
    def downstream(context, upstream: pd.DataFrame) -> int:  # context: Dagster injects it
        gc.collect()
        # Its input is a copy the IO manager read back; the frame upstream made is not needed.
        context.add_output_metadata({"upstream_frame_alive": made[0]() is not None})
        return len(upstream)

    job = dg.define_asset_job("two_steps").resolve(
        asset_graph=dg.Definitions(assets=[upstream, downstream]).resolve_asset_graph()
    )
    return job, made


def test_a_headless_run_keeps_no_step_output_alive_after_it_is_stored(tmp_path):
    job, made = _two_steps()
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        result = execute_headless(
            headless_job(job), instance, {"loggers": {"progress": {}}}, tags={}
        )
        alive = [
            event.materialization.metadata["upstream_frame_alive"].value
            for event in result.get_asset_materialization_events()
            if event.asset_key == dg.AssetKey("downstream")
        ]

    assert result.success
    assert alive == [False]  # execute_in_process kept it referenced until the run ended
    assert len(made) == 1


def test_every_step_of_a_headless_run_gives_memory_back(tmp_path):
    @dg.asset
    def upstream() -> int:
        return 1

    @dg.asset
    def downstream(upstream: int) -> int:
        return upstream + 1

    job = dg.define_asset_job("two_steps").resolve(
        asset_graph=dg.Definitions(assets=[upstream, downstream]).resolve_asset_graph()
    )
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        result = headless_job(job).execute_in_process(
            instance=instance, run_config={"loggers": {"progress": {}}}
        )
        hooks = [
            event.step_key
            for event in result.all_events
            if event.event_type == dg.DagsterEventType.HOOK_COMPLETED
        ]

    assert result.success
    assert sorted(hooks) == ["downstream", "upstream"]
