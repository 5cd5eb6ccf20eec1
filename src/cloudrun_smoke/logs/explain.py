"""What the failure of a log wait says: the expected line, the closest lines seen, and why it ended.

A wait that failed must be diagnosable from its message alone (the run is over when it is read), so
it shows what was expected, the lines most like it, and lines that may explain it.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cloudrun_smoke.logs.lines import LogLine, LogMatch
from cloudrun_smoke.logs.pacing import GIVE_UP_AT
from cloudrun_smoke.logs.patterns import LogPattern
from cloudrun_smoke.logs.reads import Search, WatcherStats


def _about(where: Mapping[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in where.items()) or "any"


def closest_lines(
    lines: Sequence[LogLine], expected: LogPattern, where: Mapping[str, str], limit: int = 5
) -> list[LogLine]:
    """Lines naming the subject or of the expected kind; failing those, the lines most like the
    pattern's example."""
    anchors = [v for v in where.values() if v]
    related = [line for line in lines if any(a in line.text for a in anchors)]
    same_kind = [line for line in lines if expected.match(line.text) is not None and line not in related]
    if related or same_kind:
        return (related + same_kind)[-limit:]
    probe = expected.examples[0] if expected.examples else expected.forms[0].pattern.replace("\\", "")
    # Scored on the line's head: difflib on a megabyte-long line would take minutes.
    head = 4 * len(probe)
    scored = sorted(lines, key=lambda line: difflib.SequenceMatcher(None, probe, line.text[:head]).ratio())
    return scored[-limit:]


def timeout_message(
    expected: LogPattern,
    where: Mapping[str, str],
    waited: float,
    unnamed: Sequence[LogMatch],
    context: str,
) -> str:
    """The expected line did not come; ``unnamed``: failure lines meanwhile that name nobody."""
    beside = ""
    if unnamed:
        shown = "\n".join(f"    {m.line.short()}" for m in unnamed[:5])
        beside = (
            f"  {len(unnamed)} failure line(s) meanwhile name no thread and no user: perhaps ours, "
            f"perhaps another user's (not counted on their own):\n{shown}\n"
        )
    return (
        f"expected log line {expected.name!r} ({expected.description}) for {_about(where)}: not seen after "
        f"waiting {waited:.1f} s\n"
        f"  expected: {expected.describe()}\n" + beside + context
    )


def failure_message(
    expected: LogPattern, where: Mapping[str, str], bad: LogMatch, waited: float, context: str
) -> str:
    """A failure line naming the same subject came first."""
    return (
        f"while waiting for {expected.name!r} for {_about(where)}, failure line {bad.pattern!r} appeared"
        f" after {waited:.1f} s:\n    {bad.line.short()}\n" + context
    )


@dataclass(frozen=True)
class ReadState:
    """What the watcher's reads had done when a wait ended, for its message."""

    lines_seen: int
    stats: WatcherStats
    last_error: str
    throttled_in_a_row: int


def read_context(
    closest: Sequence[LogLine], reads: ReadState, search: Search | None, current_filter: str, hint: str
) -> str:
    """The part of every wait's failure that says what was read: closest lines, counts, the filter."""
    shown = "\n".join(f"    {line.short()}" for line in closest) or "    (none)"
    stats = reads.stats
    parts = [
        f"  closest lines seen:\n{shown}",
        f"  lines seen this run: {reads.lines_seen}; log reads: {stats.reads} entries:list "
        "requests (one per page)"
        + (f", {stats.empty_pages} of them empty pages" if stats.empty_pages else "")
        + (f"; last read failed: {reads.last_error}" if reads.last_error else ""),
    ]
    if reads.throttled_in_a_row >= GIVE_UP_AT:
        parts.append(
            f"  Cloud Logging answered 429 to {reads.throttled_in_a_row} reads in a row: the "
            "project's read quota is spent (by this run or another reader), so the wait gave up"
        )
    if search is not None and search.pages:
        parts.append(f"  {search.unfinished()}")
    parts.append(f"  filter: {current_filter}")
    if hint:
        parts.append(hint)
    return "\n".join(parts)
