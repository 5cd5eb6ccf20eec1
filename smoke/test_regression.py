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

from cloudrun_smoke import Figures, RegressionVerdict

pytestmark = [pytest.mark.window, pytest.mark.regression]


def _judge(verdict: RegressionVerdict, name: str, figures: Figures) -> None:
    outcome, message, figure = verdict.report(name)
    if figure is not None:
        figures.record(figure)
    if outcome == "skipped":
        pytest.skip(message)
    if outcome == "failed":
        pytest.fail(message, pytrace=False)


def test_request_latency(smoke_regression: RegressionVerdict, smoke_figures: Figures) -> None:
    _judge(smoke_regression, "request latency", smoke_figures)


def test_5xx_share(smoke_regression: RegressionVerdict, smoke_figures: Figures) -> None:
    _judge(smoke_regression, "5xx share", smoke_figures)


def test_archive_latency(smoke_regression: RegressionVerdict, smoke_figures: Figures) -> None:
    _judge(smoke_regression, "archive latency", smoke_figures)


def test_queue_time(smoke_regression: RegressionVerdict, smoke_figures: Figures) -> None:
    _judge(smoke_regression, "queue time", smoke_figures)


def test_consolidation_failure_share(smoke_regression: RegressionVerdict, smoke_figures: Figures) -> None:
    _judge(smoke_regression, "consolidation failure share", smoke_figures)


def test_memory_utilization_max(smoke_regression: RegressionVerdict, smoke_figures: Figures) -> None:
    """A maximum has no significance test: its margin alone decides."""
    _judge(smoke_regression, "memory utilization max", smoke_figures)


def test_cpu_utilization_max(smoke_regression: RegressionVerdict, smoke_figures: Figures) -> None:
    _judge(smoke_regression, "CPU utilization max", smoke_figures)
