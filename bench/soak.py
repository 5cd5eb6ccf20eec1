"""Soak: the full suite N times against a healthy revision under realistic jitter, to prove it never
fails a healthy deploy.

Conditions (each run): per-entry ingestion delay uniform in 0.2–6 s, 10 % of Logging reads answered
429 (`stack:flaky-logging`), plus the service's correct variants given with --service-faults (e.g. a
transient 503 on 5 % of requests and a slow cold start). Reports runs, failures (with the failing
checks) and the runs a retry rescued.

    python bench/soak.py --runs 50
    python bench/soak.py --runs 3 --service-faults transient-503,slow-cold-start
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def one_run(faults: str, deadline: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "verdict.json"
        started = time.monotonic()
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "smoke/",
                "--env",
                "local",
                "-q",
                "-p",
                "no:cacheprovider",
                f"--smoke-report={report}",
                "--log-deadline",
                str(deadline),
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=900,
            env={
                **os.environ,
                "SMOKE_INGESTION_DELAY": "0.2",
                "SMOKE_INGESTION_JITTER": "5.8",
                "SMOKE_LOCAL_FAULTS": faults,
            },
        )
        verdict = json.loads(report.read_text()) if report.exists() else {}
    http = (verdict.get("run") or {}).get("http") or {}
    logs = verdict.get("logs") or {}
    return {
        "exit": proc.returncode,
        "wall_s": round(time.monotonic() - started, 1),
        "failed": [c["nodeid"] for c in verdict.get("checks", []) if c["outcome"] in ("failed", "error")],
        "http_retried": http.get("retried", 0),
        "log_reads": logs.get("entries_list_calls"),
        "log_throttled": logs.get("throttled"),
        "tail": "" if proc.returncode == 0 else (proc.stdout + proc.stderr)[-3000:],
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument(
        "--service-faults", default="", help="correct variants of the service, comma-separated"
    )
    parser.add_argument("--log-deadline", type=float, default=45.0)
    parser.add_argument("--output", type=Path, default=None, help="write the results as JSON here")
    args = parser.parse_args()
    faults = ",".join(f for f in ["stack:flaky-logging", *args.service_faults.split(",")] if f)
    results = []
    for i in range(args.runs):
        result = one_run(faults, args.log_deadline)
        results.append(result)
        status = "ok" if result["exit"] == 0 else f"FAILED {result['failed']}"
        print(
            f"run {i + 1}/{args.runs}: {status} in {result['wall_s']} s; http retries {result['http_retried']}; "
            f"log reads {result['log_reads']} (429: {result['log_throttled']})",
            flush=True,
        )
    failures = [r for r in results if r["exit"] != 0]
    rescued = sum(1 for r in results if r["exit"] == 0 and (r["http_retried"] or r["log_throttled"]))
    summary = {
        "runs": len(results),
        "failures": len(failures),
        "rescued_by_retries": rescued,
        "faults": faults,
    }
    print(json.dumps(summary))
    for failure in failures:
        print(failure["tail"])
    if args.output:
        args.output.write_text(json.dumps({"summary": summary, "runs": results}, indent=2) + "\n")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
