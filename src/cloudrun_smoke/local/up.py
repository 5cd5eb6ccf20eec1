"""``cloudrun-smoke local up``: the local stack in the foreground until Ctrl-C or SIGTERM.

Settings come from ``[env.NAME.stack]`` of smoke.toml when the file exists (the same stack the suite
gets with ``--env local``), then from the options. Everything it starts ends with it: on Ctrl-C or
SIGTERM it stops the stack; if it is killed outright the watchdog and ``PR_SET_PDEATHSIG`` stop the
revisions and whatever they started.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from dataclasses import replace
from pathlib import Path
from types import FrameType
from typing import Any, NamedTuple

from cloudrun_smoke.config.environment import load_config
from cloudrun_smoke.config.validators import (
    IDLE_TIMEOUT_FLOOR_S,
    canary_percent,
    idle_timeout,
    service_fault_names,
)
from cloudrun_smoke.errors import ConfigError, SmokeError
from cloudrun_smoke.local.faults import STACK_FAULTS
from cloudrun_smoke.local.neighbours import Neighbours
from cloudrun_smoke.local.runner import RevisionInstance, RevisionStartError
from cloudrun_smoke.local.stack import LocalStack, LocalStackConfig, stack_for
from cloudrun_smoke.local.traffic import run_background_traffic


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "up",
        help="run the local stack until Ctrl-C and print every endpoint and URL",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Stack faults: " + ", ".join(sorted(STACK_FAULTS)) + ". Any other --fault name is passed "
        "to the revision in EMERGENCE_FAULTS (see docs/faults.md).",
    )
    parser.add_argument("--env", default="local", help="environment of smoke.toml to take settings from")
    parser.add_argument("--smoke-config", type=Path, help="smoke.toml to read (default: ./smoke.toml if any)")
    parser.add_argument("--service-cmd", help="command run as the serving revision")
    parser.add_argument("--instances", type=int, help="instances per revision (default 1)")
    parser.add_argument(
        "--shared-state",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="one Chroma server and one SQLite file for every instance (CHROMA_HOST/PORT, DATABASE_URL)",
    )
    parser.add_argument(
        "--candidate-cmd", help="command run as a candidate revision (no traffic, needs --tag)"
    )
    parser.add_argument("--tag", help="traffic tag of the candidate revision")
    parser.add_argument(
        "--candidate-percent",
        type=int,
        metavar="P",
        help="the candidate serves P %% of the traffic: a canary split, tested with --tag NAME --canary",
    )
    parser.add_argument(
        "--baseline",
        choices=("split", "sequence"),
        help="a baseline revision before the one under test, for -m regression: both serving half the "
        "traffic (split), or the baseline alone first (sequence; with --traffic, its users' traffic)",
    )
    parser.add_argument(
        "--revision-fault",
        action="append",
        default=[],
        metavar="NAME",
        help="a fault of the revision under test only (the candidate when there is one); repeatable",
    )
    parser.add_argument("--ingestion-delay", type=float, help="seconds before a log entry is visible")
    parser.add_argument("--ingestion-jitter", type=float, help="extra random seconds per log entry")
    parser.add_argument(
        "--cpu-idle",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="CPU only while a request is served: idle instances are frozen (SIGSTOP), as with Cloud "
        "Run's request-based billing (default: [env.NAME.stack] cpu_idle, else off)",
    )
    parser.add_argument(
        "--idle-timeout",
        type=float,
        metavar="SECONDS",
        help="shut an instance beyond min_instances down (SIGTERM, then SIGKILL after the grace period) "
        "after this long without a request, as Cloud Run scales in; 0 or at least "
        f"{IDLE_TIMEOUT_FLOOR_S:g} (default: [env.NAME.stack] idle_timeout, else off)",
    )
    parser.add_argument(
        "--neighbours",
        type=float,
        metavar="RATE",
        help="other users archiving RATE threads a second beside whatever you run, as in production "
        "(default: [env.NAME.stack] neighbours, else none)",
    )
    parser.add_argument(
        "--fault", action="append", default=[], metavar="NAME", help="a fault switch (repeatable)"
    )
    parser.add_argument(
        "--traffic",
        action="store_true",
        help="once started, run background traffic from simulated users and print its summary",
    )
    parser.set_defaults(handler=run)


class UpSettings(NamedTuple):
    """What ``local up`` starts: the stack, and other users' threads a second beside it (0: none)."""

    stack: LocalStackConfig
    neighbours: float


def config_from(args: argparse.Namespace) -> UpSettings:
    path = args.smoke_config or Path("smoke.toml")
    neighbours = 0.0
    if args.smoke_config is not None or path.exists():
        env = load_config(path).environment(args.env)
        if env.stack is None:
            raise ConfigError(f"{path}: [env.{args.env}] has no [env.{args.env}.stack] table")
        config = stack_for(env).config
        neighbours = env.stack.neighbours
    else:
        config = LocalStackConfig()
    if args.instances is not None and args.instances < 1:
        raise SmokeError(f"--instances must be at least 1, got {args.instances}")
    for name in ("ingestion_delay", "ingestion_jitter", "neighbours"):
        value = getattr(args, name)
        if value is not None and value < 0:
            raise SmokeError(f"--{name.replace('_', '-')} must be >= 0, got {value:g}")
    if args.idle_timeout is not None:
        try:
            idle_timeout(args.idle_timeout)
        except ValueError as e:
            raise SmokeError(f"--idle-timeout: {e}") from None
    if args.candidate_cmd and not args.tag:
        raise SmokeError("--candidate-cmd needs --tag NAME: the candidate gets no traffic, only a tag URL")
    if args.tag and not (args.candidate_cmd or config.candidate_cmd):
        raise SmokeError("--tag names the candidate revision: give --candidate-cmd too")
    if args.candidate_percent is not None and not (args.candidate_cmd or config.candidate_cmd):
        raise SmokeError("--candidate-percent is the candidate's share: give --candidate-cmd and --tag too")
    for flag, value, check in (
        ("--candidate-percent", args.candidate_percent, canary_percent),
        ("--revision-fault", args.revision_fault, service_fault_names),
    ):
        try:
            if value is not None:
                check(value)
        except ValueError as e:
            raise SmokeError(f"{flag}: {e}") from None
    overrides = {
        "service_cmd": args.service_cmd,
        "instances": args.instances,
        "shared_state": args.shared_state,
        "candidate_cmd": args.candidate_cmd,
        "tag": args.tag,
        "ingestion_delay": args.ingestion_delay,
        "ingestion_jitter": args.ingestion_jitter,
        "idle_timeout": args.idle_timeout,
        "faults": (*config.faults, *args.fault) if args.fault else None,
        "candidate_percent": args.candidate_percent,
        "baseline": args.baseline,
        "revision_faults": (*config.revision_faults, *args.revision_fault) if args.revision_fault else None,
    }
    config = config.model_copy(update={k: v for k, v in overrides.items() if v is not None})
    if args.cpu_idle is not None:
        config = config.model_copy(
            update={
                "spec": replace(config.spec, cpu_idle=args.cpu_idle),
                "candidate_spec": (
                    replace(config.candidate_spec, cpu_idle=args.cpu_idle) if config.candidate_spec else None
                ),
            }
        )
    return UpSettings(config, neighbours if args.neighbours is None else args.neighbours)


def describe(stack: LocalStack) -> str:
    """Every endpoint and URL, and how to use them."""
    cfg = stack.config
    lines = [
        "cloudrun-smoke local stack",
        f"  project / region / service  {cfg.project} / {cfg.region} / {cfg.service}",
        f"  Cloud Run Admin API         {stack.run_api_endpoint}",
        f"  Cloud Logging API           {stack.logging_api_endpoint}",
        f"  Cloud Monitoring API (gRPC) {stack.monitoring_api_endpoint}",
        f"  service URL                 {stack.service_url}",
    ]
    lines += [f"  tag URL {tag:<19} {url}" for tag, url in sorted(stack.tag_urls.items())]
    with stack.state.lock:
        traffic = {t.revision: t for t in stack.service.resolved_traffic()}
        revisions = list(stack.service.revisions)
    for revision in revisions:
        share = traffic.get(revision.name)
        status = "ready" if revision.ready else f"NOT READY ({revision.failure_message})"
        routing = f"{share.percent}% traffic" if share else "no traffic"
        if share and share.tag:
            routing += f", tag {share.tag}"
        cpu = "CPU only during requests (cpu_idle)" if revision.spec.cpu_idle else "CPU always allocated"
        role = ", baseline" if stack.baseline is not None and revision.name == stack.baseline.name else ""
        own = f", its own faults {', '.join(revision.spec.faults)}" if revision.spec.faults else ""
        lines.append(f"  revision {revision.name}: {status}, {routing}, {cpu}{role}{own}")
        for instance in stack.instances_of(revision.name):
            lines.append(f"    instance {instance.instance_id} pid {instance.pid}")
    if stack.stack_faults or stack.service_faults:
        lines.append(
            f"  faults                      {', '.join([*sorted(stack.stack_faults), *stack.service_faults])}"
        )
    if stack.shared_state is not None:
        shared = stack.shared_state
        lines.append(f"  shared Chroma server        {shared.chroma_url}")
        lines.append(f"  shared Chroma pid           {shared.pid}")
        lines.append(f"  shared database             {shared.env()['DATABASE_URL']}")
    lines += [
        f"  watchdog pid                {stack.watchdog_pid}",
        "",
        "Settings for --env local (the suite's endpoints; project, region and service as above):",
        f"  SMOKE_RUN_API_ENDPOINT={stack.run_api_endpoint}",
        f"  SMOKE_LOGGING_API_ENDPOINT={stack.logging_api_endpoint}",
        f"  SMOKE_MONITORING_API_ENDPOINT={stack.monitoring_api_endpoint}",
        "",
        "Try:",
        f"  curl -i {stack.service_url}/",
        *(f"  curl -i {url}/" for url in sorted(stack.tag_urls.values())),
        f"  curl -s {stack.run_api_endpoint}/v2/{stack.service.resource_name}",
        f"  curl -s -X POST {stack.logging_api_endpoint}/v2/entries:list -H 'Content-Type: application/json' "
        f"-d '{json.dumps({'resourceNames': [f'projects/{cfg.project}'], 'orderBy': 'timestamp desc'})}'",
        "  or read them with the Logging client:",
        "    from google.auth.credentials import AnonymousCredentials",
        "    from cloudrun_smoke.gcp.clients import reading_client_class",
        f"    logs = reading_client_class()(project={cfg.project!r}, credentials=AnonymousCredentials(), "
        f"_use_grpc=False, client_options={{'api_endpoint': {stack.logging_api_endpoint!r}}})",
        "    for e in logs.list_entries(filter_='logName:\"run.googleapis.com%2Frequests\"'): "
        "print(e.http_request, e.labels)",
        "  and Cloud Run's metrics with the Monitoring client (run.googleapis.com/request_count, ...):",
        "    import grpc; from google.cloud import monitoring_v3",
        "    from google.cloud.monitoring_v3.services.metric_service.transports import MetricServiceGrpcTransport",
        "    metrics = monitoring_v3.MetricServiceClient(transport=MetricServiceGrpcTransport("
        f"channel=grpc.insecure_channel({stack.monitoring_api_endpoint!r})))",
        "",
    ]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    try:
        config, neighbour_rate = config_from(args)
        stack = LocalStack(config)
        if config.baseline == "sequence" and args.traffic:  # the baseline's users, before it is replaced
            stack.between_revisions = lambda s: print(
                run_background_traffic(s.service_url).describe(), flush=True
            )
    except ValueError as e:
        raise SmokeError(str(e)) from None
    stopping = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    stack.on_instance_exit = _report_exit
    try:
        stack.start()
    except RevisionStartError as e:
        lines = str(e).splitlines()
        last = next((line.strip() for line in reversed(lines[1:]) if line.strip()), "(no output)")
        raise SmokeError(f"the revision did not start: {lines[0]} (last output: {last})") from None
    except OSError as e:
        raise SmokeError(f"the local stack did not start: {e}") from None
    neighbours = Neighbours(stack.service_url, neighbour_rate) if neighbour_rate > 0 else None
    try:
        print(describe(stack), flush=True)
        if neighbours is not None:
            neighbours.start()
            print(f"neighbours: other users archive {neighbour_rate:g} thread(s) a second", flush=True)
        if args.traffic:
            print(run_background_traffic(stack.service_url).describe(), flush=True)
        print("ready: press Ctrl-C to stop", flush=True)
        while not stopping.wait(0.5):
            pass
        print("stopping the local stack", flush=True)
    finally:
        if neighbours is not None:
            print(neighbours.stop().describe(), flush=True)
        stack.close()
    return 0


def _report_exit(revision: str, instance: RevisionInstance, code: int) -> None:
    print(
        f"instance {instance.instance_id} of revision {revision} exited with code {code}; "
        "the front end no longer routes to it",
        file=sys.stderr,
        flush=True,
    )
