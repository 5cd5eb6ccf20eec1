"""``cloudrun-smoke rollback``: move 100 % of a service's traffic back to an earlier revision.

A rollback happens when something is already wrong, often from a pipeline, so it shows its plan first
and changes nothing without ``--yes``; it goes through the Cloud Run Admin API (the same clients and
credentials as discovery), rewriting only the service's ``traffic``: one REVISION target at 100 %,
every tagged target kept at 0 % so tag URLs keep answering. The update carries the ``etag`` read for
the plan, so a service changed in between is refused rather than overwritten, and the command waits
on the long-running operation, as ``gcloud run services update-traffic`` does.

Without ``--to`` it only undoes a deploy that took the traffic: the serving revision must be the
service's latest created and latest ready revision. After a failed deploy (the latest created revision
never became ready, traffic stayed on the one before) it refuses instead of moving a healthy revision's
traffic to an older one. A rollback pins the traffic to a named revision: later deploys get none until
``gcloud run services update-traffic SERVICE --to-latest --region REGION``.

Exit codes of the command: 0 traffic moved; 1 refused or failed (one line saying why); 3 plan shown,
nothing changed (no ``--yes``); 4 bad usage or configuration.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any, NoReturn

from cloudrun_smoke.config.environment import ENV_VAR, Environment, load_config
from cloudrun_smoke.errors import ConfigError, SmokeError
from cloudrun_smoke.release.apply import apply_rollback
from cloudrun_smoke.release.plan import plan_rollback

EXIT_DONE = 0
EXIT_FAILED = 1
EXIT_PLAN_ONLY = 3
EXIT_USAGE = 4


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "rollback",
        help="move 100 %% of the service's traffic back to an earlier revision (plan first; --yes applies)",
        description=__doc__.split("Exit codes of the command")[0].strip()
        + "\n\nExit codes: 0 traffic moved; 1 refused "
        "or failed; 3 plan shown, nothing changed (no --yes); 4 bad usage or configuration.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--env", help=f"environment of smoke.toml (or {ENV_VAR}); required")
    parser.add_argument(
        "--to",
        metavar="REVISION",
        help="revision to serve 100 %% (default: the newest Ready revision older than the serving one, "
        "only when the serving one is the service's latest created and latest ready revision)",
    )
    parser.add_argument("--yes", action="store_true", help="apply the plan (without it nothing changes)")
    parser.add_argument(
        "--smoke-config", type=Path, help="smoke.toml to read (or SMOKE_CONFIG; default ./smoke.toml)"
    )
    parser.add_argument(
        "--timeout", type=float, default=300.0, help="seconds to wait for the traffic change (default 300)"
    )
    _exit_on_usage_error(parser)
    parser.set_defaults(handler=run_rollback_command)


def _exit_on_usage_error(parser: argparse.ArgumentParser) -> None:
    """Usage errors of this command exit with 4, as its configuration errors do (argparse uses 2)."""

    def error(message: str) -> NoReturn:
        parser.print_usage(sys.stderr)
        parser.exit(EXIT_USAGE, f"{parser.prog}: error: {message}\n")

    parser.error = error  # type: ignore[method-assign]


def environment_from(args: argparse.Namespace, environ: Any = None) -> Environment:
    """The environment to roll back; for the embedded stack, the running one ``local up`` started."""
    environ = os.environ if environ is None else environ
    name = args.env or environ.get(ENV_VAR, "")
    if not name:
        raise ConfigError(f"--env is required (or set {ENV_VAR}): say which environment to roll back")
    if args.timeout <= 0:
        raise ConfigError(f"--timeout must be a positive number of seconds, got {args.timeout:g}")
    path = args.smoke_config or Path(environ.get("SMOKE_CONFIG") or "smoke.toml")
    env = load_config(path).environment(name, environ)
    if env.is_local and not env.run_api_endpoint:
        raise ConfigError(
            f"environment {name!r} is the embedded local stack, which lives only while "
            "`cloudrun-smoke local up` runs: start it in another terminal and set "
            "SMOKE_RUN_API_ENDPOINT to the Cloud Run Admin API endpoint it prints "
            f"(or set run_api_endpoint in [env.{name}] of {path})"
        )
    return env


def run_rollback_command(args: argparse.Namespace) -> int:
    """``cloudrun-smoke rollback``: show the plan, apply it with ``--yes``; the exit code says which."""
    from cloudrun_smoke.gcp.clients import credentials_for, run_clients

    try:
        env = environment_from(args)
    except ConfigError as e:
        print(f"cloudrun-smoke rollback: {e}", file=sys.stderr)
        return EXIT_USAGE
    try:
        # Only the Admin API is used: an emulator on loopback needs no credentials whatever the Logging
        # endpoint says.
        credentials = credentials_for(replace(env, logging_api_endpoint=env.run_api_endpoint))
        services, revisions = run_clients(env, credentials)
        plan = plan_rollback(env, services, revisions, to=args.to)
        print(plan.describe(), flush=True)
        if not args.yes:
            print("nothing changed: run again with --yes to apply this plan", flush=True)
            return EXIT_PLAN_ONLY
        print(f"applying: {plan.target.name} to 100 % ...", flush=True)
        result = apply_rollback(plan, services, timeout=args.timeout)
    except SmokeError as e:
        print(f"cloudrun-smoke rollback: {e}", file=sys.stderr)
        return EXIT_FAILED
    print(f"done in {result.seconds:.1f} s: {result.revision} serves 100 % of {plan.service}'s traffic")
    print(f"new deploys get no traffic until: {plan.to_latest_command}")
    return EXIT_DONE
