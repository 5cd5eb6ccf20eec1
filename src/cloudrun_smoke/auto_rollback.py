"""``--rollback-on-failure``: roll the service back only when a failure persists.

A single transient blip must never revert a healthy deploy, so the failed checks are first run again,
once, in a fresh pytest process against the same environment; only if one of them fails again is 100 %
of the traffic moved back to the previous ready revision (``cloudrun_smoke.rollback``). A candidate
under ``--tag``/``--revision`` serves no traffic: its failure never touches the service's traffic.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from cloudrun_smoke.config import Environment
from cloudrun_smoke.errors import SmokeError


def rerun_failed(
    env: Environment, config_path: Path, nodeids: Sequence[str], rootdir: Path, extra: Sequence[str] = ()
) -> int:
    """Exit status of one more run of exactly the failed checks, attached to the same environment."""
    environ = dict(os.environ)
    if env.run_api_endpoint:  # an emulated stack still running: the re-run must reach the same one
        environ["SMOKE_RUN_API_ENDPOINT"] = env.run_api_endpoint
        environ["SMOKE_LOGGING_API_ENDPOINT"] = env.logging_api_endpoint
    command = [
        sys.executable,
        "-m",
        "pytest",
        *nodeids,
        "--env",
        env.name,
        f"--smoke-config={config_path}",
        "-p",
        "no:cacheprovider",
        "-q",
        *extra,
    ]
    return subprocess.run(
        command, cwd=rootdir, env=environ, capture_output=True, text=True, timeout=1800
    ).returncode


def roll_back(env: Environment) -> str:
    """Move the traffic back to the previous ready revision; a line for the run summary."""
    from cloudrun_smoke.google_clients import credentials_for, run_clients
    from cloudrun_smoke.rollback import apply_rollback, plan_rollback

    services, revisions = run_clients(env, credentials_for(env))
    plan = plan_rollback(env, services, revisions)
    result = apply_rollback(plan, services)
    return f"rolled back: 100 % of traffic now on {result.revision} ({plan.reason})"


def decide(
    env: Environment,
    config_path: Path,
    failed: Sequence[str],
    rootdir: Path,
    *,
    candidate: bool,
    stack_owned: bool,
    extra: Sequence[str] = (),
) -> str:
    """What ``--rollback-on-failure`` did, in one line for the summary; never raises."""
    if not failed:
        return "rollback on failure: nothing failed, nothing to do"
    if candidate:
        return "rollback on failure: the candidate serves no traffic; the service's traffic is untouched"
    if stack_owned:
        return "rollback on failure: the embedded stack ended with the run; nothing to roll back"
    try:
        if rerun_failed(env, config_path, failed, rootdir, extra) == 0:
            return (
                f"rollback on failure: the {len(failed)} failed check(s) passed when run again: no rollback"
            )
        return "rollback on failure: the failure persisted on a second run; " + roll_back(env)
    except (SmokeError, OSError, subprocess.SubprocessError) as e:
        return f"rollback on failure: could not complete: {e}"
