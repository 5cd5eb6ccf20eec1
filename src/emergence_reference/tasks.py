"""The in-process asynchronous task queue (the public service's ``MemoryTaskQueue``).

An ``asyncio.Queue`` drained by worker tasks started in the app's lifespan: the archive request returns
at once and the consolidation happens afterwards. Like the public service's queue it is not durable: tasks
still pending at shutdown are dropped (and counted in the log), unless ``stop`` is given time to drain
them first (the ``shutdown-drains`` variant: Cloud Run leaves 10 s between SIGTERM and SIGKILL).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from emergence_reference import faults as F
from emergence_reference.consolidation import Consolidator
from emergence_reference.faults import FaultSet

logger = logging.getLogger(__name__)

CONSOLIDATE_THREAD = "consolidate_thread"


@dataclass(frozen=True)
class Task:
    kind: str
    payload: Mapping[str, Any]
    enqueued_at: float = field(default_factory=time.monotonic)


Handler = Callable[[Task], Awaitable[None]]


class QueueNotRunningError(RuntimeError):
    pass


class ConsolidationFailedError(RuntimeError):
    """A consolidation task that ended with its thread unconsolidated."""


class EveryNth:
    """Deterministic selection of a share of events: every ``round(1/share)``-th one (none at 0)."""

    def __init__(self, share: float) -> None:
        self.period = max(1, round(1 / share)) if share > 0 else 0
        self.count = 0

    def due(self) -> bool:
        self.count += 1
        return self.period > 0 and self.count % self.period == 0


class TaskQueue:
    def __init__(self, handlers: Mapping[str, Handler], workers: int = 2) -> None:
        self._handlers = dict(handlers)
        self._worker_count = workers
        self._queue: asyncio.Queue[Task] = asyncio.Queue()
        self._workers: list[asyncio.Task[None]] = []
        self.refuse: str | None = None
        """When set, ``enqueue`` raises with this reason (the ``enqueue-fails`` fault)."""

    @property
    def running(self) -> bool:
        return bool(self._workers)

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    async def start(self) -> None:
        self._workers = [
            asyncio.create_task(self._work(n), name=f"memory-task-worker-{n}")
            for n in range(self._worker_count)
        ]
        logger.info("[MemoryTaskQueue] Started %d workers", self._worker_count)

    def enqueue(self, task: Task) -> None:
        if self.refuse is not None:
            raise QueueNotRunningError(self.refuse)
        if task.kind not in self._handlers:
            raise ValueError(f"no handler for task kind {task.kind!r}")
        if not self.running:
            raise QueueNotRunningError("the task queue is not running")
        self._queue.put_nowait(task)

    async def stop(self, drain_seconds: float = 0.0) -> None:
        """Cancel the workers (a task in progress is interrupted) and drop what is still queued; with
        ``drain_seconds``, first let the workers finish what is queued for at most that long."""
        if drain_seconds > 0 and self._workers:
            logger.info(
                "[MemoryTaskQueue] Draining %d queued tasks before shutdown (at most %gs)",
                self._queue.qsize(),
                drain_seconds,
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._queue.join(), drain_seconds)
        workers, self._workers = self._workers, []
        for worker in workers:
            worker.cancel()
        for worker in workers:
            with contextlib.suppress(asyncio.CancelledError):
                await worker
        dropped = 0
        while not self._queue.empty():
            self._queue.get_nowait()
            dropped += 1
        logger.info("[MemoryTaskQueue] Stopped %d workers, %d pending tasks dropped", len(workers), dropped)

    async def join(self) -> None:
        await self._queue.join()

    async def _work(self, number: int) -> None:
        while True:
            task = await self._queue.get()
            started = time.monotonic()
            try:
                await self._handlers[task.kind](task)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.error("Task %s failed: %s", task.kind, exc, exc_info=True)
            else:
                elapsed = time.monotonic() - started
                logger.info("Worker %d completed %s in %.2fs", number, task.kind, elapsed)
            finally:
                self._queue.task_done()


def memory_handlers(consolidator: Consolidator, faults: FaultSet) -> dict[str, Handler]:
    """The handlers of the memory tasks; each logs what it did with the figures the store reported."""
    failing = (
        EveryNth(faults.value(F.CONSOLIDATION_FAILS_SOME)) if faults.on(F.CONSOLIDATION_FAILS_SOME) else None
    )
    neighbours_failing = EveryNth(1 / 3) if faults.on(F.NEIGHBOURS_FAIL) else None

    async def consolidate_thread(task: Task) -> None:
        thread_id = str(task.payload["thread_id"])
        reason = task.payload.get("reason", "archiving")
        if faults.on(F.QUEUE_SLOW):
            await asyncio.sleep(faults.value(F.QUEUE_SLOW))
        # The consolidation-wrong-thread fault: the lines name a thread the queue never consolidated.
        named = uuid.uuid4().hex if faults.on(F.CONSOLIDATION_WRONG_THREAD) else thread_id
        logger.info("[MemoryTaskQueue] Consolidating archived thread %s (reason: %s)", named, reason)
        if faults.on(F.CONSOLIDATION_HANGS):
            await asyncio.Event().wait()  # never set: the task ends only when the worker is cancelled
        # consolidation-fails-some: the chosen tasks get an LLM answer that is not JSON.
        user_id = str(task.payload["user_id"])
        neighbour_fails = (
            neighbours_failing is not None and F.is_neighbour(user_id) and neighbours_failing.due()
        )
        llm_error = (
            f"invalid LLM response for thread {thread_id}: Expecting value: line 1 column 1 (char 0)"
            if (failing is not None and failing.due()) or neighbour_fails
            else None
        )
        result = await consolidator.consolidate_thread(thread_id, user_id, llm_error=llm_error)
        logger.info("[MemoryTaskQueue] Thread %s consolidated: %d new concepts", named, result.new_concepts)
        if llm_error is not None:
            raise ConsolidationFailedError(result.error)

    return {CONSOLIDATE_THREAD: consolidate_thread}
