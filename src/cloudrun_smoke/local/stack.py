"""The embedded local stack ("Cloud Run in a box"): everything on 127.0.0.1, started and stopped as one.

The suite talks to it exactly as to Google: the Admin API and the Logging API through Google's own
clients, the service over HTTP. Every process the stack starts ends with it, also when a test fails
or the service crashes.
"""

from __future__ import annotations

import random
import string
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from cloudrun_smoke.config import Environment
from cloudrun_smoke.local.json_api import JsonApiServer
from cloudrun_smoke.local.log_router import LogRouter, RevisionResource
from cloudrun_smoke.local.log_store import LogStore
from cloudrun_smoke.local.logging_api import Ingestion, LoggingApi, ReadQuota
from cloudrun_smoke.local.run_api import RunApi
from cloudrun_smoke.local.run_model import Revision, RevisionSpec, RunState, Service, TrafficTarget
from cloudrun_smoke.local.runner import RevisionInstance


@dataclass(frozen=True)
class LocalStackConfig:
    project: str = "smoke-local"
    region: str = "us-central1"
    service: str = "emergencev8-backend"
    service_cmd: str = "python -m emergence_reference"
    spec: RevisionSpec = field(default_factory=lambda: RevisionSpec(image="local/emergencev8-backend:dev"))
    ingestion_delay: float = 1.0
    ingestion_jitter: float = 0.5
    startup_timeout: float = 30.0
    read_quota_per_minute: int | None = 60


class LocalStack:
    def __init__(self, config: LocalStackConfig | None = None) -> None:
        self.config = config or LocalStackConfig()
        self.store = LogStore()
        self.logging = LoggingApi(
            self.store,
            Ingestion(self.config.ingestion_delay, self.config.ingestion_jitter),
            ReadQuota(self.config.read_quota_per_minute),
        )
        self.router = LogRouter(self.logging)
        self.state = RunState()
        self.instances: list[RevisionInstance] = []
        self._servers: list[JsonApiServer] = []
        self._workdir: tempfile.TemporaryDirectory[str] | None = None
        self._revision_counter = 0

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
            self._servers.append(self.logging.serve())
            self._servers.append(RunApi(self.state).serve())
            cfg = self.config
            self.service = self.state.add(Service(cfg.project, cfg.region, cfg.service))
            self.deploy(cfg.service_cmd, cfg.spec)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        for instance in self.instances:
            instance.stop()
        for server in self._servers:
            server.stop()
        self._servers.clear()
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
    def service_url(self) -> str:
        return self.service.uri

    # -- deploys ---------------------------------------------------------------------------------------
    def _revision_name(self) -> str:
        self._revision_counter += 1
        suffix = "".join(random.choices(string.ascii_lowercase, k=3))
        return f"{self.config.service}-{self._revision_counter:05d}-{suffix}"

    def deploy(self, command: str, spec: RevisionSpec) -> Revision:
        """Create a revision, start its instance and send it all traffic, like ``gcloud run deploy``."""
        cfg = self.config
        revision = Revision(self._revision_name(), spec)
        with self.state.lock:
            self.service.revisions.append(revision)
        resource = RevisionResource(cfg.project, cfg.region, cfg.service, revision.name, cfg.service)
        instance_dir = Path(self._workdir.name if self._workdir else tempfile.gettempdir()) / revision.name
        instance_dir.mkdir(parents=True, exist_ok=True)
        env = {
            **spec.env,
            "K_SERVICE": cfg.service,
            "K_REVISION": revision.name,
            "K_CONFIGURATION": cfg.service,
            "TMPDIR": str(instance_dir),
        }
        instance_id = uuid.uuid4().hex
        instance = RevisionInstance(
            command,
            env,
            lambda stream, line: self.router.route_line(resource, stream, line, instance_id),
            cwd=str(instance_dir),
            instance_id=instance_id,
        )
        self.instances.append(instance)
        instance.start(cfg.startup_timeout)
        with self.state.lock:
            revision.ready = True
            revision.url = instance.url
            self.service.uri = instance.url
            self.service.traffic = [TrafficTarget(None, 100)]
            self.service.generation += 1
        return revision


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
    )
    return LocalStack(
        LocalStackConfig(
            project=env.project,
            region=env.region,
            service=env.service,
            service_cmd=settings.service_cmd,
            spec=spec,
            ingestion_delay=settings.ingestion_delay,
            ingestion_jitter=settings.ingestion_jitter,
            startup_timeout=settings.startup_timeout,
            read_quota_per_minute=settings.read_quota_per_minute,
        )
    )
