"""The catalogue of log lines the checks wait for, in one place.

Each pattern has a stable name (what checks and smoke.toml refer to), one or more accepted forms
(the service's code and its runbook do not always agree), and named groups for the fields a check
correlates on (``thread_id``, ``user_id``, counts). Patterns search inside the line, so a plain-text
prefix (``2026-11-24 09:03:45,123 INFO [name]``) or a JSON ``message`` both match. Each form states
its search text and an example line by hand: deriving the text from the regex would need Python's
private ``re._parser``, and a stated example shows the reader what the line looks like.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

_ID = r"[^\s:,;()\[\]]+"


@dataclass(frozen=True)
class LogPattern:
    """A log line the checks wait for. Each form has its search text (a literal part of every line
    it matches: Cloud Logging narrows a read with it, ``textPayload:"..."``) and an example line;
    tests/unit/test_log_patterns.py proves the three agree. A form replaced per environment has no
    search text, and a read of it is not narrowed."""

    name: str
    description: str
    forms: tuple[re.Pattern[str], ...]
    failure: bool = False
    search: tuple[str, ...] = ()  # one literal per form, or () when unknown
    examples: tuple[str, ...] = ()  # one line per form

    def _search(self, text: str) -> re.Match[str] | None:
        return next((m for form in self.forms if (m := form.search(text))), None)

    def match(self, text: str) -> dict[str, str] | None:
        m = self._search(text)
        return None if m is None else {k: v for k, v in m.groupdict().items() if v is not None}

    def matched_text(self, text: str) -> str | None:
        """The part of ``text`` a form matched (the line without its logger's prefix)."""
        m = self._search(text)
        return None if m is None else m.group(0)

    def describe(self) -> str:
        return " | ".join(f"/{f.pattern}/" for f in self.forms)


@dataclass(frozen=True)
class Form:
    """One way the service writes a line: its regex, a literal every match contains, an example."""

    regex: str
    search: str
    example: str


def _pattern(name: str, description: str, *forms: Form, failure: bool = False) -> LogPattern:
    return LogPattern(
        name,
        description,
        tuple(re.compile(f.regex) for f in forms),
        failure,
        search=tuple(f.search for f in forms),
        examples=tuple(f.example for f in forms),
    )


CATALOGUE: Mapping[str, LogPattern] = {
    p.name: p
    for p in (
        _pattern(
            "archive.enqueued",
            "the archive hook enqueued a consolidation",
            Form(
                rf"\[Thread Archiving\] Consolidation enqueued for thread (?P<thread_id>{_ID})",
                "[Thread Archiving] Consolidation enqueued for thread",
                "[Thread Archiving] Consolidation enqueued for thread t-1",
            ),
        ),
        _pattern(
            "archive.enqueue_failed",
            "the archive hook could not enqueue the consolidation",
            Form(
                r"\[Thread Archiving\] Failed to enqueue consolidation: (?P<error>.*)",
                "[Thread Archiving] Failed to enqueue consolidation:",
                "[Thread Archiving] Failed to enqueue consolidation: queue is closed",
            ),
            failure=True,
        ),
        _pattern(
            "queue.consolidating",
            "the task queue started consolidating the archived thread",
            Form(
                rf"\[MemoryTaskQueue\] Consolidating archived thread (?P<thread_id>{_ID}) \(reason: (?P<reason>\w+)\)",
                "[MemoryTaskQueue] Consolidating archived thread",
                "[MemoryTaskQueue] Consolidating archived thread t-1 (reason: archived)",
            ),
        ),
        _pattern(
            "queue.consolidated",
            "the task queue finished the consolidation",
            Form(
                rf"\[MemoryTaskQueue\] Thread (?P<thread_id>{_ID}) consolidated: (?P<concepts>\d+) new concepts?",
                "[MemoryTaskQueue] Thread",
                "[MemoryTaskQueue] Thread t-1 consolidated: 2 new concepts",
            ),
        ),
        _pattern(
            "consolidation.error",
            "the consolidation of a thread failed",
            Form(
                rf"Erreur consolidation thread (?P<thread_id>{_ID}): (?P<error>.*)",
                "Erreur consolidation thread",
                "Erreur consolidation thread t-1: LLM unreachable",
            ),
            failure=True,
        ),
        _pattern(
            "queue.task_failed",
            "a consolidation task failed",
            Form(
                r"Task consolidate_thread failed: (?P<error>.*)",
                "Task consolidate_thread failed:",
                "Task consolidate_thread failed: LLM unreachable",
            ),
            failure=True,
        ),
        _pattern(
            "queue.stopped",
            "the task queue stopped (the instance is shutting down), dropping what it still held",
            Form(
                r"\[MemoryTaskQueue\] Stopped (?P<workers>\d+) workers?, (?P<dropped>\d+) pending tasks? dropped",
                "[MemoryTaskQueue] Stopped",
                "[MemoryTaskQueue] Stopped 1 workers, 2 pending tasks dropped",
            ),
        ),
        _pattern(
            "batch.processing",
            "the batch consolidation started",
            Form(
                r"\[consolidate_archived\] Processing (?P<count>\d+) archived threads? \(force=(?P<force>\w+)\)",
                "[consolidate_archived] Processing",
                "[consolidate_archived] Processing 3 archived threads (force=False)",
            ),
        ),
        _pattern(
            "batch.thread_consolidated",
            "the batch consolidated one thread",
            Form(
                rf"\[consolidate_archived\] Thread (?P<thread_id>{_ID}) consolidated: (?P<concepts>\d+) concepts?",
                "[consolidate_archived] Thread",
                "[consolidate_archived] Thread t-1 consolidated: 2 concepts",
            ),
        ),
        _pattern(
            "batch.completed",
            "the batch consolidation finished",
            Form(
                r"\[consolidate_archived\] Batch completed: (?P<consolidated>\d+) consolidated, "
                r"(?P<skipped>\d+) skipped, (?P<errors>\d+) errors?",
                "[consolidate_archived] Batch completed:",
                "[consolidate_archived] Batch completed: 2 consolidated, 1 skipped, 0 errors",
            ),
        ),
        _pattern(
            "preferences.saved",
            "preferences were persisted (any of the service's three forms)",
            # The runbook's form names user and thread; the analyzer's names the user; the path that
            # really persists names neither and is attributed by time.
            Form(
                rf"\[analyzer\] Saved (?P<count>\d+) preferences? to vector DB \(user: (?P<user_id>{_ID}), "
                rf"thread: (?P<thread_id>{_ID})\)",
                "to vector DB (user:",
                "[analyzer] Saved 2 preferences to vector DB (user: u-1, thread: t-1)",
            ),
            Form(
                rf"\[PreferenceExtractor\] Saved (?P<count>\d+)/(?P<candidates>\d+) preferences? to ChromaDB "
                rf"for user (?P<user_id>{_ID})",
                "[PreferenceExtractor] Saved",
                "[PreferenceExtractor] Saved 2/3 preferences to ChromaDB for user u-1",
            ),
            Form(
                r"(?P<count>\d+) items? ajoutés/mis à jour dans 'memory_preferences'",
                "ajoutés/mis à jour dans 'memory_preferences'",
                "2 items ajoutés/mis à jour dans 'memory_preferences'.",
            ),
            Form(
                r"(?P<count>\d+) préférences/intentions vectorisées",
                "préférences/intentions vectorisées",
                "2 préférences/intentions vectorisées.",
            ),
        ),
        _pattern(
            "preferences.failed",
            "persisting preferences failed",
            Form(
                r"Vectorisation préférences impossible: (?P<error>.*)",
                "Vectorisation préférences impossible:",
                "Vectorisation préférences impossible: duplicate ids",
            ),
            failure=True,
        ),
    )
}

# The fields that tie a line to a subject. A line that captures none of them "names nobody": in
# production it may be another user's, so it never fails a check on its own and satisfies one only with
# a second signal of the run's own (see cloudrun_smoke.logs.lines.names_nobody and docs: "Correlating lines").
SUBJECT_FIELDS: tuple[str, ...] = ("thread_id", "user_id")

# What ends a wait early: a failure line naming the same thread makes waiting for success pointless (a
# failure line that names nobody does not: it may be another user's; it is shown when the wait times out).
FAILURES_FOR: Mapping[str, tuple[str, ...]] = {
    "archive.enqueued": ("archive.enqueue_failed",),
    "queue.consolidating": ("archive.enqueue_failed",),
    "queue.consolidated": ("consolidation.error",),
    "preferences.saved": ("preferences.failed",),
}

# The contract's failure catalogue: ERROR/WARNING lines that mean a consolidation went wrong.
FAILURE_PATTERNS: tuple[str, ...] = tuple(name for name, p in CATALOGUE.items() if p.failure)


def pattern(name: str, catalogue: Mapping[str, LogPattern] | None = None) -> LogPattern:
    catalogue = CATALOGUE if catalogue is None else catalogue
    try:
        return catalogue[name]
    except KeyError:
        raise KeyError(f"no log pattern named {name!r}; known: {', '.join(sorted(catalogue))}") from None


def catalogue_with(overrides: Mapping[str, list[str]]) -> Mapping[str, LogPattern]:
    """The catalogue with some patterns' forms replaced (per environment, from ``smoke.toml``).

    A replacement must keep the captured fields the checks correlate on, or it would silently match
    every thread's line; that is checked here, before the run starts.
    """
    result = dict(CATALOGUE)
    for name, forms in overrides.items():
        if name not in CATALOGUE:
            raise ValueError(f"{name}: no log pattern of that name; known: {', '.join(sorted(CATALOGUE))}")
        base = CATALOGUE[name]
        needed = set().union(*(f.groupindex for f in base.forms)) & {"thread_id", "concepts", "count"}
        compiled = []
        for form in forms:
            try:
                regex = re.compile(form)
            except re.error as e:
                raise ValueError(f"{name}: not a valid regular expression {form!r}: {e}") from None
            missing = {"thread_id"} & needed - set(regex.groupindex)
            if missing:
                raise ValueError(f"{name}: form {form!r} must capture (?P<thread_id>...)")
            compiled.append(regex)
        # A replacement has no search text of its own: a read of it is not narrowed.
        result[name] = LogPattern(name, base.description, tuple(compiled), base.failure)
    return result
