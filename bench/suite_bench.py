"""Benchmark of the smoke suite on the local stack: wall time, log reads, detection latency, scale.

Each figure comes from one run of `pytest smoke/ --env local` in a subprocess and its JSON verdict
(`--smoke-report`). Writes bench/results/<date>.json and .md; prints the Markdown table.

    python bench/suite_bench.py            # everything (a few minutes)
    python bench/suite_bench.py --quick    # D=0 and D=5 only
    python bench/suite_bench.py --previous ../old --repeat 3
        # the quick set, this checkout and a previous one (with its own .venv) alternating, run by
        # run: writes bench/results/<date>-side-by-side.json and .md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from side_by_side import compare
from suite_run import run_suite

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="only the ingestion-delay pair")
    parser.add_argument(
        "--previous",
        type=Path,
        metavar="CHECKOUT",
        help="a checkout of the previous version, with its own .venv: run beside this one, alternating",
    )
    parser.add_argument("--repeat", type=int, default=3, help="with --previous: runs of each (median)")
    args = parser.parse_args()
    if args.previous is not None:
        python = args.previous / ".venv" / "bin" / "python"
        if not python.exists() or not (args.previous / "smoke").is_dir():
            print(f"suite_bench: --previous {args.previous}: no checkout with a .venv there ({python})")
            return 2
        return compare(args.previous.resolve(), max(1, args.repeat), RESULTS)

    runs: dict[str, dict[str, Any]] = {}
    runs["on-call (-m oncall)"] = run_suite({}, "-m", "oncall")
    runs["D=0"] = run_suite({"SMOKE_INGESTION_DELAY": "0"})
    runs["D=5"] = run_suite({"SMOKE_INGESTION_DELAY": "5", "SMOKE_LOG_DEADLINE": "60"})
    if not args.quick:
        # The window checks, after the stack's simulated users filled the window: the wall time
        # includes that traffic.
        runs["window (-m window)"] = run_suite({}, "-m", "window")
        # The full run against three instances sharing one Chroma server and one SQLite file
        # (`shared_state`): the front end spreads the requests over all three.
        runs["3 instances, shared state"] = run_suite(
            {"SMOKE_LOCAL_INSTANCES": "3", "SMOKE_LOCAL_SHARED_STATE": "1"}
        )
        # Cloud Logging's short and empty pages (stack:short-pages): every page is a read.
        runs["short pages"] = run_suite({"SMOKE_LOCAL_FAULTS": "stack:short-pages"})
        for n in (1, 10, 50):
            runs[f"scale {n}"] = run_suite(
                {"SMOKE_ARCHIVE_SAMPLES": str(n), "SMOKE_LOG_DEADLINE": "90"}, "-k", "slo"
            )
        # The same 50 threads with a service whose queue consolidates 8 at once instead of 2: what of
        # the scale cost is the suite's, and what is the service's queue.
        runs["scale 50, 8 queue workers"] = run_suite(
            {
                "SMOKE_ARCHIVE_SAMPLES": "50",
                "SMOKE_LOG_DEADLINE": "90",
                "SMOKE_LOCAL_SERVICE_CMD": f"{sys.executable} -m emergence_reference --workers 8",
            },
            "-k",
            "slo",
        )
        # CPU only during requests (the runbook's deploy): the verdict (the deployment check fails on
        # cpu_idle), and the on-call subset, whose readiness wait now pays for the vector store opening
        # only while the readiness polls are served.
        runs["cpu_idle on"] = run_suite({"SMOKE_LOCAL_CPU_IDLE": "1"})
        runs["cpu_idle on, on-call"] = run_suite({"SMOKE_LOCAL_CPU_IDLE": "1"}, "-m", "oncall")
    amplification = (runs["D=5"]["wall_s"] - runs["D=0"]["wall_s"]) / 5

    result = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
        },
        "delay_amplification": round(amplification, 2),
        "runs": runs,
    }
    lines = [
        f"# Suite benchmark, {result['date']}",
        "",
        f"Machine: {result['machine']['platform']}, {result['machine']['cpus']} CPUs, Python {result['machine']['python']}.",
        "",
        "| Run | Verdict | Wall (s) | entries:list calls | ListTimeSeries calls | Max reads in 1 s "
        "| Detection median (s) | Detection P95 (s) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, r in runs.items():
        lines.append(
            f"| {name} | {r['verdict']} | {r['wall_s']} | {r['reads']} | {r['monitoring_calls'] or '-'} | "
            f"{r['max_reads_in_one_second']} | {r['detection_median_s'] or '-'} | {r['detection_p95_s'] or '-'} |"
        )
    lines += ["", f"Delay amplification (T(5) − T(0)) / 5 = {result['delay_amplification']} (target ≤ 1.2)."]
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = datetime.now(UTC).strftime("%Y-%m-%d")
    (RESULTS / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / f"{stem}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
