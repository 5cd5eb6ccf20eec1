"""CPU only during requests (``resources.cpu_idle``): the stack, the Admin API, discovery and the
diagnosis of a late consolidation.

Google's behaviour pinned here: Cloud Run "Billing settings for services"
(https://cloud.google.com/run/docs/configuring/billing-settings): with request-based billing (the
default, formerly "CPU only allocated during request processing") CPU is allocated only while requests
are processed, at container startup and at shutdown. googleapis/googleapis
google/cloud/run/v2/k8s.min.proto and google-cloud-run's ``ResourceRequirements``: ``cpu_idle`` and
``startup_cpu_boost`` are plain proto3 bools (false is omitted from the JSON, read back as false); once
``limits`` are set the caller "must explicitly set [cpu_idle] to true to preserve the default".
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import run_v2

from cloudrun_smoke.config.environment import load_config
from cloudrun_smoke.errors import ConfigError
from cloudrun_smoke.gcp.cpu_allocation import RequestSpan, request_span, starvation_diagnosis
from cloudrun_smoke.gcp.discovery import cpu_idle_of, discover
from cloudrun_smoke.local.run_model import RevisionSpec
from cloudrun_smoke.local.runner import RevisionInstance
from cloudrun_smoke.local.stack import LocalStack, LocalStackConfig, stack_for
from cloudrun_smoke.local.up import config_from, register
from cloudrun_smoke.local.watchdog import _kill_groups
from cloudrun_smoke.waiting import wait_until
from helpers.paths import ROOT
from helpers.stacks import stack_environment, tiny_stack_config


def stack_config(cpu_idle: bool, boost: bool = False) -> LocalStackConfig:
    spec = RevisionSpec(image="local/tiny:1", cpu_idle=cpu_idle, startup_cpu_boost=boost)
    return tiny_stack_config("cpu-test", spec=spec, ingestion_delay=0.0)


def state(pid: int | None) -> str:
    """The process's scheduler state from /proc (``T``: stopped by SIGSTOP)."""
    assert pid is not None
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def wait_state(instance: RevisionInstance, wanted: str) -> None:
    wait_until(
        lambda: state(instance.pid) == wanted or None,
        timeout=5,
        what=f"instance {instance.pid} in state {wanted!r} (now {state(instance.pid)!r})",
        interval=0.02,
    )


@pytest.fixture(scope="module")
def idle_stack() -> Iterator[LocalStack]:
    with LocalStack(stack_config(cpu_idle=True, boost=True)) as stack:
        yield stack


def test_an_idle_instance_is_frozen_and_a_request_thaws_it(idle_stack: LocalStack) -> None:
    [instance] = idle_stack.instances
    wait_state(instance, "T")  # started and idle: no CPU
    answer = httpx.get(f"{idle_stack.service_url}/hello", timeout=10)
    assert answer.status_code == 200, answer.text  # a frozen instance would never have answered
    wait_state(instance, "T")  # answered: frozen again
    assert instance.frozen


def test_a_request_in_flight_keeps_the_instance_running(idle_stack: LocalStack) -> None:
    [instance] = idle_stack.instances
    with instance.serving():
        assert state(instance.pid) != "T"
        with instance.serving():  # two at once: the first to end must not freeze the other
            pass
        assert state(instance.pid) != "T"
    wait_state(instance, "T")


def test_the_admin_api_and_discovery_report_cpu_idle(idle_stack: LocalStack) -> None:
    options = {"api_endpoint": idle_stack.run_api_endpoint}
    services = run_v2.ServicesClient(
        transport="rest", credentials=AnonymousCredentials(), client_options=options
    )
    revisions = run_v2.RevisionsClient(
        transport="rest", credentials=AnonymousCredentials(), client_options=options
    )
    service = services.get_service(name=idle_stack.service.resource_name)
    resources = service.template.containers[0].resources
    assert (resources.cpu_idle, resources.startup_cpu_boost) == (True, True)
    env = stack_environment(idle_stack, "t")
    target = discover(env, services, revisions)
    assert (target.cpu_idle, target.startup_cpu_boost) == (True, True)


def test_shutdown_thaws_before_sigterm() -> None:
    """A frozen process keeps SIGTERM pending: without SIGCONT first it would die only of SIGKILL,
    after the whole grace period."""
    with LocalStack(stack_config(cpu_idle=True)) as stack:
        [instance] = stack.instances
        wait_state(instance, "T")
        started = time.monotonic()
        instance.stop(grace=8)
        took = time.monotonic() - started
    assert not instance.alive()
    assert took < 4, f"stopping a frozen instance took {took:.1f} s: SIGTERM did not reach it"
    assert instance.returncode == -15, f"the instance ended with {instance.returncode}, not SIGTERM"


def test_without_cpu_idle_nothing_is_frozen() -> None:
    with LocalStack(stack_config(cpu_idle=False)) as stack:
        [instance] = stack.instances
        assert httpx.get(f"{stack.service_url}/hello", timeout=10).status_code == 200
        assert state(instance.pid) != "T" and not instance.frozen
        options = {"api_endpoint": stack.run_api_endpoint}
        services = run_v2.ServicesClient(
            transport="rest", credentials=AnonymousCredentials(), client_options=options
        )
        resources = services.get_service(name=stack.service.resource_name).template.containers[0].resources
        assert (resources.cpu_idle, resources.startup_cpu_boost) == (False, False)


# -- the diagnosis of a late consolidation -------------------------------------------------------------
T0 = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_request_span_reads_the_json_api_latency() -> None:
    span = request_span(at(0), {"latency": "1.250000s", "status": 200})
    assert (span.start, span.end) == (at(0), at(1.25))


def test_progress_only_inside_requests_under_cpu_idle_is_starvation() -> None:
    requests = [RequestSpan(at(0), at(0.05)), RequestSpan(at(0.1), at(0.12))]
    progress = [("enqueued", at(0.04)), ("consolidating", at(0.06))]
    message = starvation_diagnosis(True, "rev-1", progress, requests, now=at(30), fix_command="gcloud x")
    assert message.startswith("CPU starvation: 2 of 2 progress line(s)")
    assert "revision rev-1 has cpu_idle = true" in message
    assert "no request reached it for 30 s" in message
    assert "(gcloud x)" in message


def test_progress_outside_requests_or_cpu_always_allocated_is_not_starvation() -> None:
    requests = [RequestSpan(at(0), at(0.05))]
    late = [("enqueued", at(0.04)), ("consolidating", at(6))]
    message = starvation_diagnosis(True, "rev-1", late, requests, now=at(30))
    assert "CPU starvation" not in message and "1 of 2 progress line(s)" in message
    message = starvation_diagnosis(False, "rev-1", [("enqueued", at(0.04))], requests, now=at(30))
    assert "CPU starvation" not in message
    assert "cpu_idle = false" in message and "slow or broken" in message


# -- settings: smoke.toml, SMOKE_LOCAL_CPU_IDLE, `local up --cpu-idle` ----------------------------------
def test_the_shipped_smoke_toml_expects_and_runs_cpu_always_allocated() -> None:
    config = load_config(ROOT / "smoke.toml")
    local, prod = config.environment("local", environ={}), config.environment("prod", environ={})
    assert local.expect.cpu_idle is False and prod.expect.cpu_idle is False
    assert local.stack is not None and local.stack.cpu_idle is False
    assert stack_for(local).config.spec.cpu_idle is False


def test_cpu_idle_settings_reach_the_revision(tmp_path: Path) -> None:
    path = tmp_path / "smoke.toml"
    path.write_text(
        '[env.local]\nproject = "p"\nregion = "r"\nservice = "s"\n'
        "[env.local.expect]\ncpu_idle = true\n[env.local.stack]\ncpu_idle = true\nstartup_cpu_boost = true\n"
    )
    env = load_config(path).environment("local", environ={})
    assert env.expect.cpu_idle is True
    spec = stack_for(env).config.spec
    assert (spec.cpu_idle, spec.startup_cpu_boost) == (True, True)
    off = load_config(path).environment("local", environ={"SMOKE_LOCAL_CPU_IDLE": "0"})
    assert off.stack is not None and off.stack.cpu_idle is False
    with pytest.raises(ConfigError, match="SMOKE_LOCAL_CPU_IDLE"):
        load_config(path).environment("local", environ={"SMOKE_LOCAL_CPU_IDLE": "maybe"})
    path.write_text(
        '[env.local]\nproject = "p"\nregion = "r"\nservice = "s"\n[env.local.expect]\ncpu_idle = "no"\n'
    )
    with pytest.raises(ConfigError, match="cpu_idle"):
        load_config(path).environment("local", environ={})


def test_local_up_cpu_idle_option() -> None:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    base = ["up", "--env", "local"]
    on = config_from(parser.parse_args([*base, "--cpu-idle"])).stack
    assert on.spec.cpu_idle is True
    shipped = ["--smoke-config", str(ROOT / "smoke.toml")]
    assert config_from(parser.parse_args([*base, *shipped])).stack.spec.cpu_idle is False
    assert config_from(parser.parse_args([*base, *shipped, "--cpu-idle"])).stack.spec.cpu_idle is True
    assert config_from(parser.parse_args([*base, *shipped, "--no-cpu-idle"])).stack.spec.cpu_idle is False


def test_the_watchdog_thaws_a_frozen_group_before_sigterm() -> None:
    """If the stack's process dies, the watchdog ends its groups: a frozen one must get SIGTERM's
    grace (SIGCONT first), not wait for SIGKILL."""
    process = subprocess.Popen(["sleep", "30"], start_new_session=True)
    try:
        os.killpg(process.pid, signal.SIGSTOP)
        wait_until(lambda: state(process.pid) == "T" or None, timeout=5, what="sleep stopped", interval=0.02)
        reaper = threading.Thread(target=process.wait, daemon=True)  # as init reaps the stack's orphans
        reaper.start()
        started = time.monotonic()
        _kill_groups({process.pid}, grace=6)
        took = time.monotonic() - started
        reaper.join(timeout=5)
        assert process.returncode == -signal.SIGTERM, "ended by SIGKILL: SIGTERM never reached it"
        assert took < 3, f"ending a frozen group took {took:.1f} s"
    finally:
        process.kill()
        process.wait()


def test_discovery_reads_cpu_idle_as_the_api_defaults_it() -> None:
    """Without ``resources`` the default holds (true); with them, an omitted cpu_idle is false."""
    assert cpu_idle_of(run_v2.Container(image="x")) is True
    limits_only = run_v2.Container(image="x", resources=run_v2.ResourceRequirements(limits={"cpu": "1"}))
    assert cpu_idle_of(limits_only) is False
    explicit = run_v2.ResourceRequirements(limits={"cpu": "1"}, cpu_idle=True)
    assert cpu_idle_of(run_v2.Container(image="x", resources=explicit)) is True
    assert cpu_idle_of(None) is None
