"""Concise progress lines for headless runs (`make pipeline`, `make monitor`) on stderr.

Dagster's console logger prints every engine event with a long prefix and whole stack traces;
for minutes of training it says nothing a person can follow. `progress_logger` keeps what tells
where a run is: each step started and finished (with its time), each message an asset logs, each
asset check, and a failing step as one line naming its cause. Lines of our own Python loggers
(`models`, `pipelines`, `conversations`, `features`, `monitoring`: e.g. each candidate fitted)
come out in the same format. Every line starts with the time since the command started.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import TextIO

import dagster as dg
from dagster_shared.error import SerializableErrorInfo  # the type of Dagster's error records

# The packages whose INFO lines are progress (the candidates being fitted, rows quarantined).
OWN_LOGGERS = ("conversations", "features", "models", "pipelines", "monitoring")
_STARTED = time.monotonic()


def elapsed_prefix(now: float | None = None) -> str:
    """`[  42s]` or `[ 3m07s]`: the time since the command started."""
    seconds = int((time.monotonic() if now is None else now) - _STARTED)
    if seconds < 60:
        return f"[{seconds:>4d}s]"
    return f"[{seconds // 60:>2d}m{seconds % 60:02d}s]"


def first_line(text: str) -> str:
    """The first non-empty line of `text`, stripped (a message, never a stack trace)."""
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def one_line(text: str, limit: int = 300) -> str:
    """An error message folded onto one line (Dagster's end a line with ':' and go on)."""
    folded = " ".join(text.split())
    return folded if len(folded) <= limit else folded[: limit - 1] + "…"


def error_cause(error: SerializableErrorInfo | None) -> str:
    """`Class: message` of what the asset raised, from a Dagster SerializableErrorInfo chain.

    Dagster wraps what the asset raised in its own errors (DagsterExecutionStepExecutionError…);
    the first error of the chain that is not Dagster's is the asset's, and the first line of its
    message is what a person needs. Its own causes (`raise … from …`) stay in the event log.
    """
    if error is None:
        return "unknown error"
    while error.cls_name and error.cls_name.startswith("Dagster") and error.cause is not None:
        error = error.cause
    name = error.cls_name or ""
    message = one_line(error.message or "")
    qualified, _, rest = message.partition(": ")
    if rest and qualified.endswith(f".{name}"):  # dagster.…Failure: description
        message = f"{name}: {rest}"
    if name and not message.startswith(name):
        message = f"{name}: {message}"
    return message or "unknown error"


class _ElapsedFormatter(logging.Formatter):
    """Python log records as `[elapsed] WARNING message` (level shown when above INFO)."""

    def format(self, record: logging.LogRecord) -> str:
        level = "" if record.levelno <= logging.INFO else f"{record.levelname} "
        return f"{elapsed_prefix()} {level}{first_line(record.getMessage())}"


class DagsterProgressHandler(logging.Handler):
    """Turns Dagster's log records into progress lines; engine chatter is dropped.

    `quiet_steps` (the asset checks' steps) print only their verdict, not started/finished.
    """

    def __init__(self, quiet_steps: frozenset[str] = frozenset(), stream: TextIO | None = None):
        super().__init__(level=logging.DEBUG)
        self.quiet_steps = quiet_steps
        self.stream = stream or sys.stderr

    def emit(self, record: logging.LogRecord) -> None:
        """Write the record's progress line, if it has one."""
        line = self.progress_line(record)
        if line:
            self.stream.write(f"{elapsed_prefix()} {line}\n")
            self.stream.flush()

    def progress_line(self, record: logging.LogRecord) -> str | None:
        """The line for a Dagster record, or None for events that are not progress."""
        meta = getattr(record, "dagster_meta", None) or {}
        step = meta.get("step_key") or ""
        event = meta.get("dagster_event")
        if event is None:  # a message an asset logged (context.log)
            if not step or record.levelno < logging.INFO:
                return None
            level = "" if record.levelno <= logging.INFO else f"{record.levelname} "
            return f"{step}: {level}{first_line(meta.get('orig_message', record.getMessage()))}"
        return _event_line(event, step, quiet=step in self.quiet_steps)


def _event_line(event: dg.DagsterEvent, step: str, quiet: bool) -> str | None:
    kind = event.event_type
    if kind == dg.DagsterEventType.STEP_START and not quiet:
        return f"{step}: started"
    if kind == dg.DagsterEventType.STEP_SUCCESS and not quiet:
        return f"{step}: finished in {event.step_success_data.duration_ms / 1000:.1f}s"
    if kind == dg.DagsterEventType.STEP_FAILURE:
        return f"{step}: FAILED: {error_cause(event.step_failure_data.error)}"
    if kind == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
        check = event.asset_check_evaluation_data
        verdict = "passed" if check.passed else f"FAILED ({check.severity.value})"
        return f"check {check.check_name}: {verdict}"
    return None


def progress_logger(quiet_steps: frozenset[str] = frozenset()) -> dg.LoggerDefinition:
    """The Dagster logger of headless runs (see the module docstring)."""

    def build(_: dg.InitLoggerContext) -> logging.Logger:
        logger = logging.Logger("supportloop.progress", level=logging.DEBUG)
        logger.addHandler(DagsterProgressHandler(quiet_steps))
        return logger

    return dg.LoggerDefinition(build, description="Concise progress lines on stderr.")


def configure_python_logging(stream: TextIO | None = None) -> None:
    """Our packages' INFO lines as progress on stderr; libraries only from WARNING up.

    Calling it again (a second run in one process) replaces the handler, never doubles it.
    """
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(_ElapsedFormatter())
    # A warning that still occurs (none did in a full Banking77 run) is one line, not hidden.
    logging.captureWarnings(True)
    for name in (*OWN_LOGGERS, "py.warnings"):
        own = logging.getLogger(name)
        if name != "py.warnings":
            own.setLevel(logging.INFO)
        own.handlers = [h for h in own.handlers if not isinstance(h.formatter, _ElapsedFormatter)]
        own.addHandler(handler)
        own.propagate = False  # the root handler would print it a second time
    # MLflow costs ~2 CPU s to import and a run whose retrain rule keeps the model never uses
    # it: quieted as soon as something imports it, not imported here.
    for hook in [finder for finder in sys.meta_path if isinstance(finder, AfterImport)]:
        sys.meta_path.remove(hook)
    if "mlflow" in sys.modules:
        _quiet_mlflow(handler)
    else:
        sys.meta_path.insert(0, AfterImport("mlflow", lambda: _quiet_mlflow(handler)))


class AfterImport:
    """A meta path finder that calls `then` once module `name` has been executed, then leaves."""

    def __init__(self, name: str, then: Callable[[], None]) -> None:
        self.name, self.then = name, then

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        """The module's own spec, its loader calling `then` after executing it."""
        if fullname != self.name:
            return None
        sys.meta_path.remove(self)  # the finders after this one find the real spec
        spec = importlib.util.find_spec(fullname)
        loader = spec.loader if spec is not None else None
        if loader is None:
            return spec
        run = loader.exec_module

        def exec_then(module: ModuleType) -> None:
            del loader.exec_module  # the loader's own method again
            run(module)
            self.then()

        loader.exec_module = exec_then  # type: ignore[method-assign]
        return spec


def _quiet_mlflow(handler: logging.Handler) -> None:
    """MLflow's warnings through `handler`; its INFO lines, prints and progress bars dropped.

    MLflow gives its logger a handler of its own when imported (so this runs after it is)
    and prints lines such as "Created version '1' of model …" with `eprint`, which writes to
    the module's MLFLOW_LOGGING_STREAM (looked up at each call; MLflow's own on/off switch for
    it is flipped back by its autologging code). The registered version is in the summary.
    """
    from mlflow.utils import logging_utils

    class Discard(logging_utils.MlflowLoggingStream):
        """The stream, always off."""

        def write(self, text: str) -> None:
            """Drop `text`."""

        def flush(self) -> None:
            """Nothing to flush."""

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # read per download
    for name in ("mlflow", "alembic"):
        library = logging.getLogger(name)
        library.handlers = [handler]
        library.setLevel(logging.WARNING)
        library.propagate = False
    logging_utils.MLFLOW_LOGGING_STREAM = Discard()
