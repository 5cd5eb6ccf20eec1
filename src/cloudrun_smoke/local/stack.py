"""The embedded local stack ("Cloud Run in a box"): everything on 127.0.0.1, started and stopped as one.

The suite talks to it exactly as to Google: the Admin API and the Logging API through Google's own
clients, the service over HTTP through a front end that routes by traffic split and tag and logs
every request. Every process the stack starts ends with it, also when a test fails, the service
crashes or the stack's own process is killed (a watchdog process answers for that case).
Its pieces: :mod:`~cloudrun_smoke.local.instances` (instances started, shut down and scaled in),
:mod:`~cloudrun_smoke.local.configured_deploy` (the deploy at start, with the fault switches), the
front end, and the Logging, Admin and Monitoring API emulators.
"""

from __future__ import annotations

import random
import string
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from types import TracebackType

from pydantic import Field

from cloudrun_smoke.config.schema import Environment, StackRuntime
from cloudrun_smoke.config.validators import NonNegativeNumber
from cloudrun_smoke.local import faults as F
from cloudrun_smoke.local.cloud_run_metrics import CloudRunMetrics
from cloudrun_smoke.local.configured_deploy import deploy_configured
from cloudrun_smoke.local.front_end import ErrorBurst, FrontEnd
from cloudrun_smoke.local.iam import InvokerCheck
from cloudrun_smoke.local.instances import InstancePool
from cloudrun_smoke.local.json_api import JsonApiServer
from cloudrun_smoke.local.log_router import LogRouter
from cloudrun_smoke.local.log_store import LogStore
from cloudrun_smoke.local.logging_api import Ingestion, LoggingApi, ReadQuota, ShortPages
from cloudrun_smoke.local.metrics import InstanceSampler, MetricsRecorder
from cloudrun_smoke.local.monitoring_api import MonitoringApi, MonitoringApiServer
from cloudrun_smoke.local.run_api import RunApi
from cloudrun_smoke.local.run_model import Revision, RevisionSpec, RunState, Service, TrafficTarget
from cloudrun_smoke.local.runner import SHUTDOWN_GRACE_S, RevisionInstance, RevisionStartError
from cloudrun_smoke.local.shared_state import SharedState
from cloudrun_smoke.local.watchdog import Watchdog
from cloudrun_smoke.timeutil import utcnow

ExitHook = Callable[[str, RevisionInstance, int], None]


@dataclass(frozen=True)
class Shutdown:
    """An instance the stack shut down (SIGTERM, SIGKILL after the grace period), and why."""

    revision: str
    instance_id: str
    reason: str
    at: datetime


class LocalStackConfig(StackRuntime):
    """A stack as code builds it (tests, ``local up``): the runtime ``[env.NAME.stack]`` also sets, plus
    the service's identity, its revisions' specs and what the fault switches set."""

    project: str = "smoke-local"
    region: str = "us-central1"
    service: str = "emergencev8-backend"
    spec: RevisionSpec = Field(default_factory=lambda: RevisionSpec(image="local/emergencev8-backend:dev"))
    candidate_spec: RevisionSpec | None = None  # default: the serving revision's spec
    reconcile_delay: float = 0.2  # how long a traffic change's operation runs
    metrics_period: float = 1.0  # seconds between instance samples; raw metric points cover as much
    metric_delay: NonNegativeNumber = 0.0  # built in code (tests): a metric point is visible at once
    # What the fault switches set (see docs/faults.md):
    slow_ingestion_delay: float = 120.0
    heavy_jitter: float = 8.0
    throttle_seconds: float = 10.0
    burst_length: int = 10  # stack:5xx-burst: this many consecutive requests answered 500 ...
    burst_every: int = 100  # ... at the end of every this many
    invokers: tuple[str, ...] | None = None  # identities holding roles/run.invoker; None: any identity
    custom_audiences: tuple[str, ...] = ()  # the service's customAudiences, accepted beside its URL
    shutdown_grace: float = SHUTDOWN_GRACE_S  # SIGTERM to SIGKILL when the stack shuts an instance down


class LocalStack:
    def __init__(self, config: LocalStackConfig | None = None) -> None:
        self.config = config or LocalStackConfig()
        cfg = self.config
        self.stack_faults, self.service_faults = F.split_faults(cfg.faults)
        delay = cfg.slow_ingestion_delay if F.SLOW_INGESTION in self.stack_faults else cfg.ingestion_delay
        jitter = cfg.heavy_jitter if F.HEAVY_JITTER in self.stack_faults else cfg.ingestion_jitter
        throttle = cfg.throttle_seconds if F.LOGGING_429 in self.stack_faults else 0.0
        self.store = LogStore()
        self.logging = LoggingApi(
            self.store,
            Ingestion(delay, jitter),
            ReadQuota(
                cfg.read_quota_per_minute,
                throttle_for=throttle,
                refuse_share=0.1 if F.FLAKY_LOGGING in self.stack_faults else 0.0,
            ),
            short_pages=ShortPages() if F.SHORT_PAGES in self.stack_faults else None,
        )
        self.router = LogRouter(self.logging)
        self.state = RunState()
        self.service = Service(cfg.project, cfg.region, cfg.service, custom_audiences=cfg.custom_audiences)
        self._watchdog = Watchdog()
        self.pool = InstancePool(
            self.state,
            self.service,
            self.router,
            self._watchdog,
            startup_timeout=cfg.startup_timeout,
            shutdown_grace=cfg.shutdown_grace,
            service_faults=self.service_faults,
            on_exit=self._instance_exited,
            on_shutdown=self._instance_shut_down,
        )
        self.candidate: Revision | None = None
        self.baseline: Revision | None = None  # deployed before the revision under test ([stack] baseline)
        # Called between a "sequence" baseline's deploy and the revision under test's: its traffic.
        self.between_revisions: Callable[[LocalStack], None] | None = None
        self.on_instance_exit: ExitHook | None = None  # e.g. `local up` prints crashes
        self._servers: list[JsonApiServer] = []
        self._front_end: FrontEnd | None = None
        self.metrics = MetricsRecorder(cfg.metrics_period)  # what the Monitoring API serves
        self._sampler = InstanceSampler(self.metrics, self.pool.sample_targets)
        self._monitoring: MonitoringApiServer | None = None
        self.shared_state: SharedState | None = None
        self._workdir: tempfile.TemporaryDirectory[str] | None = None
        self._revision_counter = 0
        self.shutdowns: list[Shutdown] = []  # instances shut down by a traffic change or scale-in

    # -- lifecycle -------------------------------------------------------------------------------------
    def __enter__(self) -> LocalStack:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def start(self) -> None:
        try:
            self._workdir = tempfile.TemporaryDirectory(prefix="cloudrun-smoke-stack-")
            self.pool.workdir = Path(self._workdir.name)
            self._watchdog.start()
            if self.config.shared_state:
                self.shared_state = SharedState(Path(self._workdir.name), self._watchdog)
                self.shared_state.start(self.config.startup_timeout)
            self._servers.append(self.logging.serve())
            run_api = RunApi(self.state, self._apply_traffic, self.config.reconcile_delay)
            self._servers.append(run_api.serve())
            self.state.add(self.service)
            self._front_end = FrontEnd(self.state, self.service, self.pool.backends_of, self.logging).start()
            self._front_end.cold_start = self.pool.start_on_request
            self.service.uri = self._front_end.url
            if self.config.iam:
                # The service's URL and its custom audiences, on every URL (tag URLs too).
                self._front_end.invoker_check = InvokerCheck(
                    lambda: {self.service_url, *self.service.custom_audiences}, self.config.invokers
                )
            self._front_end.metrics = self.metrics
            if F.ERROR_BURST in self.stack_faults:
                self._front_end.error_burst = ErrorBurst(self.config.burst_length, self.config.burst_every)
            deploy_configured(self)
            # Started after the first revisions: gRPC core logs each fork() made while its threads run.
            cfg = self.config
            metrics = CloudRunMetrics(self.metrics, cfg.project, cfg.region, cfg.service)
            api = MonitoringApi(
                cfg.project,
                metrics,
                min_alignment_period=cfg.min_alignment_period,
                metric_delay=cfg.metric_delay,
            )
            self._monitoring = MonitoringApiServer(api).start()
            self._sampler.start()
            if cfg.idle_timeout > 0:
                self.pool.start_scaling_in(cfg.idle_timeout)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        self.pool.stop_scaling_in()
        self._sampler.stop()
        if self._monitoring is not None:
            self._monitoring.stop()
            self._monitoring = None
        if self._front_end is not None:
            self._front_end.stop()
            self._front_end = None
        self.pool.stop_all()
        if self.shared_state is not None:  # after the instances: their shutdown may still write
            self.shared_state.stop()
            self.shared_state = None
        for server in self._servers:
            server.stop()
        self._servers.clear()
        self._watchdog.close()
        if self._workdir is not None:
            self._workdir.cleanup()
            self._workdir = None

    # -- endpoints -------------------------------------------------------------------------------------
    @property
    def logging_api_endpoint(self) -> str:
        return self._servers[0].endpoint

    @property
    def run_api_endpoint(self) -> str:
        return self._servers[1].endpoint

    @property
    def monitoring_api_endpoint(self) -> str:
        """``127.0.0.1:PORT``: a gRPC target (no scheme) for Cloud Monitoring's MetricServiceClient."""
        if self._monitoring is None:
            raise RuntimeError("the local stack is not started: it has no Cloud Monitoring API")
        return self._monitoring.endpoint

    @property
    def service_url(self) -> str:
        """The front end's service URL: requests are routed by the traffic split and logged."""
        return self.service.uri

    @property
    def tag_urls(self) -> dict[str, str]:
        with self.state.lock:
            return dict(self.service.tag_uris)

    def tag_url(self, tag: str) -> str:
        urls = self.tag_urls
        if tag not in urls:
            raise KeyError(f"no traffic target has tag {tag!r} (tags: {', '.join(sorted(urls)) or 'none'})")
        return urls[tag]

    @property
    def candidate_revision(self) -> str | None:
        return self.candidate.name if self.candidate else None

    @property
    def serving_revision(self) -> str | None:
        """The revision with the largest share of the traffic."""
        with self.state.lock:
            shares = [t for t in self.service.resolved_traffic() if t.revision and t.percent > 0]
        return max(shares, key=lambda t: t.percent).revision if shares else None

    @property
    def watchdog_pid(self) -> int | None:
        return self._watchdog.pid

    # -- instances ------------------------------------------------------------------------------------
    @property
    def instances(self) -> list[RevisionInstance]:
        """Every instance the stack started, running or not."""
        return self.pool.started

    def instances_of(self, revision: str) -> list[RevisionInstance]:
        return self.pool.of(revision)

    def _instance_exited(self, revision: str, instance: RevisionInstance, code: int) -> None:
        if self.on_instance_exit is not None:
            self.on_instance_exit(revision, instance, code)

    def _instance_shut_down(self, revision: str, instance: RevisionInstance, reason: str) -> None:
        self.shutdowns.append(Shutdown(revision, instance.instance_id, reason, utcnow()))

    # -- deploys ---------------------------------------------------------------------------------------
    def _revision_name(self) -> str:
        self._revision_counter += 1
        suffix = "".join(random.choices(string.ascii_lowercase, k=3))
        return f"{self.config.service}-{self._revision_counter:05d}-{suffix}"

    def deploy(
        self,
        command: str,
        spec: RevisionSpec,
        *,
        instances: int | None = None,
        traffic: bool = True,
        tag: str = "",
    ) -> Revision:
        """Create a revision and start its instances, like ``gcloud run deploy``: with ``traffic`` it
        then serves 100 % (traffic follows LATEST; tagged targets stay at 0 %); without, the serving
        revisions are pinned by name and the new one is reachable only through its ``tag`` URL."""
        count = instances or self.config.instances
        if self.shared_state is not None:  # declared on the revision, as production sets them
            spec = replace(spec, env={**spec.env, **self.shared_state.env()})
        revision = Revision(self._revision_name(), spec)
        with self.state.lock:
            self.service.revisions.append(revision)
            self.service.generation += 1
        try:
            self.pool.start_revision(command, revision, count)
        except RevisionStartError as e:
            with self.state.lock:
                revision.failure_message = str(e).splitlines()[0]
            raise
        with self.state.lock:
            if traffic:
                kept = [
                    replace(t, percent=0, revision=t.revision or self._latest_ready_name())
                    for t in self.service.traffic
                    if t.tag and t.tag != tag
                ]
                self.service.traffic = [*kept, TrafficTarget(None, 100, tag)]
            else:
                latest = self._latest_ready_name()
                pinned = [
                    replace(t, revision=t.revision or latest)
                    for t in self.service.traffic
                    if t.tag != tag or not tag
                ]
                self.service.traffic = [*pinned, TrafficTarget(revision.name, 0, tag)]
            revision.ready = True
            revision.url = self.pool.of(revision.name)[0].url
            self.service.update_time = utcnow()
            self._sync_tags()
            if traffic:
                self.pool.retire_unrouted()
        return revision

    def deploy_candidate(
        self, command: str, tag: str, spec: RevisionSpec | None = None, *, instances: int | None = None
    ) -> Revision:
        """``gcloud run deploy --no-traffic --tag TAG``: a candidate beside the serving revision."""
        self.candidate = self.deploy(
            command, spec or self.config.spec, instances=instances, traffic=False, tag=tag
        )
        return self.candidate

    def add_failed_revision(self, spec: RevisionSpec, message: str) -> Revision:
        """A revision that was created and never became ready (no instance runs)."""
        with self.state.lock:
            revision = Revision(self._revision_name(), spec, ready=False, failure_message=message)
            self.service.revisions.append(revision)
            self.service.generation += 1
            self.service.update_time = utcnow()
        return revision

    def set_traffic(self, targets: Sequence[TrafficTarget]) -> None:
        """Move traffic at once (the Admin API's ``update_service`` does the same through an operation)."""
        if sum(t.percent for t in targets) != 100:
            raise ValueError("traffic percents must sum to 100")
        with self.state.lock:
            for t in targets:
                if t.revision and self.service.find_revision(t.revision) is None:
                    raise ValueError(f"no revision named {t.revision!r}")
            self.service.generation += 1
            self._apply_traffic(self.service, list(targets))

    def _apply_traffic(self, service: Service, targets: list[TrafficTarget]) -> None:
        service.traffic = targets
        service.update_time = utcnow()
        self._sync_tags()
        self.pool.retire_unrouted()

    def _sync_tags(self) -> None:
        if self._front_end is not None:
            self._front_end.sync_tags()

    def _latest_ready_name(self) -> str | None:
        latest = self.service.latest_ready()
        return latest.name if latest else None


def stack_for(env: Environment) -> LocalStack:
    """The stack a local environment of smoke.toml describes (not started)."""
    settings = env.stack
    if settings is None:
        raise ValueError(f"environment {env.name!r} is not a local one")
    spec = RevisionSpec(
        image=settings.image,
        env=dict(settings.env),
        memory=settings.memory,
        cpu=settings.cpu,
        timeout_seconds=settings.timeout_seconds,
        min_instances=settings.min_instances,
        max_instances=settings.max_instances,
        cpu_idle=settings.cpu_idle,
        startup_cpu_boost=settings.startup_cpu_boost,
    )
    runtime = {key: getattr(settings, key) for key in StackRuntime.model_fields}
    return LocalStack(
        LocalStackConfig(
            project=env.project,
            region=env.region,
            service=env.service,
            spec=spec,
            slow_ingestion_delay=env.log_deadline + 30.0,
            throttle_seconds=min(10.0, env.log_deadline / 3),
            **runtime,
        )
    )
