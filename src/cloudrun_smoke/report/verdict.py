"""The run's verdict as data: each check's outcome, the figures measured, the cost in log reads.

``--smoke-report PATH`` writes it as JSON; the benchmark and CI integrations build on it. Nothing in it
comes from a header or an env var value, so it carries no secret.
"""

from __future__ import annotations

import json
import statistics
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cloudrun_smoke.timeutil import format_rfc3339, utcnow


@dataclass(frozen=True)
class Figure:
    name: str
    value: float
    unit: str = ""
    threshold: float | None = None
    samples: int | None = None
    note: str = ""

    def describe(self) -> str:
        limit = f" (threshold {self.threshold:g}{self.unit})" if self.threshold is not None else ""
        over = f" over {self.samples} samples" if self.samples is not None else ""
        note = f"; {self.note}" if self.note else ""
        count = not self.unit.strip() and float(self.value).is_integer()  # "48 threads", not "48.0"
        value = f"{self.value:.0f}" if count else f"{self.value:.1f}"
        return f"{self.name}: {value}{self.unit}{limit}{over}{note}"


@dataclass
class Figures:
    """What checks measured, for the summary and the verdict (thread-safe: scenarios record too)."""

    items: list[Figure] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, figure: Figure) -> Figure:
        with self._lock:
            self.items.append(figure)
        return figure


@dataclass
class CheckResult:
    nodeid: str
    outcome: str  # passed, failed, skipped, error, known-failure, known-failure-passed
    duration: float
    message: str = ""
    blocked_by: str = ""  # skipped: the failed check whose cause it could not be judged without


BLOCKED = "blocked by "


def blocked_reason(owner: str, cause: str) -> str:
    """The skip reason of a check that depends on a step another check failed (one cause, one failure)."""
    return f"{BLOCKED}{owner}: {cause}"


def blocked_by(reason: str) -> str:
    """The failed check a skip reason names, or "" when the skip is not a block."""
    reason = reason.removeprefix("Skipped: ")
    if not reason.startswith(BLOCKED):
        return ""
    return reason[len(BLOCKED) :].split(": ", 1)[0]


def root_causes(checks: list[CheckResult]) -> list[dict[str, Any]]:
    """Each failed check with its cause in one line and the checks it blocked, for the verdict."""
    return [
        {
            "check": c.nodeid,
            "cause": (c.message.strip().splitlines() or [""])[0],
            "blocked": sorted(b.nodeid for b in checks if b.blocked_by == c.nodeid),
        }
        for c in checks
        if c.outcome in ("failed", "error")
    ]


def nearest_rank_percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile: with few samples, a real observed value rather than an interpolation."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no samples")
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.4999)))
    return ordered[rank - 1]


def median(values: list[float]) -> float:
    return statistics.median(values)


def write_report(path: Path, verdict: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(verdict, indent=2, default=str) + "\n", encoding="utf-8")


def build_verdict(
    *,
    environment: dict[str, Any],
    target: dict[str, Any] | None,
    run: dict[str, Any] | None,
    checks: list[CheckResult],
    figures: Figures,
    logs: dict[str, Any] | None,
    exit_status: int,
    rollback: str | None = None,
    window: dict[str, Any] | None = None,
    options: dict[str, str] | None = None,
    rerun: dict[str, Any] | None = None,
    unattributed: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    """``unattributed``: lines that name nobody, beside the verdict and never in it (a failure line that
    may be another user's; a check satisfied "attributed by time, unconfirmed")."""
    failed = [c for c in checks if c.outcome in ("failed", "error")]
    return {
        "tool": "cloudrun-smoke",
        "written_at": format_rfc3339(utcnow()),
        "verdict": "fail" if failed or exit_status not in (0, 5) else "pass",
        "exit_status": exit_status,
        "environment": environment,
        "target": target,
        "options": options or {},
        "run": run,
        "checks": [asdict(c) for c in checks],
        "root_causes": root_causes(checks),
        "figures": [asdict(f) for f in figures.items],
        "logs": logs,
        "rollback": rollback,
        "rerun": rerun,
        "window": window,
        "unattributed": unattributed or [],
    }


def markdown_summary(verdict: dict[str, Any]) -> str:
    """The verdict for a CI job page (``$GITHUB_STEP_SUMMARY``): failures first, each with where to look."""
    env = verdict.get("environment") or {}
    target = verdict.get("target") or {}
    checks = verdict.get("checks") or []
    failed = [c for c in checks if c["outcome"] in ("failed", "error")]
    icon = "❌" if verdict.get("verdict") == "fail" else "✅"
    lines = [
        f"## {icon} cloudrun-smoke: {env.get('name', '?')} — {verdict.get('verdict', '?')}",
        "",
        f"Service `{env.get('service', '?')}` ({env.get('project', '?')}, {env.get('region', '?')}), "
        f"revision `{target.get('revision') or '?'}`, image `{target.get('image') or '?'}`.",
        "",
    ]
    if verdict.get("rollback"):
        lines += [f"**{verdict['rollback']}**", ""]
    if failed:
        lines += ["### Failures", ""]
        for check in failed:
            first, *rest = (check.get("message") or "(no message)").splitlines() or [""]
            lines.append(f"- **{check['nodeid']}**: {first}")
            for line in rest:
                if "Logs Explorer:" in line or line.strip().startswith("or: gcloud"):
                    lines.append(f"  - {line.strip()}")
            blocked = sorted(c["nodeid"] for c in checks if c.get("blocked_by") == check["nodeid"])
            if blocked:
                lines.append(f"  - blocked by it, not judged ({len(blocked)}, skipped):")
                lines += [f"    - `{nodeid}`" for nodeid in blocked]
        lines.append("")
    lines += ["### Checks", "", "| Check | Outcome | Duration (s) |", "|---|---|---|"]
    order = {
        "failed": 0,
        "error": 0,
        "known-failure-passed": 1,
        "known-failure": 2,
        "skipped": 3,
        "passed": 4,
    }
    for check in sorted(checks, key=lambda c: (order.get(c["outcome"], 5), c["nodeid"])):
        outcome = (
            f"skipped, blocked by `{check['blocked_by']}`" if check.get("blocked_by") else check["outcome"]
        )
        lines.append(f"| `{check['nodeid']}` | {outcome} | {check['duration']:.2f} |")
    figures = verdict.get("figures") or []
    if figures:
        lines += ["", "### Figures", ""]
        for f in figures:
            threshold = (
                f" (threshold {f['threshold']:g}{f['unit']})" if f.get("threshold") is not None else ""
            )
            lines.append(f"- {f['name']}: {f['value']:.1f}{f['unit']}{threshold}; {f.get('note', '')}")
    beside = verdict.get("unattributed") or []
    if beside:
        lines += ["", "### Lines that name nobody (not counted on their own)", ""]
        lines += [f"- {u['check'] or u['kind']}: {u['note']} — `{u['line']}`" for u in beside[:10]]
        if len(beside) > 10:
            lines.append(f"- ... and {len(beside) - 10} more in the JSON verdict")
    logs = verdict.get("logs") or {}
    if logs:
        lines += [
            "",
            f"Log reads: {logs.get('entries_list_calls')} entries:list requests (one per page, "
            f"{logs.get('empty_pages', 0)} empty); max ingestion lag {logs.get('max_ingestion_lag_s')} s.",
        ]
    return "\n".join(lines) + "\n"
