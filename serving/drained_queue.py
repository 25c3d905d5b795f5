"""A bounded in-memory queue drained in batches by a background task on the event loop.

The request path only appends (no I/O, no lock): `put` refuses an item when the queue is full,
and wakes the task as soon as a batch is ready; otherwise the task drains every `interval_s`.
What a drain does and what a stop does with what is left are the subclass's:
the prediction log (serving/prediction_log.py) writes batches to the store and flushes the rest
at a stop; shadow scoring (serving/shadow.py) scores batches and drops the rest at a stop.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class DrainedQueue(ABC, Generic[T]):
    """A queue of at most `queue_size` items, drained `batch_size` at a time by one task."""

    def __init__(self, queue_size: int, batch_size: int, interval_s: float) -> None:
        self.queue_size = queue_size
        self.batch_size = batch_size
        self.interval_s = interval_s
        self._queue: deque[T] = deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    # No __len__: an empty queue must not make its owner falsy (`if scorer:` in the service).
    @property
    def depth(self) -> int:
        """Items waiting."""
        return len(self._queue)

    def has_room(self) -> bool:
        """Whether one more item fits."""
        return len(self._queue) < self.queue_size

    def put(self, item: T) -> bool:
        """Append `item` unless the queue is full (False then: the caller counts the drop)."""
        if not self.has_room():
            return False
        self._queue.append(item)
        return True

    def wake_if_batch_ready(self) -> None:
        """Drain now rather than at the next interval when a full batch is waiting."""
        if len(self._queue) >= self.batch_size:
            self._wake.set()

    def take_batch(self) -> list[T]:
        """Remove and return up to `batch_size` items from the head."""
        return [self._queue.popleft() for _ in range(min(self.batch_size, len(self._queue)))]

    def put_back(self, items: list[T]) -> list[T]:
        """Return `items` to the head, as many as fit; returns those that did not."""
        room = max(0, self.queue_size - len(self._queue))
        self._queue.extendleft(reversed(items[:room]))
        return items[room:]

    def drop_all(self) -> int:
        """Empty the queue; returns how many items were dropped."""
        dropped = len(self._queue)
        self._queue.clear()
        return dropped

    def start(self) -> None:
        """Start the draining task on the running event loop."""
        self._wake = asyncio.Event()  # bound to the loop the service runs on
        self._task = asyncio.create_task(self._run())

    async def close(self) -> None:
        """Stop the task after the batch in hand, then let `on_close` deal with what is left."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task
        await self.on_close()

    @abstractmethod
    async def drain_once(self) -> bool:
        """Handle one batch from the head; False when it must wait (e.g. the store is down)."""

    @abstractmethod
    async def on_close(self) -> None:
        """What a stop does with the items still queued (flush them, or drop and count them)."""

    async def _run(self) -> None:
        while not self._closing:
            try:
                await asyncio.wait_for(self._wake.wait(), self.interval_s)
                owed = 0
            except TimeoutError:  # the interval passed: drain what there is
                owed = len(self._queue)
            self._wake.clear()
            while self._queue and not self._closing:
                # Beyond what an interval owes, only full batches: draining until empty wrote
                # whatever trickled in during the last write, many small batches a second under
                # load (median 14 rows at 1,400 a second), each a transaction and thread
                # hand-offs. The rest joins the next full batch, or goes at the next interval.
                if owed <= 0 and len(self._queue) < self.batch_size:
                    break
                if not await self.drain_once():
                    await asyncio.sleep(self.interval_s)  # retry after an interval
                    break
                owed -= self.batch_size
