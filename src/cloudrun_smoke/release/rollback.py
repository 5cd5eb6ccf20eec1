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

Library use, without the CLI::

    services, revisions = run_clients(env, credentials_for(env))
    plan = plan_rollback(env, services, revisions)          # to="REVISION" to choose
    print(plan.describe())
    result = apply_rollback(plan, services, timeout=300)

Exit codes of the command: 0 traffic moved; 1 refused or failed (one line saying why); 3 plan shown,
nothing changed (no ``--yes``); 4 bad usage or configuration.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn, TypeVar

from google.api_core import exceptions as gexc
from google.auth import exceptions as auth_exceptions

from cloudrun_smoke.config.environment import ENV_VAR, load_config
from cloudrun_smoke.config.schema import Environment
from cloudrun_smoke.errors import ConfigError, SmokeError
from cloudrun_smoke.gcp import traffic as traffic_
from cloudrun_smoke.gcp.traffic import TrafficShare, is_ready, short_name

EXIT_DONE = 0
EXIT_FAILED = 1
EXIT_PLAN_ONLY = 3
EXIT_USAGE = 4

API_TIMEOUT = 30.0  # seconds per read call: a hung API must not hang a pipeline's failure path

T = TypeVar("T")


class RollbackRefused(SmokeError):
    """The rollback would be wrong or pointless; its message says why and what to do instead."""


@dataclass(frozen=True)
class RevisionInfo:
    name: str
    create_time: datetime
    ready: bool
    message: str = ""


@dataclass(frozen=True)
class RollbackPlan:
    """What a rollback will do, from one read of the service and its revisions."""

    env: Environment
    resource_name: str
    current: tuple[TrafficShare, ...]  # trafficStatuses as read (LATEST resolved to a revision)
    serving: str  # the revision with the largest share ("" when none serves)
    target: RevisionInfo
    reason: str  # why this revision, in words
    after: tuple[TrafficShare, ...]  # the traffic once applied
    service_proto: Any  # the run_v2.Service read; apply sends it back with `after`, etag included

    @property
    def project(self) -> str:
        return self.env.project

    @property
    def region(self) -> str:
        return self.env.region

    @property
    def service(self) -> str:
        return self.env.service

    @property
    def to_latest_command(self) -> str:
        return to_latest_command(self.service, self.region)

    @property
    def gcloud_command(self) -> str:
        return (
            f"gcloud run services update-traffic {self.service} --project {self.project} "
            f"--region {self.region} --to-revisions {self.target.name}=100"
        )

    def describe(self) -> str:
        lines = [
            f"rollback plan for Cloud Run service {self.service} (project {self.project}, region {self.region})",
            "  current traffic:",
            *_traffic_lines(self.current),
            f"  target revision: {self.target.name} (created {self.target.create_time:%Y-%m-%d %H:%M:%S} UTC, Ready)",
            f"    why: {self.reason}",
            "  traffic after:",
            *_traffic_lines(self.after),
            f"  equivalent: {self.gcloud_command}",
            f"  afterwards the traffic is pinned to {self.target.name}: new deploys get none until "
            f"{self.to_latest_command}",
        ]
        return "\n".join(lines)


@dataclass(frozen=True)
class RollbackResult:
    revision: str
    traffic: tuple[TrafficShare, ...]  # trafficStatuses reported by the finished operation
    seconds: float


def to_latest_command(service: str, region: str) -> str:
    """What returns a service to LATEST once a rollback pinned its traffic to a named revision."""
    return f"gcloud run services update-traffic {service} --to-latest --region {region}"


def _traffic_lines(shares: tuple[TrafficShare, ...]) -> list[str]:
    width = max((len(t.revision or "(latest)") for t in shares), default=0)
    lines = [
        f"    {t.revision or '(latest)':<{width}} {t.percent:>3} %"
        + ("  (LATEST)" if t.latest else "")
        + (f"  tag {t.tag}" if t.tag else "")
        for t in shares
    ]
    return lines or ["    (no traffic targets)"]


# -- reading -----------------------------------------------------------------------------------------
def _call(env: Environment, what: str, fn: Callable[[], T], on_timeout: str = "") -> T:
    """One Admin API call; every failure becomes one line naming what to do (no traceback, no token)."""
    where = f"project {env.project!r}, region {env.region!r}"
    try:
        return fn()
    except TimeoutError as e:  # also an OSError: waiting on an operation ran out of time
        raise SmokeError(on_timeout) if on_timeout else _unreachable(env, what, e) from None
    except gexc.NotFound:
        raise SmokeError(
            f"Cloud Run service {env.service!r} not found in {where} ({env.source} [env.{env.name}]); "
            f"look: gcloud run services list --project {env.project} --region {env.region}"
        ) from None
    except (gexc.PermissionDenied, gexc.Unauthenticated):
        raise SmokeError(
            f"not allowed to {what} in {where}: planning needs roles/run.viewer, applying "
            "roles/run.developer (run.services.update) for the identity running the command"
        ) from None
    except auth_exceptions.GoogleAuthError as e:
        raise SmokeError(
            f"cannot authenticate to the Cloud Run Admin API for {where} ({type(e).__name__}): "
            "gcloud auth application-default login, or set GOOGLE_APPLICATION_CREDENTIALS"
        ) from None
    except (gexc.Conflict, gexc.Aborted, gexc.FailedPrecondition) as e:
        raise SmokeError(
            f"cannot {what}: the service changed since the plan or another update is running "
            f"({e.code} {e.message}); run the command again for a fresh plan"
        ) from None
    except (gexc.ServiceUnavailable, gexc.RetryError, gexc.DeadlineExceeded, OSError) as e:
        raise _unreachable(env, what, e) from None
    except gexc.GoogleAPICallError as e:
        raise SmokeError(f"cannot {what}: {e.code} {e.message}") from None


def _unreachable(env: Environment, what: str, error: Exception) -> SmokeError:
    endpoint = env.run_api_endpoint or "run.googleapis.com"
    return SmokeError(
        f"cannot reach the Cloud Run Admin API at {endpoint} to {what} ({type(error).__name__})"
        + _local_hint(env)
    )


def _local_hint(env: Environment) -> str:
    if env.is_local:
        return (
            " (is `cloudrun-smoke local up` still running? SMOKE_RUN_API_ENDPOINT must be the one it printed)"
        )
    return ""


def _revisions(env: Environment, revisions_client: Any, parent: str) -> list[RevisionInfo]:
    """All revisions of the service, oldest first (by createTime; the name's counter breaks ties)."""

    def read() -> list[RevisionInfo]:
        found = []
        for r in revisions_client.list_revisions(parent=parent, timeout=API_TIMEOUT):
            ready, message = is_ready(r.conditions)
            found.append(RevisionInfo(short_name(r.name), r.create_time, ready, message))
        return found

    return sorted(_call(env, "list the revisions", read), key=lambda r: (r.create_time, r.name))


# -- planning ----------------------------------------------------------------------------------------
def plan_rollback(
    env: Environment, services: Any, revisions: Any, to: str | None = None, *, under_test: str = ""
) -> RollbackPlan:
    """The rollback of ``env``'s service to ``to``, or by default to the newest Ready revision created
    before the serving one (skipping revisions that never became ready). Without ``to`` only a deploy
    that took the traffic is undone: the serving revision must be the service's latest created and
    latest ready revision, and, when ``under_test`` is given, that revision. Otherwise (a deploy that
    failed, traffic pinned elsewhere) moving traffic would undo a healthy revision, so it is refused.
    Raises :class:`RollbackRefused` when the rollback would be wrong or change nothing. Reads only."""
    name = f"projects/{env.project}/locations/{env.region}/services/{env.service}"
    service = _call(env, "read the service", lambda: services.get_service(name=name, timeout=API_TIMEOUT))
    if service.reconciling:
        raise RollbackRefused(
            f"service {env.service} is being updated (reconciling): wait until it is done, then run again"
        )
    current = traffic_.shares(service)
    serving = traffic_.serving(current)
    where = traffic_.describe(current) or "no traffic targets"
    known = _revisions(env, revisions, name)
    by_name = {r.name: r for r in known}

    if to:
        wanted = short_name(to)
        target = by_name.get(wanted)
        if target is None:
            newest = ", ".join(r.name for r in reversed(known[-5:])) or "none"
            raise RollbackRefused(
                f"revision {wanted!r} does not exist in service {env.service} (newest: {newest})"
            )
        if not target.ready:
            raise RollbackRefused(
                f"revision {wanted} is not Ready and cannot serve traffic"
                + (f": {target.message}" if target.message else "")
            )
        reason = f"asked for with --to (serving now: {serving or 'no revision'})"
    else:
        if not serving:
            raise RollbackRefused(
                f"no revision of {env.service} serves traffic ({where}), so there is nothing to roll back "
                "from: pass --to REVISION"
            )
        if under_test and serving != under_test:
            raise RollbackRefused(
                f"the revision under test {under_test} does not serve the traffic: {serving} does "
                f"({where}); only the revision under test is ever rolled back"
            )
        latest_created = short_name(service.latest_created_revision)
        latest_ready = short_name(service.latest_ready_revision)
        if serving != latest_created or serving != latest_ready:
            raise RollbackRefused(
                f"the serving revision {serving} is not the service's latest deploy (latest created "
                f"{latest_created or 'none'}, latest ready {latest_ready or 'none'}; traffic: {where}): "
                "only a deploy that took the traffic is rolled back without --to; pass --to REVISION "
                "to choose one"
            )
        if serving not in by_name:
            raise RollbackRefused(f"the serving revision {serving} is not among the service's revisions")
        key = (by_name[serving].create_time, serving)
        older = [r for r in known if (r.create_time, r.name) < key]
        ready = [r for r in older if r.ready]
        if not ready:
            raise RollbackRefused(
                f"no Ready revision older than the serving one ({serving}) in service {env.service}: "
                "nothing to roll back to; pass --to REVISION to choose one"
            )
        target = ready[-1]
        skipped = [
            r.name
            for r in older
            if not r.ready and (r.create_time, r.name) > (target.create_time, target.name)
        ]
        reason = (
            f"the serving revision {serving} is the service's latest created and latest ready revision; "
            "this is the newest Ready revision created before it"
        )
        if skipped:
            reason += f"; skipped as not Ready: {', '.join(skipped)}"
        reason += "; pass --to REVISION to choose another"
    if traffic_.percent_for(current, target.name) >= 100:
        raise RollbackRefused(f"revision {target.name} already serves 100 % of traffic: nothing to roll back")

    tag_revisions = {t.tag: t.revision for t in current if t.tag}
    after = (
        TrafficShare(target.name, 100),
        *(
            TrafficShare(short_name(t.revision) or tag_revisions.get(t.tag, ""), 0, t.tag)
            for t in service.traffic
            if t.tag
        ),
    )
    return RollbackPlan(
        env=env,
        resource_name=name,
        current=current,
        serving=serving,
        target=target,
        reason=reason,
        after=after,
        service_proto=service,
    )


# -- applying ----------------------------------------------------------------------------------------
def new_traffic(plan: RollbackPlan) -> list[Any]:
    """The ``traffic`` field sent: the target at 100 %, each tagged target as it was but at 0 %."""
    from google.cloud import run_v2

    revision_type = run_v2.TrafficTargetAllocationType.TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION
    targets = [run_v2.TrafficTarget(type_=revision_type, revision=plan.target.name, percent=100)]
    for t in plan.service_proto.traffic:
        if t.tag:
            targets.append(run_v2.TrafficTarget(type_=t.type_, revision=t.revision, tag=t.tag, percent=0))
    return targets


def apply_rollback(plan: RollbackPlan, services: Any, timeout: float = 300.0) -> RollbackResult:
    """Send the plan's traffic and wait (at most ``timeout`` seconds) for the operation to finish; the
    service read for the plan goes back whole (Cloud Run replaces the resource) with its ``etag``."""
    from google.api_core.future.polling import DEFAULT_POLLING
    from google.cloud import run_v2

    service = run_v2.Service.deserialize(run_v2.Service.serialize(plan.service_proto))
    service.traffic = new_traffic(plan)
    started = time.monotonic()
    operation = _call(
        plan.env, "update the service's traffic", lambda: services.update_service(service=service)
    )
    # Poll sooner than the client's default (1 s, then x1.5): a traffic change usually takes seconds.
    polling = DEFAULT_POLLING.with_delay(initial=0.25, multiplier=1.5, maximum=5.0)
    unfinished = (
        f"the traffic change of {plan.service} did not finish within {timeout:g} s; it may still "
        f"complete: gcloud run services describe {plan.service} --project {plan.project} --region {plan.region}"
    )
    updated = _call(
        plan.env,
        "finish the traffic change",
        lambda: operation.result(timeout=timeout, polling=polling),
        on_timeout=unfinished,
    )
    traffic = traffic_.shares(updated)
    served = traffic_.percent_for(traffic, plan.target.name)
    if served != 100:
        shown = ", ".join(f"{t.revision}={t.percent}%" for t in traffic)
        raise SmokeError(
            f"the operation finished but {plan.target.name} serves {served} %, not 100 % ({shown})"
        )
    return RollbackResult(plan.target.name, traffic, time.monotonic() - started)


# -- the command ---------------------------------------------------------------------------------------
def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "rollback",
        help="move 100 %% of the service's traffic back to an earlier revision (plan first; --yes applies)",
        description=__doc__.split("Library use")[0].strip() + "\n\nExit codes: 0 traffic moved; 1 refused "
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
    parser.set_defaults(handler=run)


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


def run(args: argparse.Namespace) -> int:
    from cloudrun_smoke.gcp.clients import credentials_for, run_clients

    try:
        env = environment_from(args)
    except ConfigError as e:
        print(f"cloudrun-smoke rollback: {e}", file=sys.stderr)
        return EXIT_USAGE
    try:
        # Only the Admin API is used: an emulator on loopback needs no credentials whatever the Logging
        # endpoint says.
        credentials = credentials_for(env.with_overrides(logging_api_endpoint=env.run_api_endpoint))
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
