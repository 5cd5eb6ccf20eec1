"""The revision under test against a baseline revision on the same kind of traffic (canary analysis):
a release twice as slow, or with a 5xx share of 0.8 % where there was none, passes every fixed
threshold of the window checks and fails here.

`pytest smoke/ --env prod -m regression`; also selected by `-m window`. Each figure fails only when the
revision under test is worse by more than its margin ([env.NAME.regression]) and, where a test applies,
significantly so at `alpha` after Holm's correction across the run's figures; too few samples skip it,
saying what they could have shown.
"""

from __future__ import annotations

import pytest

from cloudrun_smoke import Figure, Figures
from cloudrun_smoke.plugin.regression import RegressionVerdict
from cloudrun_smoke.regression.figures import (
    ARCHIVE_LATENCY,
    CPU_MAX,
    ERROR_SHARE,
    FAILURE_SHARE,
    MEMORY_MAX,
    QUEUE_TIME,
    REQUEST_LATENCY,
)
from cloudrun_smoke.regression.judge import FAILED, SKIPPED

pytestmark = [pytest.mark.window, pytest.mark.regression]


def _judge(verdict: RegressionVerdict, name: str, figures: Figures) -> None:
    if verdict.pairing is None:
        pytest.skip(f"{name}: {verdict.describe()}")
    judged = verdict.judged[name]
    text = judged.describe(verdict.alpha)
    context = f"\n  {verdict.describe()}"
    if judged.outcome == SKIPPED:
        pytest.skip(text + context)
    c = judged.comparison
    figures.record(
        Figure(
            f"regression: {name}",
            judged.effect if judged.effect is not None else 0.0,
            {"rank": "x", "share": " points", "maximum": " points"}[c.kind],
            c.margin,
            min(c.baseline.count, c.candidate.count),
            f"{judged.outcome}; p {judged.adjusted_p:.2g} (Holm)"
            if judged.adjusted_p is not None
            else judged.outcome,
        )
    )
    if judged.outcome == FAILED:
        pytest.fail(text + context, pytrace=False)


def test_request_latency(smoke_regression: RegressionVerdict, smoke_figures: Figures) -> None:
    _judge(smoke_regression, REQUEST_LATENCY, smoke_figures)


def test_5xx_share(smoke_regression: RegressionVerdict, smoke_figures: Figures) -> None:
    _judge(smoke_regression, ERROR_SHARE, smoke_figures)


def test_archive_latency(smoke_regression: RegressionVerdict, smoke_figures: Figures) -> None:
    _judge(smoke_regression, ARCHIVE_LATENCY, smoke_figures)


def test_queue_time(smoke_regression: RegressionVerdict, smoke_figures: Figures) -> None:
    _judge(smoke_regression, QUEUE_TIME, smoke_figures)


def test_consolidation_failure_share(smoke_regression: RegressionVerdict, smoke_figures: Figures) -> None:
    _judge(smoke_regression, FAILURE_SHARE, smoke_figures)


def test_memory_utilization_max(smoke_regression: RegressionVerdict, smoke_figures: Figures) -> None:
    """A maximum has no significance test: its margin alone decides."""
    _judge(smoke_regression, MEMORY_MAX, smoke_figures)


def test_cpu_utilization_max(smoke_regression: RegressionVerdict, smoke_figures: Figures) -> None:
    _judge(smoke_regression, CPU_MAX, smoke_figures)
