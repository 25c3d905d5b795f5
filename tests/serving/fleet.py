"""Several `bentoml serve` processes started together and stopped together.

A start is mostly single-threaded imports and model loading, and a graceful stop mostly waits for
BentoML's arbiter: one after the other, N servers cost N times that on a machine whose second
core idles. Launched at once, two cores start two at a time; stopped at once, the waits overlap.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor

from tests.serving.conftest import ServiceProcess


@contextlib.contextmanager
def running_together(processes: Iterable[ServiceProcess]) -> Iterator[None]:
    """Start every process at once, wait until each is ready; stop them all on exit.

    Every process launched is stopped (its whole tree, port checked) even when another fails
    to start or to stop.
    """
    fleet = list(processes)
    try:
        for process in fleet:
            process.launch()
        for process in fleet:
            process.wait_ready()
        yield
    finally:
        stop_together(fleet)


def stop_together(processes: Iterable[ServiceProcess]) -> None:
    """Stop every process (SIGTERM, then its leftovers killed) at once; raise what failed.

    Each stop still proves its own tree is gone and its port free (`ServiceProcess.stop`).
    """
    fleet = list(processes)
    if not fleet:
        return
    with ThreadPoolExecutor(max_workers=len(fleet)) as pool:
        outcomes = [pool.submit(process.stop) for process in fleet]
    failures = [error for outcome in outcomes if (error := outcome.exception()) is not None]
    if len(failures) == 1:
        raise failures[0]
    if failures:
        raise BaseExceptionGroup("servers that did not stop cleanly", failures)
