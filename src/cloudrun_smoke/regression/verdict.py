"""The regression checks' one judgement, and what each check reports of it."""

from __future__ import annotations

from dataclasses import dataclass

from cloudrun_smoke.regression.figures import NAMES
from cloudrun_smoke.regression.judge import SKIPPED, Judged
from cloudrun_smoke.regression.revisions import Pairing
from cloudrun_smoke.report.verdict import Figure

UNITS = {"rank": "x", "share": " points", "maximum": " points"}


@dataclass(frozen=True)
class RegressionVerdict:
    """Every figure judged together (one Holm correction), or why nothing could be compared."""

    pairing: Pairing | None
    judged: dict[str, Judged]
    alpha: float
    skipped: str = ""  # no baseline: the reason
    reads: int = 0  # entries:list pages

    def describe(self) -> str:
        if self.pairing is None:
            return f"regression: nothing compared: {self.skipped}"
        return f"regression: {self.pairing.describe()}; {self.reads} entries:list pages"

    def report(self, name: str) -> tuple[str, str, Figure | None]:
        """For the check of figure ``name`` (one of figures.NAMES): its outcome ("passed", "failed" or
        "skipped"), its message with the comparison's context, and the figure to record."""
        if name not in NAMES:
            raise ValueError(f"no regression figure named {name!r}; known: {', '.join(NAMES)}")
        if self.pairing is None:
            return SKIPPED, f"{name}: {self.describe()}", None
        judged = self.judged[name]
        text = f"{judged.describe(self.alpha)}\n  {self.describe()}"
        if judged.outcome == SKIPPED:
            return SKIPPED, text, None
        c = judged.comparison
        note = (
            judged.outcome
            if judged.adjusted_p is None
            else f"{judged.outcome}; p {judged.adjusted_p:.2g} (Holm)"
        )
        figure = Figure(
            f"regression: {name}",
            judged.effect if judged.effect is not None else 0.0,
            UNITS[c.kind],
            c.margin,
            min(c.baseline.count, c.candidate.count),
            note,
        )
        return judged.outcome, text, figure
