"""Which revision the one under test is compared with, and over which windows.

Concurrent mode, preferred: another revision serves traffic beside the one under test (a canary split),
so both are judged over the same window, on the same kind of traffic, with no time-of-day bias
(Kayenta and Argo Rollouts compare a canary with a baseline run at the same time). Sequential mode,
else: the revision created just before the one under test, which served before it, over a window of the
same length that ends when the revision under test was created (a revision that never became Ready
never served, and is skipped).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from cloudrun_smoke.gcp.traffic import TrafficShare

Mode = Literal["concurrent", "sequential"]


@dataclass(frozen=True)
class Revision:
    name: str
    created: datetime
    ready: bool = True  # a revision that never became Ready never served: it is no baseline


@dataclass(frozen=True)
class Span:
    start: datetime
    end: datetime

    def describe(self) -> str:
        seconds = (self.end - self.start).total_seconds()
        return f"{self.start.isoformat()} to {self.end.isoformat()} ({seconds:.0f}s)"


@dataclass(frozen=True)
class Pairing:
    """The two sides of the comparison: the candidate (under test) and its baseline, each over its span."""

    mode: Mode
    candidate: str
    baseline: str
    candidate_span: Span
    baseline_span: Span
    why: str  # how the baseline was chosen, for the output

    def describe(self) -> str:
        if self.mode == "concurrent":
            return (
                f"{self.candidate} against {self.baseline}, concurrent: both over "
                f"{self.candidate_span.describe()}; {self.why}"
            )
        return (
            f"{self.candidate} over {self.candidate_span.describe()} against {self.baseline} over "
            f"{self.baseline_span.describe()}, sequential: {self.why}"
        )


class NoBaseline(Exception):
    """Nothing to compare with: the reason, for the skip."""


def pair(
    candidate: Revision,
    traffic: Iterable[TrafficShare],
    revisions: Iterable[Revision],
    now: datetime,
    longest: timedelta,
) -> Pairing:
    """The pairing for ``candidate``; ``longest`` caps the candidate's window (it starts at the
    candidate's creation otherwise). Raises NoBaseline."""
    span = Span(max(candidate.created, now - longest), now)
    if span.end <= span.start:
        raise NoBaseline(f"{candidate.name} was created at {candidate.created.isoformat()}, not before now")
    shares: dict[str, int] = {}
    for share in traffic:
        if share.revision and share.revision != candidate.name and share.percent > 0:
            shares[share.revision] = shares.get(share.revision, 0) + share.percent
    if shares:
        baseline = max(shares, key=lambda r: (shares[r], r))
        others = f" (of {len(shares)} other revisions serving)" if len(shares) > 1 else ""
        why = f"{baseline} serves {shares[baseline]} % of the traffic beside it{others}"
        return Pairing("concurrent", candidate.name, baseline, span, span, why)
    earlier = [r for r in revisions if r.created < candidate.created and r.name != candidate.name and r.ready]
    if not earlier:
        raise NoBaseline(
            f"no other revision serves traffic and none was created before {candidate.name} that became Ready"
        )
    baseline_revision = max(earlier, key=lambda r: r.created)
    length = span.end - span.start
    before = Span(candidate.created - length, candidate.created)
    why = (
        f"no other revision serves traffic; {baseline_revision.name} is the revision created just before "
        f"it, over a window of the same length before {candidate.name} was created"
    )
    return Pairing("sequential", candidate.name, baseline_revision.name, span, before, why)
