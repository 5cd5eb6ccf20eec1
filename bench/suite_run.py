"""One run of `pytest smoke/ --env local` in a subprocess, summarised from its JSON verdict.

Shared by the benchmark and the soak: both judge runs by what the suite itself reported.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from cloudrun_smoke.report.verdict import nearest_rank_percentile

ROOT = Path(__file__).resolve().parents[1]
ABSENCE_FIGURE = "re-archive watched"  # the figure smoke/test_thread_archiving.py records


def checkout_python(checkout: Path) -> str:
    """The interpreter that runs ``checkout``'s suite: this one for this checkout, else its own ``.venv``
    (another checkout's package is installed there, not here)."""
    return sys.executable if checkout == ROOT else str(checkout / ".venv" / "bin" / "python")


def run_suite(
    extra_env: dict[str, str], *args: str, timeout: float = 900, checkout: Path = ROOT
) -> dict[str, Any]:
    """One run of ``checkout``'s suite (another checkout runs with its own ``.venv``: bench/suite_bench.py
    --previous compares two versions of the suite side by side)."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "verdict.json"
        started = time.monotonic()
        proc = subprocess.run(
            [
                checkout_python(checkout),
                "-m",
                "pytest",
                "smoke/",
                "--env",
                "local",
                "-q",
                "-p",
                "no:cacheprovider",
                f"--smoke-report={report}",
                *args,
            ],
            cwd=checkout,
            capture_output=True,
            text=True,
            env={**os.environ, **extra_env},
            timeout=timeout,
        )
        wall = time.monotonic() - started
        verdict = json.loads(report.read_text()) if report.exists() else {}
    logs = verdict.get("logs") or {}
    window = verdict.get("window") or {}
    http = (verdict.get("run") or {}).get("http") or {}
    detection = logs.get("detection_latency_s") or []
    watched = [f["value"] for f in verdict.get("figures") or [] if f["name"] == ABSENCE_FIGURE]
    reads_per_second = Counter(int(t) for t in logs.get("read_times", []))
    return {
        "args": list(args),
        "env": extra_env,
        "exit": proc.returncode,
        "verdict": verdict.get("verdict"),
        "wall_s": round(wall, 2),
        # A window run starts no LogWatcher: its reads are the window's pages (and ListTimeSeries calls).
        "reads": logs.get("entries_list_calls", window.get("entries_list_pages")),
        "monitoring_calls": window.get("list_time_series_calls"),
        "throttled": logs.get("throttled"),
        "empty_pages": logs.get("empty_pages"),
        "max_reads_in_one_second": max(reads_per_second.values(), default=0),
        "detection_median_s": round(nearest_rank_percentile(detection, 50), 3) if detection else None,
        "detection_p95_s": round(nearest_rank_percentile(detection, 95), 3) if detection else None,
        "http_retried": http.get("retried", 0),
        "absence_window_s": round(watched[0], 2) if watched else None,
        "failed": [c["nodeid"] for c in verdict.get("checks", []) if c["outcome"] in ("failed", "error")],
        "tail": "" if proc.returncode == 0 else (proc.stdout + proc.stderr)[-3000:],
    }
