"""``--rollback-on-failure``: undo the revision under test, only when its failure persists.

A gate that acts on production must never make things worse, so the traffic moves only when all of
these hold:

- the failed checks, run once more in a fresh pytest process with every option that shaped the first
  run, exit 1 (checks failed again). Any other exit (0 passed, 2 interrupted, 3 internal error,
  4 configuration or credentials, 5 nothing selected) moves nothing, and the summary says why;
- the re-run tested the same revision as the first run;
- the revision under test (``--expect-revision``, else the one discovery chose) is the one serving the
  traffic, and it is the service's latest created and latest ready revision
  (:func:`cloudrun_smoke.release.plan.plan_rollback`). After a failed deploy the traffic stayed on the
  previous revision: that one is healthy and stays where it is.

A candidate under ``--tag``/``--revision`` serves no traffic: its failure never touches the service's
traffic. A rollback pins the traffic to a named revision; the summary prints the command that returns
to LATEST.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cloudrun_smoke.config.environment import Environment
from cloudrun_smoke.errors import SmokeError

EXIT_MEANINGS = {
    0: "the checks passed",
    1: "checks failed",
    2: "interrupted",
    3: "internal error",
    4: "usage, configuration or credentials error",
    5: "no check selected",
}
PREFIX = "rollback on failure: "


@dataclass(frozen=True)
class Rerun:
    exit_code: int
    verdict: Mapping[str, Any] | None  # the re-run's own --smoke-report (target and options)

    @property
    def revision(self) -> str:
        target = (self.verdict or {}).get("target") or {}
        return str(target.get("revision") or "")

    def describe(self) -> dict[str, Any]:
        verdict = self.verdict or {}
        return {
            "exit_status": self.exit_code,
            "target": verdict.get("target"),
            "options": verdict.get("options"),
        }


def rerun_environ(env: Environment) -> dict[str, str]:
    """The environment of the re-run: attached to the same APIs (an emulated stack still running, or
    endpoint overrides of smoke.toml and ``SMOKE_*_API_ENDPOINT``)."""
    environ = dict(os.environ)
    for variable, value in (
        ("SMOKE_RUN_API_ENDPOINT", env.run_api_endpoint),
        ("SMOKE_LOGGING_API_ENDPOINT", env.logging_api_endpoint),
        ("SMOKE_MONITORING_API_ENDPOINT", env.monitoring_api_endpoint),
    ):
        if value:
            environ[variable] = value
    return environ


def rerun_failed(
    env: Environment, config_path: Path, nodeids: Sequence[str], rootdir: Path, args: Sequence[str] = ()
) -> Rerun:
    """One more run of exactly the failed checks, with ``args`` (the options that shaped the first run)."""
    with tempfile.TemporaryDirectory(prefix="cloudrun-smoke-rerun-") as tmp:
        report = Path(tmp) / "verdict.json"
        command = [
            sys.executable,
            "-m",
            "pytest",
            *nodeids,
            "--env",
            env.name,
            f"--smoke-config={config_path}",
            f"--smoke-report={report}",
            "-p",
            "no:cacheprovider",
            "-q",
            *args,
        ]
        code = subprocess.run(
            command, cwd=rootdir, env=rerun_environ(env), capture_output=True, text=True, timeout=1800
        ).returncode
        try:
            verdict = json.loads(report.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            verdict = None
    return Rerun(code, verdict)


def roll_back(env: Environment, under_test: str) -> str:
    """Move the traffic from ``under_test`` back to the previous ready revision; a line for the summary."""
    from cloudrun_smoke.gcp.clients import credentials_for, run_clients
    from cloudrun_smoke.release.apply import apply_rollback
    from cloudrun_smoke.release.plan import plan_rollback

    services, revisions = run_clients(env, credentials_for(env))
    plan = plan_rollback(env, services, revisions, under_test=under_test)
    result = apply_rollback(plan, services)
    return (
        f"rolled back: 100 % of traffic now on {result.revision} ({plan.reason}). The traffic is pinned "
        f"to {result.revision}: new deploys get none until {plan.to_latest_command}"
    )


@dataclass(frozen=True)
class Decision:
    line: str  # what was done and why, for the summary and the verdict
    rerun: Rerun | None = None


def decide(
    env: Environment,
    config_path: Path,
    failed: Sequence[str],
    rootdir: Path,
    *,
    candidate: bool,
    stack_owned: bool,
    under_test: str,
    tested: str = "",
    args: Sequence[str] = (),
) -> Decision:
    """What ``--rollback-on-failure`` did; never raises. ``under_test`` is the revision a rollback may
    undo (``--expect-revision`` or discovery's choice), ``tested`` the revision the checks reached."""
    from cloudrun_smoke.release.plan import RollbackRefused

    if not failed:
        return Decision(PREFIX + "nothing failed, nothing to do")
    if candidate:
        return Decision(PREFIX + "the candidate serves no traffic; the service's traffic is untouched")
    if stack_owned:
        return Decision(PREFIX + "the embedded stack ended with the run; nothing to roll back")
    if not under_test:
        return Decision(
            PREFIX + "nothing moved: no revision under test was identified (discovery did not complete), "
            "and nothing is rolled back blindly"
        )
    rerun: Rerun | None = None
    try:
        rerun = rerun_failed(env, config_path, failed, rootdir, args)
        code = rerun.exit_code
        if code == 0:
            return Decision(
                PREFIX + f"the {len(failed)} failed check(s) passed when run again: no rollback", rerun
            )
        if code != 1:
            meaning = EXIT_MEANINGS.get(code, "unknown exit status")
            return Decision(
                PREFIX + f"nothing moved: the re-run of the {len(failed)} failed check(s) exited {code} "
                f"({meaning}), not 1 (checks failed again); only a confirmed failure is rolled back",
                rerun,
            )
        if tested and rerun.revision != tested:
            return Decision(
                PREFIX + f"nothing moved: the re-run tested "
                f"{rerun.revision or 'no revision (its verdict names none)'}, the first run {tested}: the "
                "service changed in between, or the re-run could not tell",
                rerun,
            )
        return Decision(
            PREFIX + "the failure persisted on a second run; " + roll_back(env, under_test), rerun
        )
    except RollbackRefused as e:
        return Decision(PREFIX + f"nothing moved: {e}", rerun)
    except (SmokeError, OSError, subprocess.SubprocessError) as e:
        return Decision(PREFIX + f"could not complete: {e}", rerun)
