"""The embedded local stack ("Cloud Run in a box"): everything on 127.0.0.1, started and stopped as one.

The suite talks to it exactly as to Google: the Admin API and the Logging API through Google's own
clients, the service over HTTP through a front end that routes by traffic split and tag and logs
every request. Every process the stack starts ends with it, also when a test fails, the service
crashes or the stack's own process is killed (a watchdog process answers for that case).

Instances are shut down as Cloud Run shuts them down (container runtime contract, "Instance shutdown",
https://cloud.google.com/run/docs/container-contract#instance-shutdown: SIGTERM, SIGKILL 10 s later):
when a traffic change leaves their revision without traffic and without a tag, and, with
``idle_timeout``, when they have served nothing for that long beyond the revision's ``min_instances``.
A revision with no instance running (a tagged 0 % revision scaled in, a revision given traffic again)
starts one on its next request, as Cloud Run starts an instance on request ("Testing, traffic migration
and rollbacks", https://cloud.google.com/run/docs/rollouts-rollbacks-traffic-migration: a tagged revision
at 0 % is reachable through its tag URL).
"""

from __future__ import annotations

import random
import string
import tempfile
import threading
import uuid
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
from cloudrun_smoke.local.front_end import Backend, ErrorBurst, FrontEnd
from cloudrun_smoke.local.iam import InvokerCheck
from cloudrun_smoke.local.json_api import JsonApiServer
from cloudrun_smoke.local.log_router import LogRouter, RevisionResource
from cloudrun_smoke.local.log_store import LogStore
from cloudrun_smoke.local.logging_api import Ingestion, LoggingApi, ReadQuota, ShortPages
from cloudrun_smoke.local.metrics import (
    InstanceSampler,
    InstanceTarget,
    MetricsRecorder,
    cpu_count,
    memory_bytes,
)
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
        self.instances: list[RevisionInstance] = []
        self.candidate: Revision | None = None
        self.on_instance_exit: ExitHook | None = None  # e.g. `local up` prints crashes
        self._backends: dict[str, list[Backend]] = {}
        self._instances_by_revision: dict[str, list[RevisionInstance]] = {}
        self._servers: list[JsonApiServer] = []
        self._front_end: FrontEnd | None = None
        self.metrics = MetricsRecorder(cfg.metrics_period)  # what the Monitoring API serves
        self._sampler = InstanceSampler(self.metrics, self._sample_targets)
        self._monitoring: MonitoringApiServer | None = None
        self._watchdog = Watchdog()
        self.shared_state: SharedState | None = None
        self._workdir: tempfile.TemporaryDirectory[str] | None = None
        self._revision_counter = 0
        self._commands: dict[str, str] = {}  # revision -> its command, for instances started on request
        self.shutdowns: list[Shutdown] = []  # instances shut down by a traffic change or scale-in
        self._stoppers: list[threading.Thread] = []
        self._scale_lock = threading.Lock()  # one instance started or stopped at a time
        self._scaler_stop = threading.Event()
        self._scaler: threading.Thread | None = None

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
            self._watchdog.start()
            if self.config.shared_state:
                self.shared_state = SharedState(Path(self._workdir.name), self._watchdog)
                self.shared_state.start(self.config.startup_timeout)
            self._servers.append(self.logging.serve())
            run_api = RunApi(self.state, self._apply_traffic, self.config.reconcile_delay)
            self._servers.append(run_api.serve())
            self.state.add(self.service)
            self._front_end = FrontEnd(self.state, self.service, self._backends_of, self.logging).start()
            self._front_end.cold_start = self._start_on_request
            self.service.uri = self._front_end.url
            if self.config.iam:
                # The service's URL and its custom audiences, on every URL (tag URLs too).
                self._front_end.invoker_check = InvokerCheck(
                    lambda: {self.service_url, *self.service.custom_audiences}, self.config.invokers
                )
            self._front_end.metrics = self.metrics
            if F.ERROR_BURST in self.stack_faults:
                self._front_end.error_burst = ErrorBurst(self.config.burst_length, self.config.burst_every)
            self._deploy_configured()
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
                self._scaler = threading.Thread(target=self._scale_in_idle, daemon=True, name="scale-in")
                self._scaler.start()
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        self._scaler_stop.set()
        if self._scaler is not None:
            self._scaler.join(timeout=5)
            self._scaler = None
        self._sampler.stop()
        if self._monitoring is not None:
            self._monitoring.stop()
            self._monitoring = None
        if self._front_end is not None:
            self._front_end.stop()
            self._front_end = None
        # All instances get SIGTERM at once, as Cloud Run scales a revision down: the grace periods overlap.
        stoppers = [threading.Thread(target=i.stop, daemon=True) for i in self.instances]
        for stopper in stoppers:
            stopper.start()
        for stopper in [*stoppers, *self._stoppers]:
            stopper.join(timeout=15)
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

    def instances_of(self, revision: str) -> list[RevisionInstance]:
        return list(self._instances_by_revision.get(revision, []))

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
        self._commands[revision.name] = command
        with self.state.lock:
            self.service.revisions.append(revision)
            self.service.generation += 1
        try:
            for index in range(count):
                self._start_instance(command, spec, revision, index)
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
            revision.url = self._instances_by_revision[revision.name][0].url
            self.service.update_time = utcnow()
            self._sync_tags()
            if traffic:
                self._retire_unrouted()
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
        self._retire_unrouted()

    # -- instances shut down and started on request -----------------------------------------------------
    def _retire_unrouted(self) -> None:
        """Shut down the instances of every revision left without traffic and without a tag (call with
        the state's lock held: the shutdowns run in their own threads)."""
        routed = {t.revision for t in self.service.resolved_traffic() if t.revision and (t.percent or t.tag)}
        for revision, instances in list(self._instances_by_revision.items()):
            if revision in routed:
                continue
            for instance in instances:
                self._shut_down(revision, instance, "its revision no longer receives traffic and has no tag")

    def _shut_down(self, revision: str, instance: RevisionInstance, reason: str) -> None:
        """SIGTERM now, SIGKILL after the grace period, in a thread of its own; noted in ``shutdowns``."""
        if not instance.alive() or instance.stopping:
            return
        instance.mark_stopping()  # routed no more from now on
        self.shutdowns.append(Shutdown(revision, instance.instance_id, reason, utcnow()))
        grace = self.config.shutdown_grace
        stopper = threading.Thread(
            target=instance.stop, args=(grace,), daemon=True, name=f"shutdown-{instance.pid}"
        )
        self._stoppers.append(stopper)
        stopper.start()

    def _start_on_request(self, revision_name: str) -> Backend | None:
        """A request reached a ready revision with no instance running: start one, as Cloud Run does."""
        with self._scale_lock:
            live = [b for b in self._backends_of(revision_name) if b.alive()]
            if live:
                return live[0]
            with self.state.lock:
                revision = self.service.find_revision(revision_name)
                ready = revision is not None and revision.ready
            command = self._commands.get(revision_name)
            instances = self._instances_by_revision.get(revision_name, [])
            # After a crash the stack keeps answering 503 (its exit is in the system log): only a
            # revision whose instances the stack itself shut down starts one again.
            crashed = any(not i.alive() and not i.stopping for i in instances)
            if revision is None or not ready or command is None or crashed:
                return None
            index = len(instances)
            try:
                self._start_instance(command, revision.spec, revision, index)
            except RevisionStartError:
                return None
            return self._backends_of(revision_name)[-1]

    def _scale_in_idle(self) -> None:
        """Every instance idle for ``idle_timeout`` is shut down, down to its revision's ``min_instances``."""
        timeout = self.config.idle_timeout
        while not self._scaler_stop.wait(min(1.0, timeout / 4)):
            with self.state.lock:
                floors = {r.name: r.spec.min_instances for r in self.service.revisions}
            for revision, instances in list(self._instances_by_revision.items()):
                with self._scale_lock:
                    live = [i for i in instances if i.alive() and not i.stopping]
                    idle = sorted(
                        (i for i in live if i.idle_for() >= timeout), key=lambda i: i.idle_for(), reverse=True
                    )
                    keep = floors.get(revision, 0)
                    for instance in idle[: max(0, len(live) - keep)]:
                        self._shut_down(
                            revision,
                            instance,
                            f"idle for {timeout:g} s: scaled in (min_instances {keep})",
                        )

    def _sync_tags(self) -> None:
        if self._front_end is not None:
            self._front_end.sync_tags()

    def _latest_ready_name(self) -> str | None:
        latest = self.service.latest_ready()
        return latest.name if latest else None

    def _start_instance(self, command: str, spec: RevisionSpec, revision: Revision, index: int) -> None:
        cfg = self.config
        resource = RevisionResource(cfg.project, cfg.region, cfg.service, revision.name, cfg.service)
        base = Path(self._workdir.name if self._workdir else tempfile.gettempdir())
        instance_dir = base / revision.name / f"instance-{index}"
        instance_dir.mkdir(parents=True, exist_ok=True)
        env = {
            **spec.env,
            "K_SERVICE": cfg.service,
            "K_REVISION": revision.name,
            "K_CONFIGURATION": cfg.service,
            "TMPDIR": str(instance_dir),
        }
        if self.service_faults:
            present = [n.strip() for n in env.get(F.SERVICE_FAULTS_ENV, "").split(",") if n.strip()]
            env[F.SERVICE_FAULTS_ENV] = ",".join(dict.fromkeys([*present, *self.service_faults]))
        instance_id = uuid.uuid4().hex + uuid.uuid4().hex
        instance = RevisionInstance(
            command,
            env,
            lambda stream, line: self.router.route_line(resource, stream, line, instance_id),
            cwd=str(instance_dir),
            instance_id=instance_id,
            watchdog=self._watchdog,
            on_exit=lambda inst, code: self._instance_exited(resource, inst, code),
            cpu_idle=spec.cpu_idle,
        )
        self.instances.append(instance)
        self._instances_by_revision.setdefault(revision.name, []).append(instance)
        instance.start(cfg.startup_timeout)
        self._backends.setdefault(revision.name, []).append(
            Backend(
                revision.name,
                instance_id,
                instance.port,
                lambda: instance.alive() and not instance.stopping,
                instance.serving,
            )
        )

    def _instance_exited(self, resource: RevisionResource, instance: RevisionInstance, code: int) -> None:
        """Cloud Run notes a container's exit in the system log; the front end stops routing to it."""
        self.router.route_system(resource, f"Container called exit({code}).", "WARNING", instance.instance_id)
        if self.on_instance_exit is not None:
            self.on_instance_exit(resource.revision, instance, code)

    def _backends_of(self, revision: str) -> list[Backend]:
        return list(self._backends.get(revision, []))

    def _sample_targets(self) -> list[InstanceTarget]:
        """Every instance the stack started, with its revision's limits (for the sampler)."""
        with self.state.lock:
            specs = {r.name: r.spec for r in self.service.revisions}
        targets = []
        for revision, instances in list(self._instances_by_revision.items()):
            spec = specs.get(revision)
            if spec is None:
                continue
            try:
                memory, cpu = memory_bytes(spec.memory), cpu_count(spec.cpu)
            except ValueError:
                memory, cpu = 0, 0.0  # limits the sampler cannot read: instances counted, not measured
            for i in instances:
                targets.append(InstanceTarget(revision, i.instance_id, i.pid, i.alive(), memory, cpu))
        return targets

    # -- the configured deploy, with the fault switches ------------------------------------------------
    def _deploy_configured(self) -> None:
        cfg, faults = self.config, self.stack_faults
        spec = _faulted_spec(cfg.spec, faults)
        previous = self.deploy(cfg.service_cmd, spec, instances=1) if F.TRAFFIC_SPLIT in faults else None
        # With a previous revision, the split is set at once: it never goes without traffic meanwhile.
        current = self.deploy(cfg.service_cmd, spec, traffic=previous is None)
        if previous is not None:
            self.set_traffic([TrafficTarget(current.name, 90), TrafficTarget(previous.name, 10)])
        if F.REVISION_NOT_READY in faults:
            with self.state.lock:
                self.service.traffic = [
                    replace(t, revision=t.revision or current.name) for t in self.service.traffic
                ]
                current.ready = False
                current.failure_message = (
                    "The user-provided container failed the configured startup probe checks."
                )
        if F.LATEST_REVISION_FAILED in faults:
            self.add_failed_revision(
                spec,
                "The user-provided container failed to start and listen on the port defined provided by "
                "the PORT=8080 environment variable. Container called exit(1).",
            )
        if cfg.candidate_cmd:
            if not cfg.tag:
                raise ValueError("a candidate revision needs a tag: it gets no traffic")
            self.deploy_candidate(cfg.candidate_cmd, cfg.tag, cfg.candidate_spec or spec)


def _faulted_spec(spec: RevisionSpec, faults: frozenset[str]) -> RevisionSpec:
    """The spec a deploy gets under the configuration faults (what the Admin API reports, and for a
    missing env var also what the process gets)."""
    if F.UNEXPECTED_IMAGE in faults:
        repository = spec.image.rsplit(":", 1)[0] if ":" in spec.image.rsplit("/", 1)[-1] else spec.image
        spec = replace(spec, image=f"{repository}:unexpected-build")
    if F.MISSING_ENV in faults and spec.env:
        first = next(iter(spec.env))
        spec = replace(spec, env={k: v for k, v in spec.env.items() if k != first})
    if F.WRONG_RESOURCES in faults:
        spec = replace(
            spec,
            memory="1Gi" if spec.memory == "512Mi" else "512Mi",
            cpu="2" if spec.cpu == "1" else "1",
        )
    return spec


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
