"""``cloudrun-smoke rollback`` against a local stack, through the real ``google-cloud-run`` clients: the
plan changes nothing, ``--yes`` moves the traffic (the Admin API and the front end agree), tags keep
working, and every refusal is one line that leaves the traffic as it was."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import run_v2

from cloudrun_smoke import cli
from cloudrun_smoke.errors import SmokeError
from cloudrun_smoke.gcp import traffic
from cloudrun_smoke.gcp.clients import run_clients
from cloudrun_smoke.local.run_model import Revision, RevisionSpec, TrafficTarget
from cloudrun_smoke.local.stack import LocalStack
from cloudrun_smoke.release.apply import apply_rollback
from cloudrun_smoke.release.command import EXIT_DONE, EXIT_FAILED, EXIT_PLAN_ONLY, EXIT_USAGE
from cloudrun_smoke.release.plan import RollbackRefused, plan_rollback
from helpers.paths import TINY
from helpers.stacks import stack_environment, tiny_stack_config

PROJECT, REGION, SERVICE = "rollback-test", "us-central1", "tiny"
SECRET = "hunter2-value-of-an-env-var"
SPEC = RevisionSpec(image="local/tiny:1", env={"DATABASE_URL": f"postgres://u:{SECRET}@db/x"})
SMOKE_VARIABLES = ("SMOKE_ENV", "SMOKE_CONFIG", "SMOKE_RUN_API_ENDPOINT", "SMOKE_LOGGING_API_ENDPOINT")


class Deployed:
    """A local stack with two revisions of the tiny service: ``old``, then ``new`` serving 100 %."""

    def __init__(self, stack: LocalStack, old: str, new: str) -> None:
        self.stack, self.old, self.new = stack, old, new
        self.env = stack_environment(stack, "local-test")
        self.services, self.revisions = run_clients(self.env, AnonymousCredentials())

    def traffic(self) -> list[tuple[str, int, str]]:
        """The traffic as the Admin API reports it, read with a fresh client (LATEST resolved)."""
        services, _ = run_clients(self.env, AnonymousCredentials())
        service = services.get_service(name=f"projects/{PROJECT}/locations/{REGION}/services/{SERVICE}")
        return [(t.revision, t.percent, t.tag) for t in traffic.shares(service)]

    def answering_revision(self, url: str) -> str:
        return str(httpx.get(url + "/", timeout=10).json()["revision"])

    def deploy(self, *, traffic: bool = True) -> Revision:
        return self.stack.deploy(TINY, SPEC, traffic=traffic)


def two_revisions(reconcile_delay: float = 0.2) -> Iterator[Deployed]:
    config = tiny_stack_config(
        PROJECT,
        region=REGION,
        service=SERVICE,
        spec=SPEC,
        ingestion_delay=0.0,
        reconcile_delay=reconcile_delay,
    )
    with LocalStack(config) as stack:
        old = stack.serving_revision
        assert old is not None
        new = stack.deploy(TINY, SPEC).name
        assert stack.serving_revision == new
        yield Deployed(stack, old, new)


@pytest.fixture
def deployed() -> Iterator[Deployed]:
    yield from two_revisions()


@pytest.fixture
def slow_to_reconcile() -> Iterator[Deployed]:
    """Traffic changes take a minute, as they sometimes do on Google's side."""
    yield from two_revisions(reconcile_delay=60.0)


# -- the library ---------------------------------------------------------------------------------------
def test_the_plan_changes_nothing_and_explains_its_choice(deployed: Deployed) -> None:
    before = deployed.traffic()
    generation = deployed.stack.service.generation

    plan = plan_rollback(deployed.env, deployed.services, deployed.revisions)

    assert (plan.serving, plan.target.name) == (deployed.new, deployed.old)
    assert "is the service's latest created and latest ready revision" in plan.reason
    assert "newest Ready revision created before it" in plan.reason
    text = plan.describe()
    assert f"gcloud run services update-traffic {SERVICE} --to-latest --region {REGION}" in text
    assert f"--to-revisions {deployed.old}=100" in text
    assert f"gcloud run services update-traffic {SERVICE} --project {PROJECT} --region {REGION}" in text
    assert f"{deployed.new} 100 %" in text, text
    assert SECRET not in text
    assert deployed.traffic() == before == [(deployed.new, 100, "")]
    assert deployed.stack.service.generation == generation


def test_apply_moves_all_traffic_to_the_older_revision(deployed: Deployed) -> None:
    plan = plan_rollback(deployed.env, deployed.services, deployed.revisions)
    result = apply_rollback(plan, deployed.services, timeout=30)

    assert result.revision == deployed.old
    assert deployed.traffic() == [(deployed.old, 100, "")]
    services, _ = run_clients(deployed.env, AnonymousCredentials())
    service = services.get_service(name=plan.resource_name)
    [target] = service.traffic
    assert target.type_ == run_v2.TrafficTargetAllocationType.TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION
    assert deployed.answering_revision(deployed.stack.service_url) == deployed.old


def test_explicit_to_picks_that_revision(deployed: Deployed) -> None:
    newest = deployed.deploy().name
    plan = plan_rollback(deployed.env, deployed.services, deployed.revisions, to=deployed.old)
    assert (plan.serving, plan.target.name) == (newest, deployed.old)
    assert "--to" in plan.reason

    apply_rollback(plan, deployed.services, timeout=30)
    assert deployed.traffic() == [(deployed.old, 100, "")]


def test_the_default_skips_revisions_that_never_became_ready(deployed: Deployed) -> None:
    failed = deployed.stack.add_failed_revision(SPEC, "Container called exit(1).").name
    newest = deployed.deploy().name

    plan = plan_rollback(deployed.env, deployed.services, deployed.revisions)

    assert (plan.serving, plan.target.name) == (newest, deployed.new)
    assert f"skipped as not Ready: {failed}" in plan.reason


def test_tagged_targets_stay_at_zero_and_their_urls_keep_answering(deployed: Deployed) -> None:
    candidate = deployed.stack.deploy_candidate(TINY, "candidate-abc1234", SPEC).name
    # The candidate is the latest created revision and serves nothing: no default target.
    with pytest.raises(RollbackRefused, match=f"latest created {candidate}, latest ready {candidate}"):
        plan_rollback(deployed.env, deployed.services, deployed.revisions)
    plan = plan_rollback(deployed.env, deployed.services, deployed.revisions, to=deployed.old)
    assert (plan.target.name, plan.serving) == (deployed.old, deployed.new)

    apply_rollback(plan, deployed.services, timeout=30)

    assert sorted(deployed.traffic()) == sorted(
        [(deployed.old, 100, ""), (candidate, 0, "candidate-abc1234")]
    )
    assert deployed.answering_revision(deployed.stack.tag_url("candidate-abc1234")) == candidate
    assert deployed.answering_revision(deployed.stack.service_url) == deployed.old


def test_an_operation_that_outlasts_the_timeout_is_reported_and_blocks_a_new_plan(
    slow_to_reconcile: Deployed,
) -> None:
    deployed = slow_to_reconcile
    plan = plan_rollback(deployed.env, deployed.services, deployed.revisions)

    with pytest.raises(SmokeError, match=r"did not finish within 0\.5 s; it may still complete: gcloud run"):
        apply_rollback(plan, deployed.services, timeout=0.5)

    with pytest.raises(RollbackRefused, match=r"is being updated \(reconciling\)"):
        plan_rollback(deployed.env, deployed.services, deployed.revisions)


@pytest.mark.parametrize(
    ("to", "refusal"),
    [
        ("tiny-99999-zzz", "revision 'tiny-99999-zzz' does not exist in service tiny (newest: "),
        ("NEW", "already serves 100 % of traffic: nothing to roll back"),
        ("FAILED", "is not Ready and cannot serve traffic: Container called exit(1)."),
    ],
    ids=["unknown", "already-serving", "not-ready"],
)
def test_refusals_change_nothing(deployed: Deployed, to: str, refusal: str) -> None:
    failed = deployed.stack.add_failed_revision(SPEC, "Container called exit(1).").name
    to = {"NEW": deployed.new, "FAILED": failed}.get(to, to)
    before = deployed.traffic()

    with pytest.raises(RollbackRefused, match=re.escape(refusal)):
        plan_rollback(deployed.env, deployed.services, deployed.revisions, to=to)

    assert deployed.traffic() == before


def test_no_older_ready_revision_is_refused(deployed: Deployed) -> None:
    with deployed.stack.state.lock:
        deployed.stack.service.revisions[0].ready = False
    with pytest.raises(
        RollbackRefused, match=rf"no Ready revision older than the serving one \({deployed.new}\)"
    ):
        plan_rollback(deployed.env, deployed.services, deployed.revisions)
    assert deployed.traffic() == [(deployed.new, 100, "")]


def test_a_split_rolls_back_from_the_revision_with_the_largest_share(deployed: Deployed) -> None:
    newest = deployed.deploy().name
    deployed.stack.set_traffic([TrafficTarget(newest, 90), TrafficTarget(deployed.old, 10)])

    plan = plan_rollback(deployed.env, deployed.services, deployed.revisions)

    assert (plan.serving, plan.target.name) == (newest, deployed.new)
    apply_rollback(plan, deployed.services, timeout=30)
    assert deployed.traffic() == [(deployed.new, 100, "")]


# -- the command ---------------------------------------------------------------------------------------
def smoke_toml(tmp_path: Path) -> Path:
    path = tmp_path / "smoke.toml"
    path.write_text(
        f'[env.local]\nproject = "{PROJECT}"\nregion = "{REGION}"\nservice = "{SERVICE}"\n\n'
        "[env.local.stack]\ninstances = 1\n\n"
        f'[env.prod]\nproject = "{PROJECT}"\nregion = "{REGION}"\nservice = "{SERVICE}"\n'
    )
    return path


def test_cli_end_to_end_plan_then_yes(deployed: Deployed, tmp_path: Path) -> None:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SMOKE_")}
    environ["SMOKE_RUN_API_ENDPOINT"] = deployed.stack.run_api_endpoint
    environ["SMOKE_LOGGING_API_ENDPOINT"] = deployed.stack.logging_api_endpoint
    command = [sys.executable, "-m", "cloudrun_smoke.cli", "rollback", "--env", "local"]
    command += ["--smoke-config", str(smoke_toml(tmp_path))]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*command, *args], cwd=tmp_path, env=environ, capture_output=True, text=True, timeout=60
        )

    shown = run()
    assert shown.returncode == EXIT_PLAN_ONLY, shown.stdout + shown.stderr
    assert f"target revision: {deployed.old}" in shown.stdout
    assert "nothing changed: run again with --yes" in shown.stdout
    assert deployed.traffic() == [(deployed.new, 100, "")]

    done = run("--yes")
    out = done.stdout + done.stderr
    assert done.returncode == EXIT_DONE, out
    assert f"{deployed.old} serves 100 %" in done.stdout
    assert deployed.traffic() == [(deployed.old, 100, "")]
    assert SECRET not in shown.stdout + shown.stderr + out

    again = run("--yes", "--to", deployed.old)
    assert again.returncode == EXIT_FAILED
    assert again.stderr.strip().splitlines() == [
        f"cloudrun-smoke rollback: revision {deployed.old} already serves 100 % of traffic: nothing to roll back"
    ]


@pytest.fixture
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in SMOKE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def cli_run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli.main(["rollback", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_local_without_a_running_stack_says_what_to_do(
    clean_environ: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = cli_run(capsys, "--env", "local", "--smoke-config", str(smoke_toml(tmp_path)), "--yes")
    assert code == EXIT_USAGE
    assert out == ""
    [line] = err.strip().splitlines()
    assert "cloudrun-smoke local up" in line and "SMOKE_RUN_API_ENDPOINT" in line


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "--env is required (or set SMOKE_ENV)"),
        (("--env", "nope"), "unknown environment 'nope'"),
        (("--env", "prod", "--timeout", "0"), "--timeout must be a positive number"),
        (("--env", "prod", "--timeout", "soon"), "invalid float value: 'soon'"),
    ],
)
def test_bad_usage_exits_4(
    clean_environ: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    args: tuple[str, ...],
    message: str,
) -> None:
    try:
        code, _, err = cli_run(capsys, "--smoke-config", str(smoke_toml(tmp_path)), *args)
    except SystemExit as e:  # argparse's own errors
        code, err = int(e.code or 0), capsys.readouterr().err
    assert code == EXIT_USAGE
    assert message in err
    assert "Traceback" not in err


def test_unreachable_api_is_one_line(
    clean_environ: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clean_environ.setenv("SMOKE_RUN_API_ENDPOINT", "http://127.0.0.1:1")
    code, out, err = cli_run(capsys, "--env", "local", "--smoke-config", str(smoke_toml(tmp_path)), "--yes")
    assert code == EXIT_FAILED
    assert out == ""
    [line] = err.strip().splitlines()
    assert "cannot reach the Cloud Run Admin API at http://127.0.0.1:1" in line
    assert "local up" in line


def test_missing_credentials_are_one_line(
    clean_environ: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import google.auth
    from google.auth.exceptions import DefaultCredentialsError

    def no_credentials(*args: Any, **kwargs: Any) -> Any:
        raise DefaultCredentialsError("no ADC here")

    clean_environ.setattr(google.auth, "default", no_credentials)
    code, out, err = cli_run(capsys, "--env", "prod", "--smoke-config", str(smoke_toml(tmp_path)))
    assert code == EXIT_FAILED
    assert out == ""
    [line] = err.strip().splitlines()
    assert "no Google credentials for environment 'prod'" in line


def test_a_refusal_through_the_cli_is_one_line_and_changes_nothing(
    deployed: Deployed, clean_environ: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clean_environ.setenv("SMOKE_RUN_API_ENDPOINT", deployed.stack.run_api_endpoint)
    code, out, err = cli_run(
        capsys,
        "--env",
        "local",
        "--smoke-config",
        str(smoke_toml(tmp_path)),
        "--to",
        "tiny-99999-zzz",
        "--yes",
    )
    assert code == EXIT_FAILED
    assert out == ""
    assert err.strip().splitlines() == [
        f"cloudrun-smoke rollback: revision 'tiny-99999-zzz' does not exist in service {SERVICE} "
        f"(newest: {deployed.new}, {deployed.old})"
    ]
    assert deployed.traffic() == [(deployed.new, 100, "")]
