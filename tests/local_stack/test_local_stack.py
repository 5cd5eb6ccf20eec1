"""The local stack end to end: a command run as a revision with Cloud Run's contract, its output
shipped to the Logging emulator, discovery through the real clients, and no process left behind."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from google.cloud import logging as cloud_logging

from cloudrun_smoke.local.run_model import RevisionSpec
from cloudrun_smoke.local.runner import RevisionInstance, RevisionStartError
from cloudrun_smoke.local.stack import LocalStack, LocalStackConfig
from cloudrun_smoke.waiting import wait_until
from helpers.log_entries import logging_client
from helpers.paths import TINY
from helpers.processes import alive
from helpers.stacks import tiny_stack_config


def config(command: str = TINY, **overrides: object) -> LocalStackConfig:
    spec = RevisionSpec(image="local/tiny:1", env={"GREETING": "bonjour"})
    settings: dict[str, object] = {"service_cmd": command, "spec": spec, "ingestion_delay": 0.2}
    return tiny_stack_config("stack-test", **{**settings, **overrides})


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack(config()) as stack:
        yield stack


def logs(stack: LocalStack) -> cloud_logging.Client:
    return logging_client(stack.logging_api_endpoint, "stack-test")


def wait_for_entries(stack: LocalStack, filter_: str, count: int = 1) -> list[cloud_logging.entries.LogEntry]:
    client = logs(stack)
    return wait_until(
        lambda: found if len(found := list(client.list_entries(filter_=filter_))) >= count else None,
        timeout=10,
        what=f"{count} entries matching {filter_}",
        interval=0.1,
    )


def test_revision_runs_with_cloud_runs_environment_and_text_lines_become_text_payload(
    stack: LocalStack,
) -> None:
    revision = stack.service.revisions[0].name
    [entry] = wait_for_entries(stack, 'textPayload:"starting with"')
    assert f"K_SERVICE=tiny K_REVISION={revision} K_CONFIGURATION=tiny" in entry.payload
    assert f"PORT={stack.instances[0].port}" in entry.payload
    assert entry.log_name == "projects/stack-test/logs/run.googleapis.com%2Fstderr"
    assert entry.resource.type == "cloud_run_revision"
    assert entry.resource.labels == {
        "project_id": "stack-test",
        "service_name": "tiny",
        "revision_name": revision,
        "location": "us-central1",
        "configuration_name": "tiny",
    }
    assert entry.severity is None  # Cloud Run gives plain text no severity
    assert entry.labels["instanceId"] == stack.instances[0].instance_id


def test_a_json_line_becomes_json_payload_with_structured_fields_moved(stack: LocalStack) -> None:
    [entry] = wait_for_entries(stack, 'jsonPayload.message="structured hello"')
    assert entry.log_name == "projects/stack-test/logs/run.googleapis.com%2Fstdout"
    assert entry.severity == "WARNING"
    assert entry.trace == "projects/p/traces/abc"
    assert entry.labels["run.googleapis.com/x"] == "y"
    assert entry.payload == {"message": "structured hello", "component": "tiny"}


def test_request_reaches_the_revision_and_its_output_the_logs(stack: LocalStack) -> None:
    response = httpx.get(f"{stack.service_url}/hello-stack")
    assert response.status_code == 200
    assert response.json()["pid"] == stack.instances[0].pid
    wait_for_entries(stack, 'textPayload="request /hello-stack"')


def test_entries_are_invisible_until_the_ingestion_delay_passed() -> None:
    with LocalStack(config(ingestion_delay=3600.0)) as slow:
        wait_until(lambda: len(slow.store) >= 2 or None, timeout=10, what="the start-up lines to be written")
        assert list(logs(slow).list_entries()) == []


def test_a_revision_that_dies_at_start_reports_its_last_output() -> None:
    with pytest.raises(
        RevisionStartError, match=r"exited with code 1 before listening(.|\n)*cannot open the database"
    ):
        LocalStack(config(f"{TINY} --exit-at-start")).start()


def test_a_revision_that_never_listens_fails_after_the_startup_deadline() -> None:
    stack = LocalStack(config(f"{TINY} --never-listen", startup_timeout=1.0))
    with pytest.raises(
        RevisionStartError, match=r"did not listen on port \d+ within 1 s(.|\n)*structured hello"
    ):
        stack.start()
    assert not any(alive(i.pid) for i in stack.instances if i.pid)


def test_no_process_survives_the_stack_even_after_a_crash() -> None:
    with LocalStack(config()) as stack:
        pid = stack.instances[0].pid
        assert pid and alive(pid)
    assert not alive(pid)
    with LocalStack(config()) as crashed:
        pid = crashed.instances[0].pid
        # The front end answers for the crashed instance, as Cloud Run does.
        assert httpx.get(f"{crashed.service_url}/exit").status_code == 503
        wait_until(lambda: (not alive(pid)) or None, timeout=10, what="the crashed revision to exit")
        after = httpx.get(f"{crashed.service_url}/after")
        assert after.status_code == 503 and "Service Unavailable" in after.text
        wait_for_entries(crashed, 'log_id("run.googleapis.com/varlog/system") "Container called exit(3)."')
        [logged] = wait_for_entries(
            crashed, 'log_id("run.googleapis.com/requests") httpRequest.requestUrl:"/after"'
        )
        assert (logged.http_request["status"], logged.severity) == (503, "ERROR")
    assert not alive(pid)


def test_unknown_command_is_a_clear_error() -> None:
    with pytest.raises(RevisionStartError, match="cannot start revision command"):
        LocalStack(config("/nonexistent/service --port 1")).start()


def test_stack_for_honours_the_stack_settings_of_smoke_toml(tmp_path: Path) -> None:
    from cloudrun_smoke.config.environment import load_config
    from cloudrun_smoke.errors import ConfigError
    from cloudrun_smoke.local.stack import stack_for

    base = '[env.l]\nproject = "p"\nregion = "r"\nservice = "s"\nlog_deadline = 12\n[env.l.stack]\n'
    path = tmp_path / "smoke.toml"
    path.write_text(
        base + 'instances = 3\ncandidate_cmd = "./c"\ntag = "canary"\nfaults = ["stack:logging-429", "x"]\n'
    )
    config = stack_for(load_config(path).environment("l", environ={})).config
    assert (config.instances, config.candidate_cmd, config.tag) == (3, "./c", "canary")
    assert config.faults == ("stack:logging-429", "x")
    assert config.slow_ingestion_delay == 42 and config.throttle_seconds == 4
    env = load_config(path).environment("l", environ={"SMOKE_LOCAL_FAULTS": "stack:heavy-jitter"})
    assert env.stack is not None and env.stack.faults == ("stack:heavy-jitter",)
    for bad, message in [
        ('candidate_cmd = "./c"\n', "candidate_cmd needs a tag"),
        ('faults = ["stack:nope"]\n', "unknown stack fault"),
        ('tag = "Not_A_Tag"\n', "Cloud Run tag"),
        ("instances = 0\n", "instances"),
    ]:
        path.write_text(base + bad)
        with pytest.raises(ConfigError, match=message):
            load_config(path).environment("l", environ={})


PDEATHSIG_PROBE = """
import ctypes, os, socket
sig = ctypes.c_int()
ctypes.CDLL("libc.so.6", use_errno=True).prctl(2, ctypes.byref(sig))  # PR_GET_PDEATHSIG
print(f"pdeathsig={sig.value}", flush=True)
server = socket.create_server(("127.0.0.1", int(os.environ["PORT"])))
while True:
    server.accept()[0].close()
"""


def test_an_instance_dies_with_the_stack_and_no_python_runs_between_its_fork_and_exec(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A ``preexec_fn`` ran gRPC's fork handlers in the child: beside the Monitoring emulator's busy
    gRPC threads, 1 instance start in about 60 aborted before exec (reproduced with 4 threads calling
    ListTimeSeries). The kernel's kill-on-parent-death is set by ``setpriv`` instead."""
    probe = tmp_path / "probe.py"
    probe.write_text(PDEATHSIG_PROBE)
    spawned: list[dict[str, object]] = []
    real_popen = subprocess.Popen

    def recording_popen(*args: Any, **kwargs: Any) -> subprocess.Popen[bytes]:
        spawned.append(kwargs)
        return real_popen(*args, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", recording_popen)
    lines: list[str] = []
    instance = RevisionInstance([sys.executable, str(probe)], {}, lambda stream, line: lines.append(line))
    try:
        instance.start(startup_timeout=20)
        wait_until(lambda: any("pdeathsig=" in line for line in lines) or None, timeout=10, what="the probe")
    finally:
        instance.stop()
    assert spawned and all(kwargs.get("preexec_fn") is None for kwargs in spawned)
    assert f"pdeathsig={int(signal.SIGKILL)}" in lines, lines
