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
    )
}

# What ends a wait early: a failure line for the same thread makes waiting for success pointless.
FAILURES_FOR: Mapping[str, tuple[str, ...]] = {
    "archive.enqueued": ("archive.enqueue_failed",),
    "queue.consolidating": ("archive.enqueue_failed",),
    "queue.consolidated": ("consolidation.error",),
}


def pattern(name: str) -> LogPattern:
    try:
        return CATALOGUE[name]
    except KeyError:
        raise KeyError(f"no log pattern named {name!r}; known: {', '.join(sorted(CATALOGUE))}") from None
