"""A rollout during a window: traffic moves to a new revision while consolidations are queued on the old
one, whose instance Cloud Run then shuts down (SIGTERM, SIGKILL 10 s later: container runtime contract,
"Instance shutdown", https://cloud.google.com/run/docs/container-contract#instance-shutdown).

Read back as the window checks read it (the real Logging client, the window's filter, the consolidation
figures): with a service that drops its queue on SIGTERM the queued threads are lost, named with the
instance; with one that says so in a stop line, they are lost and named with that line; with one that
drains its queue in the grace period nothing is lost.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest

from cloudrun_smoke.config.environment import load_config
from cloudrun_smoke.local.run_model import TrafficTarget
from cloudrun_smoke.local.stack import LocalStack, stack_for
from cloudrun_smoke.logs.lines import LogLine
from cloudrun_smoke.logs.pacing import ReadPacer
from cloudrun_smoke.logs.patterns import CATALOGUE
from cloudrun_smoke.timeutil import utcnow
from cloudrun_smoke.waiting import wait_until
from cloudrun_smoke.window.consolidations import SHUTDOWN_GRACE, ConsolidationStats, consolidation_stats
from cloudrun_smoke.window.logs import WindowLogReader
from cloudrun_smoke.window.period import Window
from helpers.log_entries import logging_client
from helpers.smoke_runs import ROOT, run_window
from helpers.stacks import HEADERS, archive_through_front_end, reference_stack_config

# One worker, 2 s before each consolidation starts: three archives keep the queue busy for 6 s.
COMMAND = "python -m emergence_reference --workers 1"
QUEUED = 3


def window_stats(stack: LocalStack, start: datetime) -> tuple[ConsolidationStats, list[LogLine]]:
    client = logging_client(stack.logging_api_endpoint, stack.config.project)
    end = utcnow()
    cfg = stack.config
    reader = WindowLogReader(
        client,
        project=cfg.project,
        service=cfg.service,
        region=cfg.region,
        revision="",
        window=Window(start, end, "the rollout"),
        max_pages=10,
        pacer=ReadPacer(600),
    )
    read = reader.app_lines(CATALOGUE)
    return consolidation_stats(read.items, CATALOGUE, end=end, grace=300.0), read.items


def after_the_grace_period(stack: LocalStack, start: datetime, old: str) -> ConsolidationStats:
    """Archive on the new revision until its lines come more than the grace period after the old
    instance's last one; then the window's figures."""

    def probe() -> ConsolidationStats | None:
        archive_through_front_end(stack, "Kubernetes après le déploiement")
        stats, lines = window_stats(stack, start)
        mine = max((line.timestamp for line in lines if line.instance_id == old), default=None)
        others = max((line.timestamp for line in lines if line.instance_id != old), default=None)
        return stats if mine and others and others - mine > SHUTDOWN_GRACE + timedelta(seconds=1) else None

    return wait_until(probe, timeout=60, what="the new revision's lines past the grace period", interval=1)


@pytest.mark.parametrize("variant", ["shutdown-drops-queue", "logs-its-stop", "shutdown-drains"])
def test_a_rollout_during_the_window(variant: str) -> None:
    """``logs-its-stop`` is the service as it is by default (and the public one): it drops its queue at
    shutdown too, but says how many with ``[MemoryTaskQueue] Stopped N workers, M pending tasks dropped``,
    which names the loss without waiting for the instance's silence."""
    faults = ("queue-slow=2",) if variant == "logs-its-stop" else ("queue-slow=2", variant)
    cfg = reference_stack_config("reference-stack", *faults)
    with LocalStack(cfg.model_copy(update={"service_cmd": COMMAND})) as stack:
        old, queued, stats = rollout(stack)
        assert [s.instance_id for s in stack.shutdowns] == [old]
    lost = [a.thread_id for a in stats.lost_with_instance]
    if variant == "shutdown-drops-queue":
        assert lost and set(lost) <= set(queued), stats.attempts
        assert {a.instance for a in stats.lost_with_instance} == {old}
        message = stats.shutdown_losses()
        assert f"instance {old} logged nothing after" in message
        assert all(t in message for t in lost) and "SIGTERM" in message
        assert stats.failed >= len(lost)
    elif variant == "logs-its-stop":
        assert lost and set(lost) <= set(queued), stats.attempts
        message = stats.shutdown_losses()
        assert f"instance {old} logged '[MemoryTaskQueue] Stopped 1 workers, " in message, message
        assert all(t in message for t in lost) and "SIGTERM" in message
    else:
        assert (lost, stats.lost) == ([], 0)
        assert set(queued) <= stats.consolidated_threads


def rollout(stack: LocalStack) -> tuple[str, list[str], ConsolidationStats]:
    """A candidate made ready, threads queued on the serving revision, then all traffic moved to the
    candidate: (the old instance's id, the queued threads, the window's figures once the new lines are
    past the grace period)."""
    start = utcnow()
    first = stack.serving_revision
    assert first is not None
    old = stack.instances_of(first)[0]
    second = stack.deploy_candidate(COMMAND, "next").name
    wait_until(
        lambda: httpx.get(f"{stack.tag_url('next')}/healthz", headers=HEADERS).status_code == 200 or None,
        timeout=30,
        what="the new revision ready",
    )
    queued = [archive_through_front_end(stack, f"Kubernetes numéro {i}") for i in range(QUEUED)]
    stack.set_traffic([TrafficTarget(second, 100)])  # the rollout: the old revision loses its traffic
    return old.instance_id, queued, after_the_grace_period(stack, start, old.instance_id)


@pytest.mark.slow
def test_the_window_run_fails_the_failure_rate_naming_the_instance_and_its_lost_threads(
    tmp_path: Path,
) -> None:
    """Through the suite as on-call runs it (``pytest smoke/ -m window``, attached to the stack): the
    consolidation failure rate fails, naming the instance shut down, its threads and the fix."""
    env = load_config(ROOT / "smoke.toml").environment(
        "local",
        environ={
            "SMOKE_LOCAL_FAULTS": "queue-slow=2,shutdown-drops-queue",
            "SMOKE_LOCAL_SERVICE_CMD": COMMAND,
        },
    )
    with stack_for(env) as stack:
        instance, queued, _ = rollout(stack)
        run = run_window(
            tmp_path,
            "-k",
            "consolidation_failure_rate",
            env={
                "SMOKE_RUN_API_ENDPOINT": stack.run_api_endpoint,
                "SMOKE_LOGGING_API_ENDPOINT": stack.logging_api_endpoint,
                "SMOKE_MONITORING_API_ENDPOINT": stack.monitoring_api_endpoint,
            },
        )
    check = "test_window.py::test_consolidation_failure_rate"
    assert run.returncode == 1 and run.outcomes[check] == "failure", run.output
    message = run.messages[check]
    assert f"instance {instance} logged nothing after" in message and "SIGTERM" in message, message
    assert any(t in message for t in queued), message
