"""The runbook's consolidation figures over a window, from the service's own log lines.

Each ``Consolidation enqueued for thread X`` is an attempt; its outcome is the queue's
``Thread X consolidated: N`` line (paired by thread id, in order), made a failure by a
``Erreur consolidation thread X`` line or by an unnamed ``Task consolidate_thread failed`` line. The
unnamed line is given to the attempt it follows on the same instance (the service logs it right after
that task's own lines), else to the oldest attempt on that instance still without an outcome (each
instance's queue is first in, first out). An attempt without an outcome is *pending* while younger
than the grace period and *lost* (a failure) after it. A failure to enqueue is an attempt that failed.

An attempt without an outcome is also lost, whatever its age, when its instance was shut down: Cloud Run
stops an instance whose revision loses its traffic, or that scales in, with SIGTERM and SIGKILL 10 s later
(container runtime contract, "Instance shutdown"), and what its in-memory queue held is gone. Cloud Run
documents no log entry for that shutdown, so it is read from the lines themselves. The service's own
``[MemoryTaskQueue] Stopped N workers, M pending tasks dropped`` says it outright: what its instance
enqueued before that line and never finished is lost, whichever revision it belongs to. Without that line
(a process killed before it could log), the instance logged nothing after its last line while other
instances logged for more than the grace period (:data:`SHUTDOWN_GRACE`) beyond it. Silence alone does
not prove a shutdown (a quiet instance may be waiting on an LLM, or starved of CPU between requests), so
that rule applies only to revisions that no longer serve: those in ``still_serving`` (traffic or a tag,
from discovery) keep the grace period.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from cloudrun_smoke.logs.lines import LogLine
from cloudrun_smoke.logs.patterns import LogPattern

SAME_TASK = timedelta(seconds=2)  # a task's failure line follows its own outcome line this closely
SHUTDOWN_GRACE = timedelta(seconds=10)  # Cloud Run: SIGKILL 10 s after SIGTERM; nothing logged after


@dataclass
class Attempt:
    thread_id: str
    instance: str
    enqueued_at: datetime
    finished_at: datetime | None = None  # the queue's "consolidated" line
    concepts: int | None = None  # N of "consolidated: N new concepts"
    error_at: datetime | None = None  # a failure line attributed to it
    task_failed: bool = False
    instance_silent_from: datetime | None = None  # lost with its instance: the instance's last line
    stop_line: str = ""  # ... and the queue's own stop line, when the instance logged one
    revision: str = ""  # of the enqueue line

    @property
    def failed(self) -> bool:
        return self.error_at is not None or self.task_failed

    @property
    def last_line_at(self) -> datetime | None:
        return max((t for t in (self.finished_at, self.error_at) if t is not None), default=None)


@dataclass
class ConsolidationStats:
    attempts: list[Attempt] = field(default_factory=list)
    enqueue_failures: int = 0
    unattributed_failures: int = 0  # failure lines of tasks enqueued before the window
    consolidated_threads: set[str] = field(default_factory=set)  # queue or batch, without a failure
    preferences_saved: int = 0
    preference_lines: int = 0
    lost: int = 0
    pending: int = 0

    @property
    def lost_with_instance(self) -> list[Attempt]:
        """Attempts lost because their instance was shut down with them queued (see the module)."""
        return [a for a in self.attempts if a.instance_silent_from is not None]

    def shutdown_losses(self) -> str:
        """The lost attempts per stopped instance, for a failure message ('' when none)."""
        by_instance: dict[str, list[Attempt]] = {}
        for a in self.lost_with_instance:
            by_instance.setdefault(a.instance, []).append(a)
        parts = []
        for instance, attempts in by_instance.items():
            silent = attempts[0].instance_silent_from
            assert silent is not None
            threads = ", ".join(a.thread_id for a in attempts)
            evidence = (
                f"logged {attempts[0].stop_line!r} at {silent:%H:%M:%S} UTC"
                if attempts[0].stop_line
                else f"logged nothing after {silent:%H:%M:%S} UTC while other instances went on"
            )
            parts.append(
                f"instance {instance} {evidence} (shut down: traffic moved away or it scaled in) "
                f"with thread(s) {threads} still queued"
            )
        if not parts:
            return ""
        return (
            f"{len(self.lost_with_instance)} lost at an instance shutdown: "
            + "; ".join(parts)
            + ". Cloud Run sends SIGTERM and kills the container 10 s later: the service must finish (or "
            "persist) its queue on SIGTERM"
        )

    @property
    def queue_times(self) -> list[float]:
        """Seconds from enqueued to consolidated, per attempt that has both lines."""
        return [
            (a.finished_at - a.enqueued_at).total_seconds()
            for a in self.attempts
            if a.finished_at is not None
        ]

    @property
    def tried(self) -> int:
        """The denominator of the failure rate: every attempt, pending ones included."""
        return len(self.attempts) + self.enqueue_failures + self.unattributed_failures

    @property
    def failed(self) -> int:
        return (
            sum(1 for a in self.attempts if a.failed)
            + self.lost
            + self.enqueue_failures
            + self.unattributed_failures
        )

    @property
    def failure_pct(self) -> float | None:
        return 100.0 * self.failed / self.tried if self.tried else None


def _fields(p: LogPattern, line: LogLine) -> dict[str, str] | None:
    return p.match(line.text)


def _same_instance(a: str, b: str) -> bool:
    return not a or not b or a == b


def consolidation_stats(
    lines: Sequence[LogLine],
    catalogue: Mapping[str, LogPattern],
    *,
    end: datetime,
    grace: float,
    still_serving: Collection[str] = (),
) -> ConsolidationStats:
    """The figures of ``lines`` (any order) as of ``end``: see the module's docstring for the rules."""
    stats = ConsolidationStats()
    by_thread: dict[str, list[Attempt]] = {}
    task_failures: list[LogLine] = []
    batch_threads: set[str] = set()
    errors: list[tuple[str, LogLine]] = []
    finished: list[tuple[str, LogLine, int]] = []
    preference_forms: dict[int, int] = {}
    stops: dict[str, tuple[datetime, str]] = {}  # instance -> its queue's first stop line: when, what
    p = catalogue
    for line in sorted(lines, key=lambda x: (x.timestamp, x.insert_id)):
        if (f := _fields(p["archive.enqueued"], line)) is not None:
            attempt = Attempt(f["thread_id"], line.instance_id, line.timestamp, revision=line.revision)
            by_thread.setdefault(attempt.thread_id, []).append(attempt)
            stats.attempts.append(attempt)
        elif _fields(p["archive.enqueue_failed"], line) is not None:
            stats.enqueue_failures += 1
        elif (f := _fields(p["queue.consolidated"], line)) is not None:
            finished.append((f["thread_id"], line, int(f.get("concepts") or 0)))
        elif (f := _fields(p["consolidation.error"], line)) is not None:
            errors.append((f["thread_id"], line))
        elif _fields(p["queue.task_failed"], line) is not None:
            task_failures.append(line)
        elif (stop_text := p["queue.stopped"].matched_text(line.text)) is not None:
            stops.setdefault(line.instance_id, (line.timestamp, stop_text))
        elif (f := _fields(p["batch.thread_consolidated"], line)) is not None:
            batch_threads.add(f["thread_id"])
        elif (f := _fields(p["preferences.saved"], line)) is not None:
            stats.preference_lines += 1
            form = next(i for i, r in enumerate(p["preferences.saved"].forms) if r.search(line.text))
            preference_forms[form] = preference_forms.get(form, 0) + int(f.get("count", "0"))
    for thread_id, line, concepts in finished:  # the first open attempt enqueued before it
        open_ = [a for a in by_thread.get(thread_id, []) if a.finished_at is None]
        attempt = next((a for a in open_ if a.enqueued_at <= line.timestamp), None)
        if attempt is not None:
            attempt.finished_at = line.timestamp
            attempt.concepts = concepts
    failed_threads = set()
    for thread_id, line in errors:  # the latest attempt enqueued before it
        failed_threads.add(thread_id)
        before = [a for a in by_thread.get(thread_id, []) if a.enqueued_at <= line.timestamp]
        if before:
            before[-1].error_at = line.timestamp
    for line in task_failures:
        attempt = _owner(stats.attempts, line)
        if attempt is None:
            stats.unattributed_failures += 1
        else:
            attempt.task_failed = True
    silent_from = _last_lines(lines)
    for attempt in stats.attempts:
        if attempt.failed:
            continue
        if attempt.finished_at is not None:
            stats.consolidated_threads.add(attempt.thread_id)
        elif (stop := stops.get(attempt.instance)) is not None and attempt.enqueued_at <= stop[0]:
            attempt.instance_silent_from, attempt.stop_line = stop
            stats.lost += 1
        elif attempt.revision not in still_serving and (stopped := _stopped_since(attempt, silent_from)):
            attempt.instance_silent_from = stopped
            stats.lost += 1
        elif (end - attempt.enqueued_at).total_seconds() > grace:
            stats.lost += 1
        else:
            stats.pending += 1
    stats.consolidated_threads |= batch_threads - failed_threads
    # A save may be logged in two forms (the Chroma path writes "ajoutés/mis à jour" then "vectorisées"):
    # the form that saw the most is a lower bound of what was saved, never a double count.
    stats.preferences_saved = max(preference_forms.values(), default=0)
    return stats


def _last_lines(lines: Sequence[LogLine]) -> dict[str, datetime]:
    """Each instance's last line."""
    last: dict[str, datetime] = {}
    for line in lines:
        if line.instance_id and line.timestamp > last.get(line.instance_id, line.timestamp - SAME_TASK):
            last[line.instance_id] = line.timestamp
    return last


def _stopped_since(attempt: Attempt, last: Mapping[str, datetime]) -> datetime | None:
    """The last line of the attempt's instance when that instance was shut down (see the module)."""
    mine = last.get(attempt.instance)
    if mine is None:
        return None
    others = max((t for i, t in last.items() if i != attempt.instance), default=None)
    return mine if others is not None and others - mine > SHUTDOWN_GRACE else None


def _owner(attempts: Sequence[Attempt], failure: LogLine) -> Attempt | None:
    """The attempt an unnamed task failure belongs to (see the module's docstring)."""
    here = [
        a
        for a in attempts
        if not a.task_failed
        and a.enqueued_at <= failure.timestamp
        and _same_instance(a.instance, failure.instance_id)
    ]
    # Only an attempt that ended badly (a failure line, or nothing learnt) can be the failed task.
    just_before = [
        a
        for a in here
        if (a.error_at is not None or a.concepts == 0)
        and a.last_line_at is not None
        and timedelta(0) <= failure.timestamp - a.last_line_at <= SAME_TASK
    ]
    if just_before:
        return max(just_before, key=lambda a: a.last_line_at or a.enqueued_at)
    return next((a for a in here if a.finished_at is None and a.error_at is None), None)
