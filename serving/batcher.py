"""Dynamic micro-batching for single-message requests, with no added wait.

Requests that arrive while the model is busy are classified together in the next batch; an idle
service runs a request at once. Nothing waits for a timer, so a lone request is never delayed
(unlike a `max_latency_ms` window), and under load one vectorised call replaces many single-row
calls. A batch runs on the event loop itself: while it computes, new requests wait in the
socket buffers, and between batches the loop parses all of them at once. Measured in
bench/serve.py, this alternation gave a far shorter latency tail than a worker thread fighting
the event loop for the GIL.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from serving.prometheus_metrics import LazyCounter

Item = TypeVar("Item")
Result = TypeVar("Result")

# Mean batch size = items / batches: does the load reach the model as real batches
# (bench/chat.py reads both before and after a run)?
batches_total = LazyCounter("intent_model_batches_total", "Micro-batches run through the model.")
batched_items_total = LazyCounter(
    "intent_model_batched_items_total",
    "Messages classified in micro-batches (÷ batches: the mean batch).",
)


class MicroBatcher(Generic[Item, Result]):
    """Collects submitted items into batches for `run_batch` (items in, results in order out)."""

    def __init__(
        self, run_batch: Callable[[Sequence[Item]], Sequence[Result]], max_batch: int = 64
    ) -> None:
        self.run_batch = run_batch
        self.max_batch = max_batch
        self._pending: list[tuple[Item, asyncio.Future[Result]]] = []
        self._draining = False
        self._drain_task: asyncio.Task[None] | None = None
        self.batches = 0
        self.items = 0

    async def submit(self, item: Item) -> Result:
        """Classify one item as part of the next batch."""
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if not self._draining:
            self._draining = True
            self._drain_task = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch = self._pending[: self.max_batch]
                del self._pending[: self.max_batch]
                self._run(batch)
                await asyncio.sleep(0)  # let the loop send responses and parse new requests
        finally:
            self._draining = False

    def _run(self, batch: list[tuple[Item, asyncio.Future[Result]]]) -> None:
        self.batches += 1
        self.items += len(batch)
        batches_total.inc()
        batched_items_total.inc(len(batch))
        try:
            results = self.run_batch([item for item, _ in batch])
        except Exception as exc:  # every waiting request gets the error, none hangs
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)

    def stats(self) -> dict[str, Any]:
        """Batches run and mean batch size so far."""
        return {
            "batches": self.batches,
            "items": self.items,
            "mean_batch": round(self.items / self.batches, 2) if self.batches else 0.0,
        }
