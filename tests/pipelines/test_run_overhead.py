"""What every run pays whatever its data: garbage collections and the asset checks' steps.

The +1 % run of bench/scale.py costs mostly this fixed part (issue 10, bench/README.md).
"""

from __future__ import annotations

import gc
import weakref

import dagster as dg
import pandas as pd

from pipelines.checks import ALL_CHECKS, CONVERSATIONS
from pipelines.headless import execute_headless, headless_job

CHECK_NAMES = {
    "conversations_schema",
    "conversations_null_rates",
    "conversations_duplicate_rate",
    "conversations_label_coverage",
}


class _Cycle:
    """An object in a reference cycle: only the collector frees it."""

    def __init__(self) -> None:
        self.me = self


def test_a_headless_run_collects_without_walking_what_it_started_with(tmp_path):
    cycles: list[weakref.ref] = []

    @dg.asset
    def upstream(context) -> int:  # context: Dagster injects it
        cycle = _Cycle()
        cycles.append(weakref.ref(cycle))
        # Modules and the job were alive before the run: frozen, not walked again each step.
        context.add_output_metadata({"frozen": gc.get_freeze_count()})
        return 1

    @dg.asset
    def downstream(context, upstream: int) -> int:
        # No gc.collect here: the memory hook after `upstream` must have freed its cycle.
        context.add_output_metadata({"cycle_alive": cycles[0]() is not None})
        return upstream + 1

    job = dg.define_asset_job("two_steps").resolve(
        asset_graph=dg.Definitions(assets=[upstream, downstream]).resolve_asset_graph()
    )
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        result = execute_headless(
            headless_job(job), instance, {"loggers": {"progress": {}}}, tags={}
        )
        metadata = {
            event.asset_key.path[-1]: event.materialization.metadata
            for event in result.get_asset_materialization_events()
        }

    assert result.success
    assert metadata["upstream"]["frozen"].value > 10_000  # 0 before: every step walked them
    assert metadata["downstream"]["cycle_alive"].value is False
    assert gc.get_freeze_count() == 0  # handed back to the collector after the run


def _conversations(text: str | None) -> pd.DataFrame:
    """Two validated rows as the lake holds them, the customer's text given."""
    return pd.DataFrame(
        {
            "source": ["store"] * 2,
            "source_line": [1, 2],
            "message_id": ["m1", "m2"],
            "conversation_id": ["c1", "c1"],
            "turn": [0, 1],
            "ts": pd.to_datetime(["2026-11-01", "2026-11-01"], utc=True),
            "speaker": ["customer", "bot"],
            "text": [text, "here is how"],
            "user_id": ["u1", None],
            "channel": ["web", "web"],
            "intent": ["card_arrival", None],
            "label_source": ["agent", None],
            "label_trust": ["agent", None],
            "context": [None, None],
        }
    )


def _run_checks(tmp_path, frame: pd.DataFrame) -> dg.ExecuteInProcessResult:
    @dg.asset(name=CONVERSATIONS.path[-1])
    def conversations() -> pd.DataFrame:
        return frame

    @dg.asset(deps=[conversations])
    def downstream() -> int:
        return 1

    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        return dg.materialize_to_memory(
            [conversations, downstream, *ALL_CHECKS], instance=instance, raise_on_error=False
        )


def test_the_conversation_checks_run_as_one_step_each_under_its_name(tmp_path):
    result = _run_checks(tmp_path, _conversations("where is my card"))

    evaluations = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    check_steps = {
        event.step_key
        for event in result.all_events
        if event.event_type == dg.DagsterEventType.STEP_SUCCESS
    } - {"conversations", "downstream"}
    assert set(evaluations) == CHECK_NAMES
    assert evaluations["conversations_schema"] and evaluations["conversations_null_rates"]
    assert len(check_steps) == 1  # four steps before, each reading the union again


def test_a_failed_blocking_check_still_stops_what_is_downstream(tmp_path):
    result = _run_checks(tmp_path, _conversations(None))

    evaluations = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    materialized = {e.asset_key.path[-1] for e in result.get_asset_materialization_events()}
    assert evaluations["conversations_null_rates"] is False
    assert "downstream" not in materialized


def test_two_jobs_of_one_name_each_run_their_own_definition(tmp_path_factory):
    """Dagster caches a reconstructed job by its pointer: a second job of the same name in one
    process (a long-lived scheduler, a test session) once ran the first one's assets."""

    def job_answering(answer: int) -> dg.JobDefinition:
        @dg.asset(name="answer")
        def answer_asset(context) -> int:  # context: Dagster injects it
            context.add_output_metadata({"answer": answer})
            return answer

        return dg.define_asset_job("same_name").resolve(
            asset_graph=dg.Definitions(assets=[answer_asset]).resolve_asset_graph()
        )

    answers = []
    for answer in (1, 2):
        with dg.instance_for_test(temp_dir=str(tmp_path_factory.mktemp("home"))) as instance:
            result = execute_headless(
                headless_job(job_answering(answer)), instance, {"loggers": {"progress": {}}}, {}
            )
            (event,) = result.get_asset_materialization_events()
            answers.append(event.materialization.metadata["answer"].value)
    assert answers == [1, 2]
