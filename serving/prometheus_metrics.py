"""Prometheus metrics declared at import and created in the worker, through prometheus_client.

prometheus_client chooses where values live when it is first imported: with
`PROMETHEUS_MULTIPROC_DIR` set, in memory-mapped files of that directory, one per process,
which BentoML's `/metrics` sums over the server's workers; without it, in the process's memory.
`bentoml serve` imports the service module before it has chosen the directory
(serving/metrics_dir.py), and a metric without labels opens its file when created. So a module
only declares its metrics here (nothing imported, nothing on disk); `create_declared()` in the
worker (IntentService.__init__) or a metric's first use imports prometheus_client and creates
them. A metric created at start-up is exported (at 0) before anything is counted.

(`bentoml.metrics`, which did the deferring before, is deprecated since BentoML 1.4.)
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

if TYPE_CHECKING:
    from prometheus_client import Counter, Gauge

M = TypeVar("M", "Counter", "Gauge")
# How /metrics combines a gauge over workers; "live" modes forget workers that have stopped.
GaugeMode = Literal["livesum", "livemax", "livemin", "liveall", "livemostrecent"]

_declared: list[_Declared[Any]] = []
# Two threads (the event loop and a checkpoint thread) may use a metric first at the same time:
# prometheus_client refuses a second metric of the same name.
_creating = threading.Lock()


class _Declared(Generic[M]):
    """A metric's definition, and the metric once created."""

    def __init__(self, name: str, documentation: str, labelnames: tuple[str, ...]) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = labelnames
        self._metric: M | None = None
        _declared.append(self)

    def _create(self) -> M:
        raise NotImplementedError

    @property
    def metric(self) -> M:
        """The prometheus_client metric, created on first use."""
        metric = self._metric
        if metric is None:
            with _creating:
                if self._metric is None:
                    self._metric = self._create()
                metric = self._metric
        return metric


class LazyCounter(_Declared["Counter"]):
    """A counter (`name` ends in `_total`) created on first use or by `create_declared()`."""

    def __init__(self, name: str, documentation: str, labelnames: tuple[str, ...] = ()) -> None:
        """Declare it; nothing is created yet."""
        super().__init__(name, documentation, labelnames)

    def _create(self) -> Counter:
        from prometheus_client import Counter  # only once the directory is known: see above

        return Counter(self.name, self.documentation, self.labelnames)

    def inc(self, amount: float = 1.0) -> None:
        """Add `amount` (>= 0)."""
        self.metric.inc(amount)

    def labels(self, **values: str) -> Counter:
        """The child counter of these label values."""
        return self.metric.labels(**values)


class LazyGauge(_Declared["Gauge"]):
    """A gauge combined over workers by `mode`, created on first use or by `create_declared()`."""

    def __init__(self, name: str, documentation: str, mode: GaugeMode) -> None:
        """Declare it; nothing is created yet."""
        super().__init__(name, documentation, ())
        self.mode = mode

    def _create(self) -> Gauge:
        from prometheus_client import Gauge

        return Gauge(self.name, self.documentation, multiprocess_mode=self.mode)

    def set(self, value: float) -> None:
        """Set the gauge to `value`."""
        self.metric.set(value)


def create_declared() -> int:
    """Create every metric declared so far (in a worker: after BentoML set its directory).

    Returns how many there are.
    """
    for declared in _declared:
        declared.metric  # noqa: B018 - the property creates it
    return len(_declared)
