"""The bounded queue both the prediction log and shadow scoring are drained by (on a real loop)."""

from __future__ import annotations

import asyncio

from serving.drained_queue import DrainedQueue

# Longer than any test: a drain before it can only come from a full batch's wake-up.
NEVER_S = 600.0


class Recorder(DrainedQueue[int]):
    """Drains into `batches`; refuses the first `failures` drains (a store that is down)."""

    def __init__(self, queue_size: int, batch_size: int, interval_s: float, failures: int = 0):
        super().__init__(queue_size, batch_size, interval_s)
        self.batches: list[list[int]] = []
        self.failures = failures
        self.closed_with: list[int] | None = None
        self.drained = asyncio.Event()

    async def drain_once(self) -> bool:
        batch = self.take_batch()
        if self.failures:
            self.failures -= 1
            self.put_back(batch)
            return False
        self.batches.append(batch)
        self.drained.set()
        return True

    async def on_close(self) -> None:
        self.closed_with = list(self._queue)
        self.drop_all()


def test_a_full_batch_wakes_the_task_and_a_full_queue_refuses() -> None:
    async def scenario() -> Recorder:
        queue = Recorder(queue_size=5, batch_size=3, interval_s=NEVER_S)
        queue.start()
        accepted = [queue.put(n) for n in range(7)]
        assert accepted == [True] * 5 + [False] * 2 and queue.depth == 5
        queue.wake_if_batch_ready()
        await asyncio.wait_for(queue.drained.wait(), 30)
        await queue.close()
        return queue

    queue = asyncio.run(scenario())
    assert queue.batches == [[0, 1, 2]]  # a full batch; the rest waits for the next one
    assert queue.closed_with == [3, 4] and queue.depth == 0


def test_a_refused_drain_puts_the_batch_back_in_order_and_retries_after_the_interval() -> None:
    async def scenario() -> Recorder:
        queue = Recorder(queue_size=10, batch_size=2, interval_s=0.05, failures=2)
        queue.start()
        for n in range(3):
            queue.put(n)
        queue.wake_if_batch_ready()
        await asyncio.wait_for(queue.drained.wait(), 30)
        await queue.close()
        return queue

    queue = asyncio.run(scenario())
    assert queue.batches[0] == [0, 1]
    assert [n for batch in queue.batches for n in batch] + (queue.closed_with or []) == [0, 1, 2]


def test_close_stops_the_task_and_hands_what_is_left_to_on_close() -> None:
    async def scenario() -> Recorder:
        queue = Recorder(queue_size=10, batch_size=5, interval_s=NEVER_S)
        queue.start()
        for n in range(3):  # below a batch: only the interval (never here) would drain them
            queue.put(n)
        queue.wake_if_batch_ready()
        await queue.close()
        return queue

    queue = asyncio.run(scenario())
    assert queue.batches == [] and queue.closed_with == [0, 1, 2] and queue.depth == 0


def test_an_empty_queue_is_still_truthy() -> None:
    # Owners are tested with `if scorer:`: a queue that is empty must not read as "no scorer".
    assert Recorder(queue_size=1, batch_size=1, interval_s=NEVER_S)


def test_put_back_keeps_what_fits_at_the_head_and_returns_the_rest() -> None:
    queue = Recorder(queue_size=4, batch_size=2, interval_s=NEVER_S)
    for n in (10, 11, 12):
        queue.put(n)
    assert queue.take_batch() == [10, 11]
    assert queue.put(13) and queue.put(14)  # the queue refilled while the batch was out
    assert queue.put_back([10, 11]) == [11]  # one place left: the head of the batch keeps it
    assert list(queue._queue) == [10, 12, 13, 14]


class SlowRecorder(Recorder):
    """A drain that takes a while, as a store write does: items keep arriving meanwhile."""

    async def drain_once(self) -> bool:
        self.batches.append(self.take_batch())
        await asyncio.sleep(0.005)
        return True


def test_under_steady_traffic_only_full_batches_are_drained() -> None:
    # Draining until empty after a wake wrote whatever arrived during the last write: many
    # small batches a second under load, each a transaction (bench/README.md, "Cost of the
    # prediction log").
    async def scenario() -> Recorder:
        queue = SlowRecorder(queue_size=10_000, batch_size=100, interval_s=NEVER_S)
        queue.start()
        for burst in range(100):
            for n in range(10):
                queue.put(burst * 10 + n)
            queue.wake_if_batch_ready()
            await asyncio.sleep(0.001)
        await queue.close()
        return queue

    queue = asyncio.run(scenario())
    assert len(queue.batches) >= 5  # the task drained while items were arriving
    assert {len(batch) for batch in queue.batches} == {100}
    drained = [n for batch in queue.batches for n in batch]
    assert drained + (queue.closed_with or []) == list(range(1000))  # in order, none lost
