"""The run's verdict (JSON, and the CI step summary) and the terminal summary, from what the run did."""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import asdict
from typing import Any

from cloudrun_smoke.config.base_url import UrlOverride
from cloudrun_smoke.config.schema import Environment
from cloudrun_smoke.gcp.discovery import Target
from cloudrun_smoke.logs.watcher import LogWatcher
from cloudrun_smoke.report.verdict import CheckResult, Figures, build_verdict
from cloudrun_smoke.service.run import SmokeRun
from cloudrun_smoke.timeutil import format_rfc3339


def run_verdict(
    *,
    env: Environment,
    target: Target | None,
    run: SmokeRun | None,
    watcher: LogWatcher | None,
    checks: Iterable[CheckResult],
    figures: Figures,
    rollback: str | None,
    window: dict[str, Any] | None,
    options: dict[str, str],
    rerun: dict[str, Any] | None,
    exit_status: int,
) -> dict[str, Any]:
    """The verdict of a whole run, as :func:`build_verdict` writes it."""
    return build_verdict(
        environment={
            "name": env.name,
            "project": env.project,
            "region": env.region,
            "service": env.service,
            "endpoints": _endpoints(env),
        },
        target=None
        if target is None
        else {
            "url": target.url,
            "revision": target.revision,
            "image": target.image,
            "traffic": [asdict(t) for t in target.traffic],
        },
        run=None
        if run is None
        else {
            "run_id": run.run_id,
            "started_at": format_rfc3339(run.started_at),
            "users": run.user_ids,
            "threads_created": len(run.thread_ids),
            "cleanup_problems": run.cleanup_problems,
            "http": _http_figures(run),
        },
        checks=sorted(checks, key=lambda c: c.nodeid),
        figures=figures,
        logs=None if watcher is None else _log_figures(watcher),
        rollback=rollback,
        window=window,
        options=options,
        rerun=rerun,
        unattributed=None if watcher is None else [u.as_dict() for u in watcher.unattributed],
        exit_status=int(exit_status),
    )


def summary_lines(
    *,
    env: Environment,
    target: Target | None,
    override: UrlOverride | None,
    discovered_url: str | None,
    run: SmokeRun | None,
    watcher: LogWatcher | None,
    neighbours: Any,
    figures: Figures,
    rollback: str | None,
) -> list[str]:
    """The terminal summary of a run: what was tested, what it cost, what was left or done."""
    lines = [f"environment: {env.name} (project {env.project}, region {env.region}, service {env.service})"]
    if target is not None:
        lines.append(
            f"revision under test: {target.revision or '-'}; traffic: {target.describe_traffic() or '-'}"
        )
    if override is not None and override.url and discovered_url is not None:
        lines.append(
            f"checks called {override.url} ({override.option}), not the service's URL "
            f"{discovered_url or '(none)'}"
        )
    if override is not None and override.note:
        lines.append(override.note)
    if run is not None:
        lines.append(
            f"run id: {run.run_id}; smoke users: {len(run.user_ids)}; threads created: {len(run.thread_ids)}"
            + (" (all removed)" if not run.cleanup_problems else "")
        )
        for problem in run.cleanup_problems:
            lines.append(f"cleanup left: {problem}")
    if watcher is not None:
        lines.append(
            f"log reads: {watcher.stats.reads} entries:list requests, one per page "
            f"(throttled {watcher.stats.throttled}, empty {watcher.stats.empty_pages}); "
            f"max ingestion lag seen: {watcher.stats.max_lag_seconds:.1f} s"
        )
        shown = watcher.unattributed[:10]  # beside the verdict, never in it; all of them in the JSON
        lines += [f"names nobody, not counted on its own: {item.describe()}" for item in shown]
        if len(watcher.unattributed) > len(shown):
            lines.append(f"... and {len(watcher.unattributed) - len(shown)} more (see --smoke-report)")
    if neighbours is not None:
        lines.append(neighbours.summary().describe())
    for figure in figures.items:
        lines.append(figure.describe())
    if rollback is not None:
        lines.append(rollback)
    return lines


def _log_figures(watcher: LogWatcher) -> dict[str, Any]:
    """What watching the run's logs cost and saw."""
    stats = watcher.stats
    detections = [
        e.match.line.seen_at - e.match.line.receive_timestamp.timestamp()
        for e in watcher.expectations
        if e.match and e.match.line.receive_timestamp
    ]
    return {
        # Reads as the quota counts them: entries:list requests, one per page (the 404 diagnosis's too).
        "entries_list_calls": stats.reads,
        "empty_pages": stats.empty_pages,
        "polls": stats.polls,
        "read_budget_per_minute": watcher.budget_per_minute,
        "throttled": stats.throttled,
        "lines_seen": len(watcher.lines()),
        "max_ingestion_lag_s": round(stats.max_lag_seconds, 3),
        "median_ingestion_lag_s": round(statistics.median(stats.lags), 3) if stats.lags else None,
        "detection_latency_s": sorted(round(d, 3) for d in detections),
        "read_times": stats.read_times,
        "expectations": [
            {
                "pattern": e.pattern.name,
                "where": dict(e.where),
                "registered_at": e.registered_at,
                "resolved_at": e.resolved_at,
                "matched": e.match is not None,
            }
            for e in watcher.expectations
        ],
    }


def _http_figures(run: SmokeRun) -> dict[str, Any]:
    """Requests made and those a retry rescued (a transient 429/503 or refused connection)."""
    timings = {id(t): t for user in run.users for t in user.client.timings}.values()
    return {
        "requests": len(timings),
        "retried": sum(1 for t in timings if t.attempts > 1),
        "max_attempts": max((t.attempts for t in timings), default=0),
    }


def _endpoints(env: Environment) -> dict[str, str]:
    return {
        "run_api": env.run_api_endpoint,
        "logging_api": env.logging_api_endpoint,
        "monitoring_api": env.monitoring_api_endpoint,
    }
