"""Instances shut down as Cloud Run shuts them down, and started again on request.

Cloud Run's container runtime contract, "Instance shutdown"
(https://cloud.google.com/run/docs/container-contract#instance-shutdown): SIGTERM, then SIGKILL if the
container has not exited 10 s later; instances are shut down when their revision no longer serves traffic
or when they scale in after being idle. "Testing, traffic migration and rollbacks"
(https://cloud.google.com/run/docs/rollouts-rollbacks-traffic-migration): a tagged revision at 0 % keeps
answering its tag URL, on an instance started for the request if none runs.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from dataclasses import replace

import httpx
import pytest

from cloudrun_smoke.config.environment import load_config
from cloudrun_smoke.config.validators import IDLE_TIMEOUT_FLOOR_S
from cloudrun_smoke.errors import ConfigError
from cloudrun_smoke.local.run_model import TrafficTarget
from cloudrun_smoke.local.stack import LocalStack
from cloudrun_smoke.timeutil import utcnow
from cloudrun_smoke.waiting import wait_until
from helpers.paths import TINY
from helpers.stacks import tiny_stack_config

DEADLINE = 20.0  # seconds: SIGTERM, the 10 s grace period at most, and a loaded machine


def ended(stack: LocalStack, revision: str) -> list[int]:
    """The exit statuses of the revision's instances, once none runs any more."""
    instances = stack.instances_of(revision)
    return wait_until(
        lambda: [i.returncode for i in instances] if not any(i.alive() for i in instances) else None,
        timeout=DEADLINE,
        what=f"the instances of {revision} to end",
    )


@pytest.fixture
def stack() -> Iterator[LocalStack]:
    with LocalStack(tiny_stack_config("stack-test")) as stack:
        yield stack


def test_moving_traffic_away_shuts_the_old_revision_down_and_moving_it_back_starts_one(
    stack: LocalStack,
) -> None:
    first = stack.serving_revision
    assert first is not None
    old = stack.instances_of(first)[0]
    second = stack.deploy(TINY, stack.config.spec).name  # gcloud run deploy: 100 % to the new revision
    assert ended(stack, first) == [-signal.SIGTERM]  # the tiny service ends on SIGTERM's default action
    assert [(s.revision, s.instance_id) for s in stack.shutdowns] == [(first, old.instance_id)]
    assert "no longer receives traffic and has no tag" in stack.shutdowns[0].reason
    assert stack.instances_of(second)[0].alive()
    # A rollback: the revision without instances starts one for its next request.
    stack.set_traffic([TrafficTarget(first, 100)])
    assert httpx.get(f"{stack.service_url}/env", timeout=30).json()["K_REVISION"] == first
    assert [i.alive() for i in stack.instances_of(first)] == [False, True]
    assert ended(stack, second) == [-signal.SIGTERM]


def test_a_tagged_revision_at_zero_percent_keeps_its_instances_and_its_tag_url(stack: LocalStack) -> None:
    first = stack.serving_revision
    assert first is not None
    stack.deploy_candidate(TINY, "canary")
    assert stack.candidate_revision is not None
    stack.set_traffic([TrafficTarget(first, 100), TrafficTarget(stack.candidate_revision, 0, "canary")])
    answer = httpx.get(f"{stack.tag_url('canary')}/env", timeout=30).json()
    assert answer["K_REVISION"] == stack.candidate_revision
    assert stack.shutdowns == [] and all(i.alive() for i in stack.instances)


def test_idle_instances_scale_in_down_to_min_instances_and_start_again_on_request() -> None:
    cfg = tiny_stack_config("stack-test", idle_timeout=1.0)
    cfg = cfg.model_copy(update={"spec": replace(cfg.spec, min_instances=0)})
    with LocalStack(cfg) as stack:
        revision = stack.serving_revision
        assert revision is not None
        assert ended(stack, revision) == [-signal.SIGTERM]
        assert "idle for 1 s: scaled in (min_instances 0)" in stack.shutdowns[0].reason
        assert httpx.get(f"{stack.service_url}/env", timeout=30).json()["K_REVISION"] == revision
        assert len(stack.instances_of(revision)) == 2
        # A tagged revision at 0 % scaled in to none still answers its tag URL.
        candidate = stack.deploy_candidate(TINY, "canary").name
        assert ended(stack, candidate) == [-signal.SIGTERM]
        assert httpx.get(f"{stack.tag_url('canary')}/env", timeout=30).json()["K_REVISION"] == candidate


def test_an_idle_timeout_shorter_than_a_run_is_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "smoke.toml"
    path.write_text(
        '[env.local]\nproject = "p"\nregion = "r"\nservice = "s"\n[env.local.stack]\nidle_timeout = 60\n'
    )
    with pytest.raises(ConfigError, match=f"at least {IDLE_TIMEOUT_FLOOR_S:g} s"):
        load_config(path).environment("local", environ={})


# Listens on $PORT and ignores SIGTERM: only SIGKILL ends it.
DEAF = (
    'python -c "import os, signal, http.server as h; signal.signal(signal.SIGTERM, signal.SIG_IGN); '
    "h.ThreadingHTTPServer(('127.0.0.1', int(os.environ['PORT'])), h.BaseHTTPRequestHandler).serve_forever()\""
)


def test_an_instance_that_ignores_sigterm_is_killed_after_the_grace_period() -> None:
    with LocalStack(tiny_stack_config("stack-test", service_cmd=DEAF, shutdown_grace=1.0)) as stack:
        first = stack.serving_revision
        assert first is not None
        stack.deploy(TINY, stack.config.spec)
        [shutdown] = stack.shutdowns
        assert ended(stack, first) == [-signal.SIGKILL]
        assert (utcnow() - shutdown.at).total_seconds() >= 1.0  # not before the grace period
