"""Soak: the full suite N times against a healthy revision under realistic jitter, to prove it never
fails a healthy deploy.

Conditions (each run): per-entry ingestion delay uniform in 0.2–6 s, 10 % of Logging reads answered
429 (`stack:flaky-logging`), plus the service's correct variants given with --service-faults (e.g. a
transient 503 on 5 % of requests and a slow cold start). Reports runs, failures (with the failing
checks) and the runs a retry rescued.

    python bench/soak.py --runs 50
    python bench/soak.py --runs 3 --service-faults transient-503,slow-start
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from suite_run import run_suite


def one_run(faults: str, deadline: float) -> dict[str, Any]:
    env = {"SMOKE_INGESTION_DELAY": "0.2", "SMOKE_INGESTION_JITTER": "5.8", "SMOKE_LOCAL_FAULTS": faults}
    return run_suite(env, "--log-deadline", str(deadline))


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
            f"log reads {result['reads']} (429: {result['throttled']})",
            flush=True,
        )
    failures = [r for r in results if r["exit"] != 0]
    rescued = sum(1 for r in results if r["exit"] == 0 and (r["http_retried"] or r["throttled"]))
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
