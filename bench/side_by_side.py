"""Two versions of the suite benchmarked side by side: the quick set (on-call, full run at ingestion
delay 0 and 5 s), each configuration run by the previous checkout and by this one in turn, so both meet
the same machine load; the figures the performance targets name, each beside its target.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from suite_run import ROOT, run_suite

ONCALL, D0, D5 = "on-call (-m oncall)", "D=0", "D=5"
QUICK: dict[str, tuple[dict[str, str], tuple[str, ...]]] = {
    ONCALL: ({}, ("-m", "oncall")),
    D0: ({"SMOKE_INGESTION_DELAY": "0"}, ()),
    D5: ({"SMOKE_INGESTION_DELAY": "5", "SMOKE_LOG_DEADLINE": "60"}, ()),
}
Runs = dict[str, list[dict[str, Any]]]  # configuration -> its runs


@dataclass(frozen=True)
class Figure:
    name: str
    value: Callable[[Runs], float | None]
    target: str  # as the performance targets state it
    meets: Callable[[float], bool]


def _median(runs: Runs, config: str, key: str) -> float | None:
    values = [r[key] for r in runs[config] if r.get(key) is not None]
    return round(statistics.median(values), 2) if values else None


def _difference(runs: Runs) -> float | None:
    full, oncall = _median(runs, D0, "wall_s"), _median(runs, ONCALL, "wall_s")
    return None if full is None or oncall is None else round(full - oncall, 2)


def _amplification(runs: Runs) -> float | None:
    late, early = _median(runs, D5, "wall_s"), _median(runs, D0, "wall_s")
    return None if late is None or early is None else round((late - early) / 5, 2)


def _most_reads(runs: Runs) -> float | None:
    reads = [r["reads"] for c in (D0, D5) for r in runs[c] if r.get("reads") is not None]
    return max(reads, default=None)


def _passing(runs: Runs) -> float:
    every = [r for rs in runs.values() for r in rs]
    return sum(r["verdict"] == "pass" for r in every) / len(every)


FIGURES = [
    Figure("full run, wall (s), D=0", lambda r: _median(r, D0, "wall_s"), "-", lambda v: True),
    Figure("on-call subset, wall (s)", lambda r: _median(r, ONCALL, "wall_s"), "-", lambda v: True),
    Figure("full run − on-call (s)", _difference, "≤ 5", lambda v: v <= 5),
    Figure("runs passing", _passing, "all", lambda v: v == 1),
    Figure("log reads per full run (most)", _most_reads, "≤ 12", lambda v: v <= 12),
    Figure("amplification (T(5) − T(0)) / 5", _amplification, "≤ 1.2", lambda v: v <= 1.2),
    Figure(
        "detection median (s), D=0", lambda r: _median(r, D0, "detection_median_s"), "≤ 1", lambda v: v <= 1
    ),
    Figure(
        "detection median (s), D=5", lambda r: _median(r, D5, "detection_median_s"), "≤ 1", lambda v: v <= 1
    ),
    Figure(
        "re-archive absence window (s), D=0",
        lambda r: _median(r, D0, "absence_window_s"),
        "-",
        lambda v: True,
    ),
]


def _revision(checkout: Path) -> str:
    """The checkout's commit, ``+changes`` when its tree differs from it."""
    git = ["git", "-C", str(checkout)]
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    changed = subprocess.run(
        [*git, "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True
    )
    return (head.stdout.strip() or checkout.name) + (" +changes" if changed.stdout.strip() else "")


def compare(previous: Path, repeat: int, results: Path) -> int:
    """Runs every configuration ``repeat`` times on each side, alternating which side goes first, and
    writes ``<date>-side-by-side.json`` and ``.md`` under ``results``."""
    sides = {"previous": previous, "now": ROOT}
    runs: dict[str, Runs] = {side: {c: [] for c in QUICK} for side in sides}
    for turn in range(repeat):
        for config, (env, args) in QUICK.items():
            order = list(sides) if turn % 2 == 0 else list(reversed(sides))
            for side in order:
                run = run_suite(env, *args, checkout=sides[side])
                runs[side][config].append(run)
                print(f"{side:8} {config:20} {run['verdict']:5} {run['wall_s']:6.2f} s", flush=True)
    revisions = {side: _revision(path) for side, path in sides.items()}
    table = {f.name: {side: f.value(runs[side]) for side in sides} | {"target": f.target} for f in FIGURES}
    result = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
        },
        "revisions": revisions,
        "repeat": repeat,
        "figures": table,
        "runs": runs,
    }
    lines = [
        f"# Suite benchmark side by side, {result['date']}",
        "",
        f"Machine: {result['machine']['platform']}, {result['machine']['cpus']} CPUs, Python "
        f"{result['machine']['python']}. Each configuration run {repeat} times by each version, the two "
        "alternating (medians).",
        "",
        f"| Figure | previous ({revisions['previous']}) | now ({revisions['now']}) | target |",
        "|---|---|---|---|",
    ]
    for figure in FIGURES:
        row = table[figure.name]
        cells = [_cell(figure, row[side]) for side in sides]
        lines.append(f"| {figure.name} | {cells[0]} | {cells[1]} | {figure.target} |")
    results.mkdir(parents=True, exist_ok=True)
    stem = datetime.now(UTC).strftime("%Y-%m-%d") + "-side-by-side"
    (results / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n")
    (results / f"{stem}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


def _cell(figure: Figure, value: float | None) -> str:
    if value is None:
        return "-"
    shown = f"{value:.0%}" if figure.name == "runs passing" else f"{value:g}"
    return shown if figure.target == "-" or figure.meets(value) else f"{shown} (misses)"
