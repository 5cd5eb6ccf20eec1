"""A candidate deployed with no traffic and a tag is tested through its tag URL, with 0 % expected."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers.smoke_configs import config_with_candidate
from helpers.smoke_runs import SuiteRun, run_smoke


def run(tmp_path: Path, *args: str) -> tuple[SuiteRun, dict]:
    result = run_smoke(
        tmp_path, "-q", "--env", "local", f"--smoke-config={config_with_candidate(tmp_path)}", *args
    )
    return result, result.verdict


@pytest.mark.slow
def test_tag_targets_the_candidate_through_its_tag_url(tmp_path: Path) -> None:
    result, verdict = run(tmp_path, "--tag", "canary", "-k", "deployment or health")
    assert result.returncode == 0, result.output
    target = verdict["target"]
    shares = {t["revision"]: t for t in target["traffic"]}
    candidate = shares[target["revision"]]
    assert candidate["tag"] == "canary" and candidate["percent"] == 0, target
    assert target["url"] == candidate["uri"], "the suite must call the tag URL, not the service URL"
    assert any(t["percent"] == 100 and t["revision"] != target["revision"] for t in target["traffic"])


@pytest.mark.slow
def test_an_unknown_tag_is_one_clear_line(tmp_path: Path) -> None:
    result, _ = run(tmp_path, "--tag", "nope", "-k", "deployment")
    out = result.output
    assert result.returncode == 4, out
    assert "has no tag 'nope' (tags: canary -> " in out
    assert "Traceback" not in out
