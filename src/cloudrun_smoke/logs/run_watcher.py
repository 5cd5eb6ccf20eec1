"""The run's log watcher: one Cloud Logging poller for the whole run, scoped to the revision under test,
whose failed waits say where to look further (Logs Explorer and gcloud, or the local stack's API)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from cloudrun_smoke.config.schema import Environment
from cloudrun_smoke.gcp.discovery import Target
from cloudrun_smoke.gcp.errors import is_throttled
from cloudrun_smoke.gcp.scope import CloudRunScope
from cloudrun_smoke.logs.pacing import ReadPacer
from cloudrun_smoke.logs.patterns import catalogue_with
from cloudrun_smoke.logs.source import CloudLoggingSource
from cloudrun_smoke.logs.watcher import LogWatcher
from cloudrun_smoke.report.links import gcloud_logging_read, logs_explorer_url
from cloudrun_smoke.timeutil import utcnow


def explore_hint(env: Environment, started_at: datetime) -> Callable[[str], str]:
    """Where a failed wait's reader looks further, for a filter."""

    def explore(filter_: str) -> str:
        if env.is_local:
            return f"  look further: POST {env.logging_api_endpoint}/v2/entries:list with this filter"
        return (
            f"  Logs Explorer: {logs_explorer_url(env.project, filter_, started_at, utcnow())}\n"
            f"  or: {gcloud_logging_read(env.project, filter_)}"
        )

    return explore


def watch_run(
    env: Environment, target: Target, started_at: datetime, client: Any, pacer: ReadPacer
) -> LogWatcher:
    """The watcher of the run started at ``started_at``, paying its reads from ``pacer``."""
    return LogWatcher(
        CloudLoggingSource(client, env.project),
        CloudRunScope.of(env, target.revision).service_logs_filter(),
        started_at,
        budget_per_minute=pacer.per_minute,
        lookback_seconds=env.log_lookback,
        explore_hint=explore_hint(env, started_at),
        is_throttled=is_throttled,
        catalogue=catalogue_with(env.patterns),
        pacer=pacer,
    )
