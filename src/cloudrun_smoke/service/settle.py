"""Before a per-run user's memory is cleared, the consolidations the run set off must have ended.

Archiving hands a thread to the service's queue; its consolidation writes concepts and preferences
to the user's memory seconds later. A run that ends early (a failed check, Ctrl-C) and clears the
memory at once would leave whatever the queue writes afterwards. The queue's end lines say when the
work is done: teardown waits for them, bounded, and reports what it could not confirm.
"""

from __future__ import annotations

import contextlib

from cloudrun_smoke.logs.expectations import Expectation, LogExpectationFailed
from cloudrun_smoke.logs.watcher import LogWatcher
from cloudrun_smoke.service.users import Settle

END = "queue.consolidated"  # its failure lines (consolidation or task failed) end the work too


def queue_settled(watcher: LogWatcher, grace: float) -> Settle:
    """A :data:`Settle` reading the run's log watcher: at most ``grace`` seconds of waiting per thread,
    the run's own waits for it included (all threads are waited for at once)."""

    def settle(thread_ids: list[str]) -> list[str]:
        waits: list[tuple[str, Expectation]] = []
        for thread_id in thread_ids:
            # The run's own waits for this end count: ``grace`` is the whole wait, not an extra one.
            timeout = max(0.0, grace - _waited(watcher, thread_id))
            wait = watcher.expect_later(END, {"thread_id": thread_id}, timeout=timeout, record=False)
            waits.append((thread_id, wait))
        # A failure line ends the work too (the checks report it); a second Ctrl-C stops the waiting:
        # the memory is cleared now, and the summary says what may still come.
        with contextlib.suppress(KeyboardInterrupt):
            for _, wait in waits:
                with contextlib.suppress(LogExpectationFailed):
                    wait.result()
        return [
            f"thread {thread_id}: its consolidation had not ended when the memory of its user was cleared "
            "(no end line seen); it may still write to that memory"
            for thread_id, wait in waits
            if not wait.done or wait.expired
        ]

    return settle


def _waited(watcher: LogWatcher, thread_id: str) -> float:
    """How long the run already waited for the end of this thread's consolidation."""
    return max(
        (
            e.waited()
            for e in watcher.expectations
            if e.pattern.name == END and e.where.get("thread_id") == thread_id
        ),
        default=0.0,
    )
