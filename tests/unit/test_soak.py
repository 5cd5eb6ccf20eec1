"""A short soak in CI: one full run under per-entry ingestion delay 0.2–6 s, 10 % of log reads answered
429, a transient 503 on one request in 20 and a slow cold start (`bench/soak.py --runs 50` is the long one)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.paths import ROOT


@pytest.mark.slow
def test_a_healthy_revision_passes_under_jitter(tmp_path: Path) -> None:
    output = tmp_path / "soak.json"
    proc = subprocess.run(
        [
            sys.executable,
            "bench/soak.py",
            "--runs",
            "1",
            "--service-faults",
            "transient-503,slow-start",
            "--output",
            str(output),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = json.loads(output.read_text())["summary"]
    assert summary == {**summary, "runs": 1, "failures": 0}
