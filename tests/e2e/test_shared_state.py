"""Several instances sharing state, as production's ``DATABASE_URL`` and ``CHROMA_HOST`` give them.

``[env.local.stack] shared_state = true`` starts a real Chroma server (``chroma run``) and one SQLite
file beside the instances; every instance gets the variables and the reference service uses them. The
whole default suite passes against three such instances, with requests spread over all three, and
nothing the stack started outlives it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import chromadb
import httpx
import pytest

from cloudrun_smoke.config.environment import load_config
from cloudrun_smoke.errors import ConfigError
from cloudrun_smoke.local.stack import LocalStack, LocalStackConfig, stack_for
from cloudrun_smoke.waiting import wait_until
from helpers.local_up import local_up
from helpers.paths import TINY
from helpers.processes import alive
from helpers.smoke_runs import ROOT, run_local, run_smoke

BYPASS = {"x-dev-bypass": "1", "x-user-id": "shared-state-user"}
REQUEST_LOG = "run.googleapis.com%2Frequests"


def test_shared_state_is_a_stack_setting_and_a_variable(tmp_path: Path) -> None:
    base = '[env.l]\nproject = "p"\nregion = "r"\nservice = "s"\n[env.l.stack]\n'
    path = tmp_path / "smoke.toml"
    path.write_text(base + "shared_state = true\ninstances = 3\n")
    assert stack_for(load_config(path).environment("l", environ={})).config.shared_state is True
    path.write_text(base)
    assert stack_for(load_config(path).environment("l", environ={})).config.shared_state is False
    on = load_config(path).environment("l", environ={"SMOKE_LOCAL_SHARED_STATE": "1"})
    assert on.stack is not None and on.stack.shared_state is True
    with pytest.raises(ConfigError, match="SMOKE_LOCAL_SHARED_STATE: expected 1 or 0"):
        load_config(path).environment("l", environ={"SMOKE_LOCAL_SHARED_STATE": "maybe"})
    path.write_text(base + 'shared_state = "yes"\n')
    with pytest.raises(ConfigError, match=r"\[env.l.stack\].shared_state: expected true or false"):
        load_config(path).environment("l", environ={})


@contextlib.contextmanager
def shared_stack(instances: int = 3) -> Iterator[LocalStack]:
    with LocalStack(LocalStackConfig(instances=instances, shared_state=True)) as stack:
        for instance in stack.instances:
            wait_until(
                lambda url=instance.url: httpx.get(f"{url}/healthz").status_code == 200 or None,
                timeout=30,
                what=f"instance {instance.url} to be ready (its vector store open)",
            )
        yield stack


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("DATABASE_URL", "postgresql://app:s3cret@db/emergence", "supports sqlite:///PATH only"),
        ("CHROMA_PORT", "http", "CHROMA_PORT must be an integer"),
    ],
)
def test_a_store_the_reference_cannot_use_exits_2_in_one_line(
    tmp_path: Path, variable: str, value: str, message: str
) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "emergence_reference"],
        env={**os.environ, "PORT": "0", "EMERGENCE_DATA_DIR": str(tmp_path / "data"), variable: value},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "s3cret" not in proc.stderr
    assert not (tmp_path / "data").exists()  # refused before touching the disk


def test_every_instance_reads_what_another_wrote() -> None:
    with shared_stack() as stack:
        first, *others = [i.url for i in stack.instances]
        created = httpx.post(
            f"{first}/api/threads/", json={"type": "chat", "title": "shared"}, headers=BYPASS
        )
        assert created.status_code == 201, created.text
        thread_id = created.json()["id"]
        for url in others:
            seen = httpx.get(f"{url}/api/threads/{thread_id}", headers=BYPASS)
            assert seen.status_code == 200, f"{url} does not see the thread {first} created: {seen.text}"
        # One Chroma server holds the collection every instance opened, and the revision declares it.
        assert stack.shared_state is not None
        server = chromadb.HttpClient(host="127.0.0.1", port=stack.shared_state.port)
        assert [c.name for c in server.list_collections()] == ["memory_preferences"]
        revision = stack.service.revisions[-1]
        assert revision.spec.env["DATABASE_URL"] == f"sqlite:///{stack.shared_state.db_path}"
        assert revision.spec.env["CHROMA_PORT"] == str(stack.shared_state.port)
        pids = [stack.shared_state.pid, *(i.pid for i in stack.instances)]
    assert pids[0] and not any(alive(pid) for pid in pids if pid)


def test_nothing_survives_a_sigkill_of_local_up_with_shared_state() -> None:
    """SIGKILL of the stack's process: nothing it started (instances, Chroma server) survives."""
    up = local_up("--service-cmd", TINY, "--instances", "2", "--shared-state")
    try:
        chroma = int(up.field("shared Chroma pid"))
        heartbeat = httpx.get(f"{up.field('shared Chroma server')}/api/v2/heartbeat")
        assert heartbeat.status_code == 200 and alive(chroma)
        assert up.field("shared database").startswith("sqlite:////")
        everything = [chroma, *up.pids, int(up.field("watchdog pid"))]
        up.process.send_signal(signal.SIGKILL)
        up.process.wait(timeout=10)
        wait_until(
            lambda: (not any(alive(p) for p in everything)) or None,
            timeout=20,
            what="every process of the killed stack (the Chroma server included) to end",
        )
    finally:
        if up.process.poll() is None:
            up.process.kill()
            up.process.wait()


def junit_property(folder: Path, name: str) -> list[str]:
    return [
        p.get("value", "")
        for junit in folder.glob("junit-*.xml")
        for p in ET.parse(junit).getroot().iter("property")
        if p.get("name") == name
    ]


@pytest.mark.slow
def test_the_default_suite_passes_against_three_instances_sharing_state(tmp_path: Path) -> None:
    env = load_config(ROOT / "smoke.toml").environment("local", {})
    assert env.stack is not None
    settings = env.stack.model_copy(update={"instances": 3, "shared_state": True})
    with stack_for(env.with_overrides(stack=settings)) as stack:
        attach = {
            "SMOKE_RUN_API_ENDPOINT": stack.run_api_endpoint,
            "SMOKE_LOGGING_API_ENDPOINT": stack.logging_api_endpoint,
        }
        run = run_smoke(tmp_path, "--env", "local", env=attach)
        failed = {k: run.messages.get(k, "") for k, v in run.outcomes.items() if v in ("failure", "error")}
        assert run.returncode == 0 and not failed, f"{failed}\n{run.output}"
        served = Counter(
            s.entry.get("labels", {}).get("instanceId")
            for s in stack.logging.store
            if str(s.entry.get("logName", "")).endswith(REQUEST_LOG)
        )
        ids = [i.instance_id for i in stack.instances]
        assert len(ids) == 3 and all(served[i] > 0 for i in ids), (
            f"requests per instance: {[served[i] for i in ids]}"
        )
        pids = [stack.shared_state.pid if stack.shared_state else None, *(i.pid for i in stack.instances)]
    assert junit_property(tmp_path, "shared_state") == ["DATABASE_URL and CHROMA_HOST set"]
    assert "per-instance state" not in run.output
    assert all(pids) and not any(alive(pid) for pid in pids if pid)


@pytest.mark.slow
def test_several_instances_without_shared_state_fail_with_the_per_instance_diagnosis(tmp_path: Path) -> None:
    """The public configuration with three instances: the deployment check says the revision shares
    nothing, and the first request that reaches another instance fails with the diagnosis, once."""
    run = run_smoke(
        tmp_path, "--env", "local", "-k", "deployment or tenant", env={"SMOKE_LOCAL_INSTANCES": "3"}
    )
    assert run.returncode == 1, run.output
    assert run.outcomes["test_security.py::test_tenant_isolation"] == "failure", run.output
    assert junit_property(tmp_path, "shared_state") == ["per instance"]
    assert "may run up to 10 instances but does not set DATABASE_URL nor CHROMA_HOST" in run.output
    assert run.output.count("cloudrun-smoke: per-instance state") == 1, run.output
    assert "set DATABASE_URL and CHROMA_HOST on the revision" in run.output
    assert "Traceback" not in run.output


def test_half_shared_state_fails_the_deployment_check(tmp_path: Path) -> None:
    """DATABASE_URL without CHROMA_HOST: the database is shared, the preferences are not."""
    config = tmp_path / "smoke.toml"
    text = (ROOT / "smoke.toml").read_text()
    config.write_text(
        text.replace(
            "[env.local.stack.env]\n", '[env.local.stack.env]\nDATABASE_URL = "sqlite:///shared.db"\n', 1
        )
    )
    run = run_local(tmp_path, config, "-k", "state_is_shared")
    check = "test_deployment.py::test_state_is_shared_when_several_instances_may_serve"
    assert run.outcomes == {check: "failure"}, run.output
    message = run.messages[check]
    assert "may run up to 10 instances and sets DATABASE_URL but not CHROMA_HOST" in message, message
    assert "Chroma (preferences) stays inside each instance" in message, message
    assert "Set CHROMA_HOST too (runbook), or deploy with --max-instances 1" in message, message
