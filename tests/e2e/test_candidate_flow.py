"""A candidate deployed with no traffic and a tag is tested through its tag URL, with 0 % expected; with
``--canary``, a tagged candidate that serves a share of the traffic, neither 0 nor 100 %."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers.smoke_configs import config_with_candidate
from helpers.smoke_runs import SuiteRun, run_smoke


def run(tmp_path: Path, *args: str, percent: int = 0) -> tuple[SuiteRun, dict]:
    tmp_path.mkdir(exist_ok=True)
    config = config_with_candidate(tmp_path, percent)
    result = run_smoke(tmp_path, "-q", "--env", "local", f"--smoke-config={config}", *args)
    return result, result.verdict


SHARE = "test_deployment.py::test_revision_under_test_serves_all_traffic"


@pytest.mark.slow
def test_a_canary_serving_a_share_passes_with_canary_and_fails_without(tmp_path: Path) -> None:
    """`gcloud run services update-traffic --to-tags canary=10`: 10 % is what --canary expects, and
    what plain --tag (a no-traffic candidate) refuses."""
    canary, verdict = run(tmp_path / "a", "--tag", "canary", "--canary", "-k", "deployment", percent=10)
    assert canary.returncode == 0, canary.output
    shares = {t["revision"]: t for t in verdict["target"]["traffic"]}
    assert shares[verdict["target"]["revision"]]["percent"] == 10 and verdict["options"]["--canary"] == ""
    tagged, _ = run(tmp_path / "b", "--tag", "canary", "-k", "serves_all_traffic", percent=10)
    assert tagged.returncode == 1 and tagged.outcomes[SHARE] == "failure", tagged.output
    assert "to serve 0 % of traffic, it serves 10 %" in tagged.messages[SHARE], tagged.messages[SHARE]


@pytest.mark.slow
def test_a_canary_with_no_traffic_fails_the_share_check(tmp_path: Path) -> None:
    run_, _ = run(tmp_path, "--tag", "canary", "--canary", "-k", "serves_all_traffic")
    assert run_.returncode == 1 and run_.outcomes[SHARE] == "failure", run_.output
    message = run_.messages[SHARE]
    assert "above 0 % and below 100 %, it serves 0 %" in message and "--to-tags canary=10" in message, message


def test_canary_without_a_tag_is_one_clear_line(tmp_path: Path) -> None:
    result = run_smoke(tmp_path, "--env", "local", "--canary", "--collect-only")
    assert result.returncode == 4, result.output
    assert (
        "--canary needs --tag NAME or --revision NAME" in result.output and "Traceback" not in result.output
    )


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
