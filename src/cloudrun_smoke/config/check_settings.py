"""What an environment expects of its service: the sub-tables of ``[env.NAME]`` in ``smoke.toml``.

``[env.NAME.expect]`` the deployment (image, resources, env var names), ``[env.NAME.slo]`` the
thresholds, ``[env.NAME.checks]`` how the service under test behaves where the contract allows
several behaviours, ``[env.NAME.known_failures]`` checks that fail for a known, tracked reason.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cloudrun_smoke.config.validators import (
    boolean,
    non_negative_int,
    non_negative_number,
    positive_int,
    positive_number,
    string,
    table,
)

Parser = Callable[[Any], Any]
_str, _bool, _count, _positive, _table = string, boolean, non_negative_int, positive_number, table


@dataclass(frozen=True)
class DeploymentExpectations:
    """Empty strings and ``None`` mean "not checked" (the check says so as a skip)."""

    image: str = ""  # a regular expression the container image must match (fullmatch)
    memory: str = ""
    cpu: str = ""
    timeout_seconds: int | None = None
    min_instances: int | None = None
    max_instances: int | None = None
    env_names: tuple[str, ...] = ()  # env vars that must be set (values are never read)
    cpu_idle: bool | None = None  # CPU only during requests: what an in-process queue needs is false


@dataclass(frozen=True)
class SloThresholds:
    archive_p50_ms: float = 200.0
    queue_p95_s: float = 5.0
    archive_samples: int = 5  # threads the SLO scenario archives (also the scale knob of the benchmark)


@dataclass(frozen=True)
class CheckSettings:
    min_new_concepts: int = 1
    expect_recall: bool = True  # /api/memory/concepts/search finds the archived conversation
    preferences_in_stats: bool = False  # the public code does not count preferences in /user/stats
    tend_garden_body: Mapping[str, Any] = field(default_factory=lambda: {"thread_id": "{thread_id}"})
    dev_bypass_rejected: bool = False  # security: x-dev-bypass without a token must be refused
    tenant_isolation: bool = True  # needs two users: only where the auth mode lets the suite choose
    allow_errors: tuple[str, ...] = ()  # regular expressions of ERROR lines that never fail the run
    reconcile_timeout: float = 120.0  # how long discovery waits while the service is reconciling


@dataclass(frozen=True)
class WindowSettings:
    """``[env.NAME.window]``: the post-deploy window checks (runbook "Métriques Succès (24h)").

    Thresholds default to the runbook; ``archive_p50_ms`` and ``queue_p95_s`` to ``[slo]`` when unset.
    A figure over fewer samples than its minimum is skipped with the reason, not judged.
    """

    max: float = 86400.0  # seconds: cap of the default window (since the revision was created)
    error_share_pct: float = 1.0  # 4.4: error rate < 1 % (5xx)
    latency_p95_ms: float = 10000.0  # the runbook's alert: latency P95 > 10 s
    memory_max_pct: float = 80.0  # 4.4: < 80 % of the memory limit
    cpu_p95_pct: float = 70.0  # 4.4: < 70 % (peaks during batch consolidation)
    archive_p50_ms: float | None = None
    queue_p95_s: float | None = None
    consolidation_failure_pct: float = 1.0
    pending_grace_s: float = 300.0  # an enqueued thread without outcome for longer is lost, not pending
    min_requests: int = 100
    min_archives: int = 10
    min_consolidations: int = 10
    min_metric_samples: int = 10
    gauge_period_s: int = 60  # instance_count is sampled once a minute by Cloud Run
    metric_delay: float | None = None  # seconds before now where Monitoring figures end (None: default)
    max_log_pages: int = 10  # per kind of log entry, 1000 entries a page: the hard cap on reads


@dataclass(frozen=True)
class KnownFailure:
    reason: str
    link: str = ""


def _regex(value: Any) -> str:
    try:
        re.compile(_str(value))
    except re.error as e:
        raise ValueError(f"not a valid regular expression {value!r}: {e}") from None
    return value


def _strings(item: Parser) -> Parser:
    def parse(value: Any) -> tuple[str, ...]:
        if not isinstance(value, list):
            raise ValueError(f"expected a list of strings, got {value!r}")
        return tuple(item(v) for v in value)

    return parse


EXPECT_SCHEMA: dict[str, Parser] = {
    "image": _regex,
    "memory": _str,
    "cpu": _str,
    "timeout_seconds": _count,
    "min_instances": _count,
    "max_instances": _count,
    "env_names": _strings(_str),
    "cpu_idle": _bool,
}
SLO_SCHEMA: dict[str, Parser] = {
    "archive_p50_ms": _positive,
    "queue_p95_s": _positive,
    "archive_samples": lambda v: max(1, _count(v)),
}


def _window_length(value: Any) -> float:
    from cloudrun_smoke.window.period import parse_duration

    return parse_duration(_str(value)).total_seconds()


WINDOW_SCHEMA: dict[str, Parser] = {
    "max": _window_length,
    "error_share_pct": _positive,
    "latency_p95_ms": _positive,
    "memory_max_pct": _positive,
    "cpu_p95_pct": _positive,
    "archive_p50_ms": _positive,
    "queue_p95_s": _positive,
    "consolidation_failure_pct": _positive,
    "pending_grace_s": _positive,
    "min_requests": _count,
    "min_archives": _count,
    "min_consolidations": _count,
    "min_metric_samples": _count,
    "gauge_period_s": positive_int,
    "metric_delay": non_negative_number,
    "max_log_pages": positive_int,
}
CHECKS_SCHEMA: dict[str, Parser] = {
    "min_new_concepts": _count,
    "expect_recall": _bool,
    "preferences_in_stats": _bool,
    "tend_garden_body": _table,
    "dev_bypass_rejected": _bool,
    "tenant_isolation": _bool,
    "allow_errors": _strings(_regex),
    "reconcile_timeout": _positive,
}


# Keys a smoke.toml may still carry from an earlier version: what replaced them, in the error.
REMOVED_KEYS = {
    "strict_errors": "no longer exists: a failure line that names no thread and no user is another "
    "user's as likely as the run's, so it never fails a check on its own (README, Other users' lines); "
    "delete the key",
}


def parse_section(raw: Any, schema: Mapping[str, Parser], where: str) -> dict[str, Any]:
    """Values of one sub-table; raises ``ValueError`` with ``where.key`` in the message."""
    try:
        table = _table(raw)
    except ValueError as e:
        raise ValueError(f"{where}: {e}") from None
    unknown = sorted(set(table) - set(schema))
    for key in unknown:
        if key in REMOVED_KEYS:
            raise ValueError(f"{where}.{key}: {REMOVED_KEYS[key]}")
    if unknown:
        raise ValueError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(schema))})")
    values = {}
    for key, value in table.items():
        try:
            values[key] = schema[key](value)
        except ValueError as e:
            raise ValueError(f"{where}.{key}: {e}") from None
    return values


def parse_known_failures(raw: Any, where: str) -> dict[str, KnownFailure]:
    """``"test_name" = {reason = "...", link = "..."}``: the reason is required, a link recommended."""
    try:
        table = _table(raw)
    except ValueError as e:
        raise ValueError(f"{where}: {e}") from None
    result = {}
    for name, value in table.items():
        entry = value if isinstance(value, dict) else None
        if entry is None or not isinstance(entry.get("reason"), str) or not entry["reason"].strip():
            raise ValueError(f'{where}.{name}: expected {{ reason = "...", link = "..." }}')
        extra = sorted(set(entry) - {"reason", "link"})
        if extra:
            raise ValueError(f"{where}.{name}: unknown key {extra[0]!r} (known: link, reason)")
        result[name] = KnownFailure(entry["reason"], _str(entry.get("link", "")))
    return result


def parse_patterns(raw: Any, where: str) -> dict[str, list[str]]:
    """``"archive.enqueued" = ["regex", ...]``: the accepted forms of a catalogue pattern."""
    result = {}
    for name, forms in _table(raw).items():
        if isinstance(forms, str):
            forms = [forms]
        if not isinstance(forms, list) or not forms or not all(isinstance(f, str) for f in forms):
            raise ValueError(f"{where}.{name}: expected a regular expression or a list of them")
        result[name] = forms
    return result
