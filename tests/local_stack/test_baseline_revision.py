"""[env.NAME.stack] baseline: a baseline revision before the revision under test, for the regression
checks; revision_faults reach the revision under test only. Read back through the Admin API client, as
the suite reads a real service."""

from __future__ import annotations

from pathlib import Path

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import run_v2

from cloudrun_smoke.config.environment import ConfigError, load_config
from cloudrun_smoke.gcp.clients import run_clients
from cloudrun_smoke.gcp.traffic import shares, short_name
from cloudrun_smoke.local.stack import LocalStack
from cloudrun_smoke.waiting import wait_until
from helpers.paths import ROOT
from helpers.stacks import stack_environment, tiny_stack_config

FAULT = "latency-factor=3"


def faults_of(stack: LocalStack, revision: str) -> list[str]:
    """EMERGENCE_FAULTS as each instance process of ``revision`` got it (its /proc environ)."""
    found = []
    for instance in stack.instances_of(revision):
        environ = Path(f"/proc/{instance.pid}/environ").read_bytes().split(b"\0")
        found += [v.decode().partition("=")[2] for v in environ if v.startswith(b"EMERGENCE_FAULTS=")]
    return found


def service_of(stack: LocalStack) -> run_v2.Service:
    services, _ = run_clients(stack_environment(stack), AnonymousCredentials())  # type: ignore[no-untyped-call]
    cfg = stack.config
    return services.get_service(name=f"projects/{cfg.project}/locations/{cfg.region}/services/{cfg.service}")


def test_a_split_baseline_serves_half_beside_the_revision_under_test_which_alone_gets_its_faults() -> None:
    with LocalStack(tiny_stack_config("baseline-split", baseline="split", revision_faults=(FAULT,))) as stack:
        assert stack.baseline is not None
        service = service_of(stack)
        under_test = short_name(service.latest_ready_revision)
        assert under_test != stack.baseline.name
        assert {(s.revision, s.percent) for s in shares(service)} == {
            (under_test, 50),
            (stack.baseline.name, 50),
        }
        assert faults_of(stack, under_test) == [FAULT]
        assert faults_of(stack, stack.baseline.name) == []  # nor any fault of the stack's own
        _, revisions = run_clients(stack_environment(stack), AnonymousCredentials())  # type: ignore[no-untyped-call]
        revision = revisions.get_revision(name=f"{service.name}/revisions/{under_test}")
        assert "EMERGENCE_FAULTS" not in [e.name for e in revision.containers[0].env]  # not reported


def test_a_sequence_baseline_serves_alone_then_the_revision_under_test_replaces_it() -> None:
    seen: list[tuple[str, int]] = []

    def baseline_phase(stack: LocalStack) -> None:  # where the baseline's traffic runs
        seen.extend((s.revision, s.percent) for s in shares(service_of(stack)) if s.percent)

    stack = LocalStack(tiny_stack_config("baseline-sequence", baseline="sequence", revision_faults=(FAULT,)))
    stack.between_revisions = baseline_phase
    with stack:
        assert stack.baseline is not None and seen == [(stack.baseline.name, 100)]
        service = service_of(stack)
        under_test = short_name(service.latest_ready_revision)
        assert [(s.revision, s.percent) for s in shares(service) if s.percent] == [(under_test, 100)]
        baseline = stack.baseline.name
        assert [s.revision for s in stack.shutdowns] == [baseline]  # replaced: its instance shut down
        wait_until(
            lambda: not any(i.alive() for i in stack.instances_of(baseline)) or None,
            timeout=20,
            what="the baseline's instance to stop",
        )
        assert faults_of(stack, under_test) == [FAULT]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            'baseline = "both"',
            "[env.local.stack].baseline: expected one of '', 'split', 'sequence', got 'both'",
        ),
        ('revision_faults = ["stack:slow-ingestion"]', "faults of the service only"),
    ],
)
def test_bad_baseline_settings_are_one_line(tmp_path: Path, line: str, message: str) -> None:
    text = (ROOT / "smoke.toml").read_text().replace("[env.local.stack]\n", f"[env.local.stack]\n{line}\n", 1)
    path = tmp_path / "smoke.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path).environment("local", environ={})
    assert message in str(info.value) and "\n" not in str(info.value)
