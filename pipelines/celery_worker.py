"""The Celery app of the pipeline's workers: `celery -A pipelines.celery_worker worker -Q dagster`.

With `PIPELINE_EXECUTOR=celery` (pipelines/executors.py) every step of a launched run is a Celery
task on `CELERY_BROKER_URL`; a worker started with this app executes it: it loads the code
location from the task (the run's job pointer), reads and writes the run's events in the Dagster
instance (`DAGSTER_HOME`'s dagster.yaml: PostgreSQL in production), and the assets through the
lake and the MLflow server, so it needs the same settings as the webserver and the daemon.

Start one or more per machine with `--concurrency 1` (a training step uses a core or more) and
`--prefetch-multiplier 1` (a waiting step should go to an idle worker, not queue behind a busy
one). dagster-celery's own `dagster-celery worker start` does the same, but takes the broker from
a YAML file instead of the environment the rest of the project reads.
"""

from __future__ import annotations

from dagster_celery.executor import CeleryExecutor
from dagster_celery.make_app import make_app
from dagster_celery.tasks import create_execute_job_task, create_resume_job_task, create_task

from models.settings_errors import SettingsProblem, load_settings
from pipelines.executors import BROKER_VARIABLE
from pipelines.settings import PipelineSettings


def app_args(settings: PipelineSettings) -> dict[str, object]:
    """The Celery app's arguments: the settings' broker and result backend, Dagster's defaults.

    The same as the executor's (pipelines/executors.py), so workers and runs meet on one queue.
    """
    if not settings.celery_broker_url:
        raise SettingsProblem(f"a pipeline worker needs {BROKER_VARIABLE} (e.g. redis://…)")
    broker = settings.celery_broker_url
    executor = CeleryExecutor.for_cli(broker, settings.celery_result_backend or broker)
    return executor.app_args()


app = make_app(app_args(load_settings(PipelineSettings)))
# The task names dagster-celery submits to (dagster_celery/app.py registers the same three).
execute_plan = create_task(app)
execute_job = create_execute_job_task(app)
resume_job = create_resume_job_task(app)
