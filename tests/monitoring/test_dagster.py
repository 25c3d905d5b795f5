"""The monitoring asset, the daily schedule and the drift sensor, evaluated in Dagster."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

from monitoring.settings import MonitoringSettings
from pipelines.automation import daily_monitoring_schedule, drift_retraining_sensor
from pipelines.definitions import build_definitions
from pipelines.resources import MonitoringResource
from pipelines.settings import PipelineSettings
from tests.monitoring.conftest import replay

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def drifted(champion, banking77_test, intents, tmp_path_factory):
    root = tmp_path_factory.mktemp("dagster-monitoring")
    # Labels must be newer than the champion (trained moments ago) to count as new: the
    # traffic is the coming hour.
    now = datetime.now(UTC) + timedelta(hours=1)
    store_url = f"sqlite:///{root / 'store.db'}"
    unseen = banking77_test[banking77_test["category"].isin(intents["unseen"])].head(150)
    replay(
        store_url,
        champion["model"],
        unseen["text"].tolist(),
        now,
        hours=0.9,
        true_intents=unseen["category"].tolist(),
    )
    settings = PipelineSettings(
        banking77_dir=None,
        conversation_jsonl_dir=root / "incoming",
        conversation_store_url=store_url,
        lake_dir=root / "lake",
        mlflow_tracking_uri=champion["config"].tracking_uri,
        retrain_min_new_labels=100,
    )
    defs = build_definitions(settings, MonitoringSettings(reports_dir=root / "reports"))
    (root / "home").mkdir()
    with dg.instance_for_test(temp_dir=str(root / "home")) as instance:
        job = defs.resolve_job_def("monitoring_job")
        config = {"ops": {"drift_report": {"config": {"window_end": now.isoformat()}}}}
        result = job.execute_in_process(instance=instance, run_config=config)
        yield {"defs": defs, "instance": instance, "result": result, "root": root}


def test_the_monitoring_asset_materialises_with_its_verdict_and_links(drifted):
    result = drifted["result"]
    assert result.success
    (event,) = [e for e in result.get_asset_materialization_events()]
    metadata = event.materialization.metadata
    assert metadata["verdict"].value == "degraded"  # 150 labelled messages, all unknown intents
    assert metadata["current_messages"].value == 150
    assert metadata["report"].value.endswith("index.html")
    assert metadata["mlflow_run_id"].value


def _evaluate_sensor(drifted, minimum: int):
    defs = drifted["defs"]
    monitoring = defs.resources["monitoring"]
    resources = {
        "sources": defs.resources["sources"],
        "mlflow_registry": defs.resources["mlflow_registry"],
        "monitoring": MonitoringResource(
            store_url=monitoring.store_url,
            reports_dir=monitoring.reports_dir,
            lake_dir=monitoring.lake_dir,
            retrain_min_new_labels=minimum,
        ),
    }
    with dg.build_sensor_context(
        instance=drifted["instance"], resources=resources, definitions=defs
    ) as context:
        return drift_retraining_sensor.evaluate_tick(context)


def test_the_sensor_retrains_on_drift_with_enough_new_labels(drifted):
    tick = _evaluate_sensor(drifted, minimum=100)
    assert len(tick.run_requests) == 1
    request = tick.run_requests[0]
    assert request.tags["trigger"] == "monitoring verdict degraded"
    assert request.tags["new_labels"] == "150"


def test_the_sensor_waits_for_labels(drifted):
    tick = _evaluate_sensor(drifted, minimum=1000)
    assert not tick.run_requests
    assert "only 150 new labels" in tick.skip_message


def test_the_daily_schedule_runs_the_monitoring_job():
    context = dg.build_schedule_context(
        scheduled_execution_time=datetime(2026, 11, 29, 6, tzinfo=UTC)
    )
    (request,) = daily_monitoring_schedule.evaluate_tick(context).run_requests
    assert daily_monitoring_schedule.job_name == "monitoring_job"
    assert daily_monitoring_schedule.cron_schedule == "0 6 * * *"
    assert request is not None


def test_definitions_hold_both_jobs_schedules_and_sensors(drifted):
    defs = drifted["defs"]
    assert {s.name for s in defs.schedules} == {"weekly_retraining", "daily_monitoring"}
    assert {s.name for s in defs.sensors} == {
        "new_conversations_sensor",
        "drift_retraining_sensor",
        "held_challenger_sensor",
    }
    training = defs.resolve_job_def("training_job")
    assert dg.AssetKey("drift_report") not in training.asset_layer.executable_asset_keys
