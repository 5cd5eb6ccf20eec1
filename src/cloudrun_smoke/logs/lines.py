"""Log lines as the checks see them: one entry's text, severity and origin, and what a pattern read in it.

A line that names no thread and no user may, in production, be another user's: it never fails a check
on its own and satisfies one only by time; such lines are kept as :class:`Unattributed` for the verdict.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from cloudrun_smoke.logs.patterns import SUBJECT_FIELDS, LogPattern
from cloudrun_smoke.report.excerpt import one_line
from cloudrun_smoke.timeutil import format_rfc3339

_TEXT_LEVEL = re.compile(r"\b(DEBUG|INFO|NOTICE|WARNING|WARN|ERROR|CRITICAL|FATAL)\b")

UNCONFIRMED = "attributed by time, unconfirmed"


@dataclass(frozen=True)
class LogLine:
    insert_id: str
    timestamp: datetime
    receive_timestamp: datetime | None
    severity: str
    text: str
    log_name: str
    revision: str = ""
    instance_id: str = ""
    seen_at: float = 0.0  # wall clock when this run first saw it

    def short(self) -> str:
        """The line for a diagnosis: one line, bounded, control characters escaped (a service logs anything)."""
        return f"{format_rfc3339(self.timestamp)} {self.severity:<7} {one_line(self.text, 240)}"


@dataclass(frozen=True)
class LogMatch:
    pattern: str
    line: LogLine
    fields: Mapping[str, str]


def matches_in(
    lines: Iterable[LogLine], expected: LogPattern, where: Mapping[str, str], since: datetime | None
) -> list[LogMatch]:
    """The lines of pattern ``expected`` whose fields equal ``where``, stamped at or after ``since``,
    in the order given (the watcher keeps its lines in timestamp order)."""
    matches = []
    for line in lines:
        if since is not None and line.timestamp < since:
            continue
        fields = expected.match(line.text)
        if fields is not None and all(fields.get(k) == v for k, v in where.items()):
            matches.append(LogMatch(expected.name, line, fields))
    return matches


def names_nobody(match: LogMatch) -> bool:
    """A line that names no thread and no user: in production it may be another user's."""
    return not any(k in match.fields for k in SUBJECT_FIELDS)


@dataclass(frozen=True)
class Unattributed:
    """A line that names nobody, reported beside the verdict: a failure line that fell inside the run's
    window (never counted against the run on its own), or a line that satisfied a check by time alone."""

    kind: str  # "failure" | "unconfirmed"
    line: LogLine
    check: str = ""
    note: str = ""

    def describe(self) -> str:
        what = f"{self.check}: {UNCONFIRMED}" if self.kind == "unconfirmed" else "failure line naming nobody"
        return f"{what}{'; ' + self.note if self.note else ''}: {self.line.short()}"

    def as_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "check": self.check, "note": self.note, "line": self.line.short()}


def line_severity(severity: str, text: str) -> str:
    """The entry's severity, or for plain-text lines (Cloud Run gives them none) the level in the text."""
    if severity and severity != "DEFAULT":
        return severity
    m = _TEXT_LEVEL.search(text[:80])
    if not m:
        return "DEFAULT"
    return {"WARN": "WARNING", "FATAL": "CRITICAL"}.get(m.group(1), m.group(1))
