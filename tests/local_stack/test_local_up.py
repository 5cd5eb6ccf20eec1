"""``cloudrun-smoke local up`` as a newcomer runs it: every URL printed and answering, logs readable
through the Logging client, and no process left behind however it ends."""

from __future__ import annotations

import argparse
import re
import signal
import subprocess
from pathlib import Path

import httpx
import pytest

from cloudrun_smoke.errors import SmokeError
from cloudrun_smoke.local.up import config_from, register
from cloudrun_smoke.waiting import wait_until
from helpers.local_up import CLI, local_up
from helpers.log_entries import logging_client
from helpers.paths import ROOT, TINY
from helpers.processes import alive


def test_local_up_prints_every_url_and_each_answers_and_logs(tmp_path: Path) -> None:
    up = local_up("--service-cmd", TINY, "--instances", "2", "--candidate-cmd", TINY, "--tag", "canary")
    try:
        service_url, tag_url = up.field("service URL"), up.field("tag URL canary")
        logging_api, run_api = up.field("Cloud Logging API"), up.field("Cloud Run Admin API")
        assert len(up.pids) == 4  # two instances of each revision
        revisions = re.findall(r"revision (\S+): ready, (\d+)% traffic", up.banner)
        assert [p for _, p in revisions] == ["100", "0"]
        assert httpx.get(f"{service_url}/x").json()["revision"] == revisions[0][0].rstrip(":")
        assert httpx.get(f"{tag_url}/y").json()["revision"] == revisions[1][0].rstrip(":")
        service = httpx.get(
            f"{run_api}/v2/projects/smoke-local/locations/us-central1/services/emergencev8-backend"
        ).json()
        assert service["uri"] == service_url
        assert {t.get("tag", ""): t.get("uri", "") for t in service["trafficStatuses"]} == {
            "": "",
            "canary": tag_url,
        }
        logs = logging_client(logging_api, "smoke-local")
        request_log = 'logName="projects/smoke-local/logs/run.googleapis.com%2Frequests"'
        found = wait_until(
            lambda: got if len(got := list(logs.list_entries(filter_=request_log))) >= 2 else None,
            timeout=10,
            what="the request log entries",
            interval=0.1,
        )
        assert {e.http_request["requestUrl"] for e in found} == {f"{service_url}/x", f"{tag_url}/y"}
        app = wait_until(
            lambda: list(logs.list_entries(filter_='textPayload="request /y"')) or None,
            timeout=10,
            what="the app's line",
            interval=0.1,
        )
        assert app[0].labels["instanceId"] in up.banner
    finally:
        up.process.send_signal(signal.SIGINT)
        assert up.process.wait(timeout=20) == 0
    assert not any(alive(pid) for pid in up.pids)


def test_nothing_survives_a_sigkill_of_local_up_nor_a_crashed_instance() -> None:
    up = local_up("--service-cmd", f"{TINY} --spawn-child", "--instances", "2")
    watchdog = int(up.field("watchdog pid"))
    service_url = up.field("service URL")
    try:
        children = {httpx.get(f"{service_url}/child").json()["pid"] for _ in range(2)}
        assert len(children) == 2 and all(alive(pid) for pid in children)
        # One instance crashes: what it started dies with it, `local up` keeps serving.
        assert httpx.get(f"{service_url}/exit").status_code == 503
        wait_until(
            lambda: sum(not alive(p) for p in [*up.pids, *children]) == 2 or None,
            timeout=10,
            what="the crashed instance and its child to end",
            interval=0.05,
        )
        assert up.process.poll() is None
        assert httpx.get(f"{service_url}/still-up").status_code == 200
        up.process.send_signal(signal.SIGKILL)
        up.process.wait(timeout=10)
        everything = [*up.pids, *children, watchdog]
        wait_until(
            lambda: (not any(alive(p) for p in everything)) or None,
            timeout=15,
            what="every process `local up` started to end after its SIGKILL",
            interval=0.1,
        )
    finally:
        if up.process.poll() is None:
            up.process.kill()


def test_sigterm_stops_local_up_cleanly() -> None:
    up = local_up("--service-cmd", TINY)
    up.process.send_signal(signal.SIGTERM)
    assert up.process.wait(timeout=20) == 0
    assert not any(alive(pid) for pid in up.pids)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--candidate-cmd", "python x.py"], "--candidate-cmd needs --tag"),
        (["--fault", "stack:nope"], "unknown stack fault 'stack:nope'"),
        (["--service-cmd", "/nonexistent/service"], "the revision did not start"),
        (["--instances", "0"], "--instances must be at least 1"),
        (["--idle-timeout", "5"], "--idle-timeout: expected 0 (off) or at least 300 s, got 5.0"),
        (["--neighbours", "-1"], "--neighbours must be >= 0, got -1"),
        (["--smoke-config", "/nonexistent/smoke.toml"], "no such file"),
        (["--revision-fault", "stack:short-pages"], "--revision-fault: faults of the service only"),
        (["--candidate-percent", "10"], "--candidate-percent is the candidate's share: give --candidate-cmd"),
    ],
)
def test_local_up_errors_are_one_line_without_traceback(args: list[str], message: str) -> None:
    done = subprocess.run([*CLI, "local", "up", *args], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert message in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_idle_timeout_and_neighbours_come_from_the_options_over_smoke_toml(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    toml = tmp_path / "smoke.toml"
    toml.write_text(
        '[env.local]\nproject = "p"\nregion = "r"\nservice = "s"\n'
        "[env.local.stack]\nidle_timeout = 900\nneighbours = 2\n",
        encoding="utf-8",
    )
    base = ["up", "--smoke-config", str(toml)]
    from_file = config_from(parser.parse_args(base))
    assert (from_file.stack.idle_timeout, from_file.neighbours) == (900.0, 2.0)
    given = config_from(parser.parse_args([*base, "--idle-timeout", "0", "--neighbours", "0.5"]))
    assert (given.stack.idle_timeout, given.neighbours) == (0.0, 0.5)


def test_baseline_revision_faults_and_a_canary_share_come_from_the_options(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    toml = tmp_path / "smoke.toml"
    toml.write_text(
        '[env.local]\nproject = "p"\nregion = "r"\nservice = "s"\n[env.local.stack]\n', encoding="utf-8"
    )
    base = ["up", "--smoke-config", str(toml)]
    split = config_from(
        parser.parse_args([*base, "--baseline", "split", "--revision-fault", "latency-factor=2"])
    )
    assert (split.stack.baseline, split.stack.revision_faults) == ("split", ("latency-factor=2",))
    canary = config_from(
        parser.parse_args(
            [*base, "--candidate-cmd", "python -m x", "--tag", "c", "--candidate-percent", "10"]
        )
    )
    assert (canary.stack.candidate_percent, canary.stack.tag) == (10, "c")
    with pytest.raises(SmokeError, match="--candidate-percent: expected a whole percent from 0"):
        config_from(
            parser.parse_args(
                [*base, "--candidate-cmd", "python -m x", "--tag", "c", "--candidate-percent", "100"]
            )
        )


def test_local_up_runs_neighbours_and_says_what_they_did() -> None:
    up = local_up("--neighbours", "4")
    try:
        assert "neighbours: other users archive 4 thread(s) a second" in up.banner
        logs = logging_client(up.field("Cloud Logging API"), "smoke-local")
        archive = (
            'logName="projects/smoke-local/logs/run.googleapis.com%2Frequests" '
            'AND httpRequest.requestMethod="PATCH" AND httpRequest.status=200'
        )
        wait_until(
            lambda: list(logs.list_entries(filter_=archive, page_size=1)) or None,
            timeout=30,
            what="a neighbour's archive in the request log",
            interval=0.2,
        )
        up.process.send_signal(signal.SIGTERM)
        assert up.process.wait(timeout=30) == 0
        rest = "".join(iter(up.lines.get, ""))
        summary = re.search(r"neighbours: 3 other users archived (\d+) threads", rest)
        assert summary and int(summary.group(1)) >= 1, rest
    finally:
        if up.process.poll() is None:
            up.process.kill()
