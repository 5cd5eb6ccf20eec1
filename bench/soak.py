"""Soak: the full suite N times under realistic jitter, to prove it never fails a healthy deploy, or
(with --expect-failure) that it always catches a broken one.

Conditions (each run): per-entry ingestion delay uniform in 0.2–6 s, 10 % of Logging reads answered
429 (`stack:flaky-logging`), plus the service's correct variants given with --service-faults (e.g. a
transient 503 on 5 % of requests and a slow cold start). Reports runs, failures (with the failing
checks) and the runs a retry rescued.

With ``--expect-failure CHECK`` a run succeeds only when it exits 1 and CHECK (a substring of a node
id) is among the failed checks: e.g. a second consolidation enqueued by archiving again, caught
under heavy ingestion jitter (up to 8 s extra per entry):

    python bench/soak.py --runs 50
    python bench/soak.py --runs 3 --service-faults transient-503,slow-start
    python bench/soak.py --runs 50 --stack-faults stack:heavy-jitter --service-faults rearchive-enqueues \\
        --expect-failure test_archiving_again_enqueues_nothing
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from suite_run import run_suite

from cloudrun_smoke import median


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
    parser.add_argument("--stack-faults", default="stack:flaky-logging", help="stack faults, comma-separated")
    parser.add_argument(
        "--expect-failure", default="", metavar="CHECK", help="each run must fail this check (and exit 1)"
    )
    parser.add_argument("--log-deadline", type=float, default=45.0)
    parser.add_argument("--output", type=Path, default=None, help="write the results as JSON here")
    args = parser.parse_args()
    faults = ",".join(f for f in [*args.stack_faults.split(","), *args.service_faults.split(",")] if f)
    results = []
    for i in range(args.runs):
        result = one_run(faults, args.log_deadline)
        result["ok"] = _as_expected(result, args.expect_failure)
        results.append(result)
        status = (
            "ok" if result["ok"] else f"NOT AS EXPECTED: exit {result['exit']}, failed {result['failed']}"
        )
        print(
            f"run {i + 1}/{args.runs}: {status} in {result['wall_s']} s; http retries {result['http_retried']}; "
            f"re-archive watched {result['absence_window_s']} s; "
            f"log reads {result['reads']} (429: {result['throttled']})",
            flush=True,
        )
    failures = [r for r in results if not r["ok"]]
    rescued = sum(1 for r in results if r["ok"] and (r["http_retried"] or r["throttled"]))
    summary = {
        "runs": len(results),
        "failures": len(failures),
        "rescued_by_retries": rescued,
        "faults": faults,
        "expected_failure": args.expect_failure or None,
        "wall_s_median": median([r["wall_s"] for r in results]) if results else None,
        "absence_window_s": _spread([r["absence_window_s"] for r in results]),
    }
    print(json.dumps(summary))
    for failure in failures:
        print(failure["tail"])
    if args.output:
        args.output.write_text(json.dumps({"summary": summary, "runs": results}, indent=2) + "\n")
    return 1 if failures else 0


def _spread(values: list[float | None]) -> dict[str, float] | None:
    known = [v for v in values if v is not None]
    return {"min": min(known), "median": median(known), "max": max(known)} if known else None


def _as_expected(result: dict[str, Any], expected_failure: str) -> bool:
    """A healthy run passes; with ``expected_failure``, the run fails (exit 1) on that check."""
    if not expected_failure:
        return bool(result["exit"] == 0)
    return result["exit"] == 1 and any(expected_failure in nodeid for nodeid in result["failed"])


if __name__ == "__main__":
    raise SystemExit(main())
