"""Progress lines and the end-of-run summary of a headless run, on a tiny real Dagster job.

`make pipeline` prints a line per step and asset log as it runs, and a failed run ends with its
cause on one line; the table lists only the job's assets. The job here has a failing asset, one
downstream of it, and an asset outside the job; `test_cli_progress.py` checks a real
`make pipeline` run end to end.
"""

import dagster as dg

from pipelines.progress import progress_logger
from pipelines.run_summary import NOT_MATERIALISED, asset_rows, print_summary, summarise


@dg.asset
def source_rows(context: dg.AssetExecutionContext) -> int:
    """Three rows, logged the way the ingestion asset logs them."""
    context.log.info("read %d raw rows from %d sources", 3, 1)
    return 3


@dg.asset
def broken_model(source_rows: int) -> int:
    """Fails the way a training asset fails: an error chained to another one."""
    try:
        {}["train"]
    except KeyError as missing:
        raise ValueError("the train split is empty: more labelled examples are needed") from missing
    return source_rows


@dg.asset
def promoted(broken_model: int) -> int:
    """Downstream of the failure: in the job, never run."""
    return broken_model


@dg.asset
def drift_elsewhere() -> int:
    """An asset of another job."""
    return 0


@dg.asset_check(asset=source_rows)
def source_rows_present(source_rows: int) -> dg.AssetCheckResult:
    """A passing check."""
    return dg.AssetCheckResult(passed=source_rows > 0)


JOB = dg.define_asset_job(
    "small_job",
    selection=dg.AssetSelection.assets(source_rows, broken_model, promoted),
    executor_def=dg.in_process_executor,
)


def run_small_job():
    """The job run in-process with the progress logger, as the CLI runs its jobs."""
    defs = dg.Definitions(
        assets=[source_rows, broken_model, promoted, drift_elsewhere],
        asset_checks=[source_rows_present],
        jobs=[JOB],
    )
    quiet = frozenset({source_rows_present.node_def.name})
    job = defs.resolve_job_def("small_job").with_logger_defs({"progress": progress_logger(quiet)})
    with dg.DagsterInstance.ephemeral() as instance:
        result = job.execute_in_process(
            instance=instance, raise_on_error=False, run_config={"loggers": {"progress": {}}}
        )
    return job, result


def test_a_failed_run_prints_progress_lines_and_ends_with_its_cause_in_one_line(capsys):
    job, result = run_small_job()
    progress = capsys.readouterr().err.splitlines()
    summary = summarise(result, job, elapsed_s=1.0)
    print_summary(summary)
    out = capsys.readouterr().out

    bodies = [line.split("] ", 1)[1] for line in progress]
    assert all(line.startswith("[") for line in progress), progress
    assert "source_rows: started" in bodies
    assert "source_rows: read 3 raw rows from 1 sources" in bodies
    assert any(body.startswith("source_rows: finished in ") for body in bodies)
    assert "check source_rows_present: passed" in bodies
    cause = "ValueError: the train split is empty: more labelled examples are needed"
    assert f"broken_model: FAILED: {cause}" in bodies
    assert not any("source_rows_present: started" in body for body in bodies)  # quiet step
    assert "Traceback" not in "\n".join(progress) and "Stack Trace" not in "\n".join(progress)

    lines = [line for line in out.splitlines() if line.strip()]
    assert lines[-1] == f"cause: broken_model: {cause}"
    assert dict(asset_rows(summary)) == {
        "source_rows": "materialised",
        "broken_model": "FAILED",
        "promoted": NOT_MATERIALISED,
    }
    assert "drift_elsewhere" not in out
    assert "check source_rows_present" in out


def test_a_successful_run_has_no_cause_line(capsys):
    defs = dg.Definitions(assets=[source_rows, drift_elsewhere])
    job = defs.resolve_implicit_global_asset_job_def().with_logger_defs(
        {"progress": progress_logger()}
    )
    with dg.DagsterInstance.ephemeral() as instance:
        result = job.execute_in_process(
            instance=instance,
            run_config={"loggers": {"progress": {}}},
            asset_selection=[source_rows.key],
        )
    summary = summarise(result, job, elapsed_s=1.0)
    print_summary(summary)
    out = capsys.readouterr().out
    assert summary.cause is None and "cause:" not in out
    assert NOT_MATERIALISED not in out
