"""The catalogue of log lines the checks wait for, in one place.

Each pattern has a stable name (what checks and smoke.toml refer to), one or more accepted forms
(the service's code and its runbook do not always agree), and named groups for the fields a check
correlates on (``thread_id``, ``user_id``, counts). Patterns search inside the line, so a plain-text
prefix (``2026-11-24 09:03:45,123 INFO [name]``) or a JSON ``message`` both match.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

_ID = r"[^\s:,;()\[\]]+"


@dataclass(frozen=True)
class LogPattern:
    name: str
    description: str
    forms: tuple[re.Pattern[str], ...]
    failure: bool = False

    def match(self, text: str) -> dict[str, str] | None:
        for form in self.forms:
            m = form.search(text)
            if m:
                return {k: v for k, v in m.groupdict().items() if v is not None}
        return None

    def describe(self) -> str:
        return " | ".join(f"/{f.pattern}/" for f in self.forms)


def _pattern(name: str, description: str, *forms: str, failure: bool = False) -> LogPattern:
    return LogPattern(name, description, tuple(re.compile(f) for f in forms), failure)


CATALOGUE: Mapping[str, LogPattern] = {
    p.name: p
    for p in (
        _pattern(
            "archive.enqueued",
            "the archive hook enqueued a consolidation",
            rf"\[Thread Archiving\] Consolidation enqueued for thread (?P<thread_id>{_ID})",
        ),
        _pattern(
            "archive.enqueue_failed",
            "the archive hook could not enqueue the consolidation",
            r"\[Thread Archiving\] Failed to enqueue consolidation: (?P<error>.*)",
            failure=True,
        ),
        _pattern(
            "queue.consolidating",
            "the task queue started consolidating the archived thread",
            rf"\[MemoryTaskQueue\] Consolidating archived thread (?P<thread_id>{_ID}) \(reason: (?P<reason>\w+)\)",
        ),
        _pattern(
            "queue.consolidated",
            "the task queue finished the consolidation",
            rf"\[MemoryTaskQueue\] Thread (?P<thread_id>{_ID}) consolidated: (?P<concepts>\d+) new concepts?",
        ),
        _pattern(
            "consolidation.error",
            "the consolidation of a thread failed",
            rf"Erreur consolidation thread (?P<thread_id>{_ID}): (?P<error>.*)",
            failure=True,
        ),
        _pattern(
            "queue.task_failed",
            "a consolidation task failed",
            r"Task consolidate_thread failed: (?P<error>.*)",
            failure=True,
        ),
        _pattern(
            "batch.processing",
            "the batch consolidation started",
            r"\[consolidate_archived\] Processing (?P<count>\d+) archived threads? \(force=(?P<force>\w+)\)",
        ),
        _pattern(
            "batch.thread_consolidated",
            "the batch consolidated one thread",
            rf"\[consolidate_archived\] Thread (?P<thread_id>{_ID}) consolidated: (?P<concepts>\d+) concepts?",
        ),
        _pattern(
            "batch.completed",
            "the batch consolidation finished",
            r"\[consolidate_archived\] Batch completed: (?P<consolidated>\d+) consolidated, "
            r"(?P<skipped>\d+) skipped, (?P<errors>\d+) errors?",
        ),
        _pattern(
            "preferences.saved",
            "preferences were persisted (any of the service's three forms)",
            # The runbook's form names user and thread; the analyzer's names the user; the path that
            # really persists names neither and is attributed by time.
            rf"\[analyzer\] Saved (?P<count>\d+) preferences? to vector DB \(user: (?P<user_id>{_ID}), "
            rf"thread: (?P<thread_id>{_ID})\)",
            rf"\[PreferenceExtractor\] Saved (?P<count>\d+)/(?P<candidates>\d+) preferences? to ChromaDB "
            rf"for user (?P<user_id>{_ID})",
            r"(?P<count>\d+) items? ajoutés/mis à jour dans 'memory_preferences'",
            r"(?P<count>\d+) préférences/intentions vectorisées",
        ),
        _pattern(
            "preferences.failed",
            "persisting preferences failed",
            r"Vectorisation préférences impossible: (?P<error>.*)",
            failure=True,
        ),
    )
}

# The fields that tie a line to a subject. A line that captures none of them "names nobody": in
# production it may be another user's, so it never fails a check on its own and satisfies one only with
# a second signal of the run's own (see logs.names_nobody and docs: "Correlating lines").
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
        result[name] = LogPattern(name, base.description, tuple(compiled), base.failure)
    return result
