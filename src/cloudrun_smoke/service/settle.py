"""Before a per-run user's memory is cleared, the consolidations the run set off must have ended.

Archiving hands a thread to the service's queue; its consolidation writes concepts and preferences
to the user's memory seconds later. A run that ends early (a failed check, Ctrl-C) and clears the
memory at once would leave whatever the queue writes afterwards. The queue's end lines say when the
work is done: teardown waits for them, bounded, and reports what it could not confirm. A thread whose
enqueue line never came is waited for only until such a line would have surfaced.
"""

from __future__ import annotations

import contextlib

from cloudrun_smoke.logs.expectations import Expectation, LogExpectationFailed
from cloudrun_smoke.logs.ingestion_lag import MeasuredWindow
from cloudrun_smoke.logs.watcher import LogWatcher
from cloudrun_smoke.service.users import Settle

END = "queue.consolidated"  # its failure lines (consolidation or task failed) end the work too
ENQUEUED, STARTED = "archive.enqueued", "queue.consolidating"


def queue_settled(watcher: LogWatcher, grace: float) -> Settle:
    """A :data:`Settle` reading the run's log watcher: at most ``grace`` seconds of waiting per thread,
    the run's own waits for it included (all threads are waited for at once)."""

    def end_of(thread_id: str) -> Expectation:
        # The run's own waits for this end count: ``grace`` is the whole wait, not an extra one.
        timeout = max(0.0, grace - _waited(watcher, thread_id))
        return watcher.expect_later(END, {"thread_id": thread_id}, timeout=timeout, record=False)

    def settle(thread_ids: list[str]) -> list[str]:
        # A thread whose enqueue line the run waited out in vain: watched only as long as a line
        # written before now takes to surface (the absence check's measured window); if one does, its
        # consolidation is waited for like the others'.
        doubtful = {
            t: watcher.expect_absent(ENQUEUED, {"thread_id": t}, window=MeasuredWindow(cap=grace))
            for t in thread_ids
            if _enqueue_waited_out(watcher, t)
        }
        waits = [(t, end_of(t)) for t in thread_ids if t not in doubtful]
        # A failure line ends the work too (the checks report it); a second Ctrl-C stops the waiting:
        # the memory is cleared now, and the summary says what may still come.
        with contextlib.suppress(KeyboardInterrupt):
            for thread_id, absence in doubtful.items():
                with contextlib.suppress(LogExpectationFailed):
                    absence.result()
                if absence.match is not None:  # enqueued after all
                    waits.append((thread_id, end_of(thread_id)))
            for _, wait in waits:
                with contextlib.suppress(LogExpectationFailed):
                    wait.result()
        unsettled = [t for t, w in waits if not w.done or w.expired]
        unsettled += [t for t, absence in doubtful.items() if not absence.done]
        return [
            f"thread {thread_id}: its consolidation had not ended when the memory of its user was cleared "
            "(no end line seen); it may still write to that memory"
            for thread_id in unsettled
        ]

    return settle


def _enqueue_waited_out(watcher: LogWatcher, thread_id: str) -> bool:
    """No line of the thread's consolidation seen (enqueue, start or end), and no wait of the run for
    its enqueue line still pending: the archive may have enqueued nothing (the run waited in vain, or
    waited only for later lines, as the queue-time samples do)."""
    where = {"thread_id": thread_id}
    if any(watcher.find(name, where) for name in (ENQUEUED, STARTED, END)):
        return False
    own = [e for e in watcher.expectations if e.pattern.name == ENQUEUED and e.where == where]
    return all(e.expired for e in own)


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
