"""cloudrun-smoke: post-deploy smoke checks for a Cloud Run service, and a local Cloud Run to run them on.

Checks import only the names listed in ``__all__`` (``from cloudrun_smoke import LogWatcher``); the
modules behind them may move. Each name is imported on first use, so that loading the pytest plugin
or the local stack does not import every layer.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from cloudrun_smoke.config.schema import Environment
    from cloudrun_smoke.errors import SmokeError
    from cloudrun_smoke.gcp import cpu_allocation, iam
    from cloudrun_smoke.gcp.discovery import Target
    from cloudrun_smoke.gcp.scope import CloudRunScope
    from cloudrun_smoke.logs.expectations import Absence, Expectation, LogExpectationFailed
    from cloudrun_smoke.logs.ingestion_lag import MeasuredWindow
    from cloudrun_smoke.logs.lines import UNCONFIRMED, LogMatch, Unattributed, names_nobody
    from cloudrun_smoke.logs.patterns import FAILURE_PATTERNS
    from cloudrun_smoke.logs.watcher import LogWatcher
    from cloudrun_smoke.regression.verdict import RegressionVerdict
    from cloudrun_smoke.report.links import (
        gcloud_logging_read,
        logs_explorer_url,
        metrics_explorer_url,
        monitoring_api_call,
    )
    from cloudrun_smoke.report.verdict import Figure, Figures, median, nearest_rank_percentile
    from cloudrun_smoke.service import contract
    from cloudrun_smoke.service.auth import request_headers
    from cloudrun_smoke.service.http import ServiceClient, Timing, describe_response, expect_json
    from cloudrun_smoke.service.run import SmokeRun
    from cloudrun_smoke.service.scenarios import scenario
    from cloudrun_smoke.service.users import SmokeUser
    from cloudrun_smoke.timeutil import utcnow
    from cloudrun_smoke.waiting import WaitTimeout, wait_until
    from cloudrun_smoke.window.logs import Read
    from cloudrun_smoke.window.monitoring import MetricFigure, MetricReader
    from cloudrun_smoke.window.period import Window
    from cloudrun_smoke.window.reads import LogFigures

# name -> the module that defines it (a module itself where its functions are used as a family)
_WHERE: dict[str, str] = {
    "Environment": "cloudrun_smoke.config.schema",
    "SmokeError": "cloudrun_smoke.errors",
    "Target": "cloudrun_smoke.gcp.discovery",
    "FAILURE_PATTERNS": "cloudrun_smoke.logs.patterns",
    "UNCONFIRMED": "cloudrun_smoke.logs.lines",
    "Absence": "cloudrun_smoke.logs.expectations",
    "Expectation": "cloudrun_smoke.logs.expectations",
    "LogExpectationFailed": "cloudrun_smoke.logs.expectations",
    "LogMatch": "cloudrun_smoke.logs.lines",
    "MeasuredWindow": "cloudrun_smoke.logs.ingestion_lag",
    "LogWatcher": "cloudrun_smoke.logs.watcher",
    "Unattributed": "cloudrun_smoke.logs.lines",
    "names_nobody": "cloudrun_smoke.logs.lines",
    "RegressionVerdict": "cloudrun_smoke.regression.verdict",
    "gcloud_logging_read": "cloudrun_smoke.report.links",
    "logs_explorer_url": "cloudrun_smoke.report.links",
    "metrics_explorer_url": "cloudrun_smoke.report.links",
    "monitoring_api_call": "cloudrun_smoke.report.links",
    "Figure": "cloudrun_smoke.report.verdict",
    "Figures": "cloudrun_smoke.report.verdict",
    "median": "cloudrun_smoke.report.verdict",
    "nearest_rank_percentile": "cloudrun_smoke.report.verdict",
    "request_headers": "cloudrun_smoke.service.auth",
    "CloudRunScope": "cloudrun_smoke.gcp.scope",
    "ServiceClient": "cloudrun_smoke.service.http",
    "Timing": "cloudrun_smoke.service.http",
    "describe_response": "cloudrun_smoke.service.http",
    "expect_json": "cloudrun_smoke.service.http",
    "SmokeRun": "cloudrun_smoke.service.run",
    "scenario": "cloudrun_smoke.service.scenarios",
    "SmokeUser": "cloudrun_smoke.service.users",
    "utcnow": "cloudrun_smoke.timeutil",
    "WaitTimeout": "cloudrun_smoke.waiting",
    "wait_until": "cloudrun_smoke.waiting",
    "Read": "cloudrun_smoke.window.logs",
    "MetricFigure": "cloudrun_smoke.window.monitoring",
    "MetricReader": "cloudrun_smoke.window.monitoring",
    "Window": "cloudrun_smoke.window.period",
    "LogFigures": "cloudrun_smoke.window.reads",
    "contract": "cloudrun_smoke.service",
    "cpu_allocation": "cloudrun_smoke.gcp",
    "iam": "cloudrun_smoke.gcp",
}
__all__ = [
    "FAILURE_PATTERNS",
    "UNCONFIRMED",
    "Absence",
    "CloudRunScope",
    "Environment",
    "Expectation",
    "Figure",
    "Figures",
    "LogExpectationFailed",
    "LogFigures",
    "LogMatch",
    "LogWatcher",
    "MeasuredWindow",
    "MetricFigure",
    "MetricReader",
    "Read",
    "RegressionVerdict",
    "ServiceClient",
    "SmokeError",
    "SmokeRun",
    "SmokeUser",
    "Target",
    "Timing",
    "Unattributed",
    "WaitTimeout",
    "Window",
    "contract",
    "cpu_allocation",
    "describe_response",
    "expect_json",
    "gcloud_logging_read",
    "iam",
    "logs_explorer_url",
    "median",
    "metrics_explorer_url",
    "monitoring_api_call",
    "names_nobody",
    "nearest_rank_percentile",
    "request_headers",
    "scenario",
    "utcnow",
    "wait_until",
]


def __getattr__(name: str) -> Any:
    where = _WHERE.get(name)
    if where is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(where)
    value = getattr(module, name) if hasattr(module, name) else importlib.import_module(f"{where}.{name}")
    globals()[name] = value  # the next lookup is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
