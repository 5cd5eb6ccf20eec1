"""What CI gets besides the exit status: the Markdown job summary, failures first, and JUnit test
cases carrying the revision and run id."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from helpers.smoke_runs import run_smoke


@pytest.mark.slow
def test_summary_lists_failures_first_and_junit_cases_carry_revision_and_run_id(tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    run = run_smoke(
        tmp_path,
        "--env",
        "local",
        "-k",
        "deployment",
        env={"SMOKE_LOCAL_FAULTS": "stack:wrong-resources", "GITHUB_STEP_SUMMARY": str(summary)},
    )
    assert run.returncode == 1, run.output
    text = summary.read_text()
    assert text.startswith("## ❌ cloudrun-smoke: local — fail")
    failures, checks = text.index("### Failures"), text.index("### Checks")
    assert failures < checks
    assert "test_resources_are_as_configured**: " in text[failures:checks]
    assert "memory is '512Mi', expected '2Gi'" in text[failures:checks]
    assert "| `smoke/test_deployment.py::test_image_is_the_expected_one` | passed |" in text

    junit = next(tmp_path.glob("junit-*.xml"))
    revision = run.verdict["target"]["revision"]
    for case in ET.parse(junit).getroot().iter("testcase"):
        properties = {p.get("name"): p.get("value") for p in case.iter("property")}
        assert properties.get("smoke_revision") == revision, properties
        assert properties.get("smoke_environment") == "local"
