"""The regression verdict: each figure of the revision under test (the candidate) beside the baseline's.

A figure fails only when the candidate is worse by more than its margin **and**, where a test applies,
significantly so at ``alpha`` after Holm's correction across the run's tested figures (Kayenta's judge
asks both: an effect that matters, and one that is not noise). A maximum has no significance test: its
margin alone decides. Too few samples on either side skip the figure, saying what they could have shown.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Literal

from cloudrun_smoke.regression.stats import (
    holm,
    proportion_test,
    rank_test,
    share,
    smallest_rank_p,
    smallest_share_rise,
)

Kind = Literal["rank", "share", "maximum"]
PASSED, FAILED, SKIPPED = "passed", "failed", "skipped"


@dataclass(frozen=True)
class Side:
    """One revision's samples of a figure: ``values`` (rank, maximum) or ``events`` of ``trials`` (share)."""

    revision: str
    values: tuple[float, ...] = ()
    events: int = 0
    trials: int = 0
    samples: int = 0  # a maximum: the points it was taken over (its one value says nothing of them)

    @property
    def count(self) -> int:
        if self.samples:
            return self.samples
        return len(self.values) if not self.trials else self.trials


@dataclass(frozen=True)
class Comparison:
    """A figure to compare. ``margin``: for ``rank``, the ratio of medians the candidate may reach
    (1.2: 20 % slower); for ``share`` and ``maximum``, the percentage points it may add."""

    name: str
    kind: Kind
    unit: str
    baseline: Side
    candidate: Side
    margin: float
    min_samples: int


@dataclass(frozen=True)
class Judged:
    comparison: Comparison
    outcome: str  # PASSED, FAILED or SKIPPED
    effect: float | None  # ratio (rank) or percentage points (share, maximum)
    p_value: float | None = None
    adjusted_p: float | None = None
    detail: str = ""  # the statistic, or why the figure was skipped

    def describe(self, alpha: float) -> str:
        """One paragraph: both sides, the effect against its margin, the test, the verdict."""
        c = self.comparison
        sides = f"candidate {_side(c, c.candidate)}; baseline {_side(c, c.baseline)}"
        if self.outcome == SKIPPED:
            return f"{c.name}: skipped: {self.detail} ({sides})"
        effect = _effect(c, self.effect)
        test = ""
        if self.p_value is not None and self.adjusted_p is not None:
            test = f"; {self.detail}, Holm-adjusted p = {self.adjusted_p:.2g} (alpha {alpha:g})"
        why = {
            FAILED: "worse beyond its margin" + (", significantly" if test else ""),
            PASSED: _passed_because(self, alpha),
        }[self.outcome]
        return f"{c.name}: {self.outcome}: {why}: {effect}{test} ({sides})"


def judge(comparisons: list[Comparison], alpha: float) -> list[Judged]:
    """Every comparison judged; the tested ones' p-values Holm-adjusted together."""
    first: list[Judged] = [_measure(c, alpha) for c in comparisons]
    tested = [i for i, j in enumerate(first) if j.p_value is not None]
    adjusted = holm([first[i].p_value or 1.0 for i in tested])
    for i, p in zip(tested, adjusted, strict=True):
        j = first[i]
        worse = _beyond_margin(j.comparison, j.effect)
        outcome = FAILED if worse and p < alpha else PASSED
        first[i] = Judged(j.comparison, outcome, j.effect, j.p_value, p, j.detail)
    return first


def _measure(c: Comparison, alpha: float) -> Judged:
    b, k = c.baseline, c.candidate
    if c.kind == "share":
        if min(b.trials, k.trials) < max(1, c.min_samples):
            rise = smallest_share_rise((b.events, b.trials), k.trials, alpha)
            could = "no rise" if rise >= 1.0 else f"a rise of {rise * 100:.2g} points or more"
            return Judged(c, SKIPPED, None, detail=f"{_too_few(c)}; with them {could} would be significant")
        test = proportion_test((b.events, b.trials), (k.events, k.trials))
        return Judged(c, PASSED, test.difference * 100, test.p_value, detail=test.describe())
    if min(b.count, k.count) < max(1, c.min_samples) or not (b.values and k.values):
        detail = _too_few(c)
        if c.kind == "rank":
            p = smallest_rank_p(len(b.values), len(k.values))
            detail += f"; with them the smallest p-value a rank test can give is {p:.2g}"
        return Judged(c, SKIPPED, None, detail=detail)
    if c.kind == "maximum":  # no test: the margin decides
        effect = max(k.values) - max(b.values)
        return Judged(
            c, FAILED if _beyond_margin(c, effect) else PASSED, effect, detail="maximum: margin only"
        )
    base = statistics.median(b.values)
    ratio = statistics.median(k.values) / base if base > 0 else float("inf")
    test = rank_test(b.values, k.values)
    return Judged(c, PASSED, ratio, test.p_value, detail=test.describe())


def _beyond_margin(c: Comparison, effect: float | None) -> bool:
    return effect is not None and effect > c.margin


def _too_few(c: Comparison) -> str:
    return f"too few samples: baseline {c.baseline.count}, candidate {c.candidate.count} (min_samples {c.min_samples})"


def _side(c: Comparison, side: Side) -> str:
    if c.kind == "share":
        return f"{side.revision} {share(side.events, side.trials) * 100:.2f} % of {side.trials}"
    if not side.values:
        return f"{side.revision} no sample"
    if c.kind == "maximum":
        return f"{side.revision} max {max(side.values):.1f} {c.unit} over {side.count} samples"
    return f"{side.revision} median {statistics.median(side.values):.4g} {c.unit} over {len(side.values)}"


def _effect(c: Comparison, effect: float | None) -> str:
    if effect is None:
        return "no effect measured"
    if c.kind == "rank":
        return f"medians' ratio {effect:.2f}x (margin {c.margin:g}x)"
    return f"{effect:+.2f} points (margin +{c.margin:g})"


def _passed_because(j: Judged, alpha: float) -> str:
    if not _beyond_margin(j.comparison, j.effect):
        return "within its margin"
    return f"beyond its margin but not significant at {alpha:g}"
