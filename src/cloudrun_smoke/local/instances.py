"""The instances of one service's revisions: started at deploy or on request, shut down as Cloud Run does.

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

import tempfile
import threading
import uuid
from collections.abc import Callable
from pathlib import Path

from cloudrun_smoke.local import faults as F
from cloudrun_smoke.local.front_end import Backend
from cloudrun_smoke.local.log_router import LogRouter, RevisionResource
from cloudrun_smoke.local.metrics import InstanceTarget, cpu_count, memory_bytes
from cloudrun_smoke.local.run_model import Revision, RunState, Service
from cloudrun_smoke.local.runner import RevisionInstance, RevisionStartError
from cloudrun_smoke.local.watchdog import Watchdog

# (revision, instance, exit code) when an instance exits; (revision, instance, why) when it is shut down
InstanceExit = Callable[[str, RevisionInstance, int], None]
InstanceShutdown = Callable[[str, RevisionInstance, str], None]


class InstancePool:
    """Every instance the stack started, by revision, with the front end's backends for them.

    ``workdir`` is where each instance gets its own TMPDIR; ``service_faults`` reach the service's
    processes through their environment; ``on_exit`` and ``on_shutdown`` tell the stack.
    """

    def __init__(
        self,
        state: RunState,
        service: Service,
        router: LogRouter,
        watchdog: Watchdog,
        *,
        on_exit: InstanceExit,
        on_shutdown: InstanceShutdown,
        startup_timeout: float,
        shutdown_grace: float,
        service_faults: frozenset[str] | tuple[str, ...] = (),
    ) -> None:
        self.state = state
        self.service = service
        self.router = router
        self.startup_timeout = startup_timeout
        self.shutdown_grace = shutdown_grace
        self.service_faults = tuple(service_faults)
        self.workdir: Path | None = None
        self.started: list[RevisionInstance] = []
        self._on_exit = on_exit
        self._on_shutdown = on_shutdown
        self._watchdog = watchdog
        self._backends: dict[str, list[Backend]] = {}
        self._by_revision: dict[str, list[RevisionInstance]] = {}
        self._commands: dict[str, str] = {}  # revision -> its command, for instances started on request
        self._stoppers: list[threading.Thread] = []
        self._scale_lock = threading.Lock()  # one instance started or stopped at a time
        self._scaler_stop = threading.Event()
        self._scaler: threading.Thread | None = None

    def of(self, revision: str) -> list[RevisionInstance]:
        return list(self._by_revision.get(revision, []))

    def backends_of(self, revision: str) -> list[Backend]:
        return list(self._backends.get(revision, []))

    # -- starting ----------------------------------------------------------------------------------------
    def start_revision(self, command: str, revision: Revision, count: int) -> None:
        """Start ``count`` instances of a new revision; its command is kept for starts on request."""
        self._commands[revision.name] = command
        for index in range(count):
            self._start(command, revision, index)

    def start_on_request(self, revision_name: str) -> Backend | None:
        """A request reached a ready revision with no instance running: start one, as Cloud Run does."""
        with self._scale_lock:
            live = [b for b in self.backends_of(revision_name) if b.alive()]
            if live:
                return live[0]
            with self.state.lock:
                revision = self.service.find_revision(revision_name)
                ready = revision is not None and revision.ready
            command = self._commands.get(revision_name)
            instances = self._by_revision.get(revision_name, [])
            # After a crash the stack keeps answering 503 (its exit is in the system log): only a
            # revision whose instances the stack itself shut down starts one again.
            crashed = any(not i.alive() and not i.stopping for i in instances)
            if revision is None or not ready or command is None or crashed:
                return None
            try:
                self._start(command, revision, len(instances))
            except RevisionStartError:
                return None
            return self.backends_of(revision_name)[-1]

    def _start(self, command: str, revision: Revision, index: int) -> None:
        service, spec = self.service, revision.spec
        resource = RevisionResource(
            service.project, service.region, service.name, revision.name, service.name
        )
        base = self.workdir or Path(tempfile.gettempdir())
        instance_dir = base / revision.name / f"instance-{index}"
        instance_dir.mkdir(parents=True, exist_ok=True)
        env = {
            **spec.env,
            "K_SERVICE": service.name,
            "K_REVISION": revision.name,
            "K_CONFIGURATION": service.name,
            "TMPDIR": str(instance_dir),
        }
        if self.service_faults or spec.faults:
            present = [n.strip() for n in env.get(F.SERVICE_FAULTS_ENV, "").split(",") if n.strip()]
            faults = [*present, *self.service_faults, *spec.faults]
            env[F.SERVICE_FAULTS_ENV] = ",".join(dict.fromkeys(faults))
        instance_id = uuid.uuid4().hex + uuid.uuid4().hex
        instance = RevisionInstance(
            command,
            env,
            lambda stream, line: self.router.route_line(resource, stream, line, instance_id),
            cwd=str(instance_dir),
            instance_id=instance_id,
            watchdog=self._watchdog,
            on_exit=lambda inst, code: self._exited(resource, inst, code),
            cpu_idle=spec.cpu_idle,
        )
        self.started.append(instance)
        self._by_revision.setdefault(revision.name, []).append(instance)
        instance.start(self.startup_timeout)
        self._backends.setdefault(revision.name, []).append(
            Backend(
                revision.name,
                instance_id,
                instance.port,
                lambda: instance.alive() and not instance.stopping,
                instance.serving,
            )
        )

    def _exited(self, resource: RevisionResource, instance: RevisionInstance, code: int) -> None:
        """Cloud Run notes a container's exit in the system log; the front end stops routing to it."""
        self.router.route_system(resource, f"Container called exit({code}).", "WARNING", instance.instance_id)
        self._on_exit(resource.revision, instance, code)

    # -- shutting down -----------------------------------------------------------------------------------
    def retire_unrouted(self) -> None:
        """Shut down the instances of every revision left without traffic and without a tag (call with
        the state's lock held: the shutdowns run in their own threads)."""
        routed = {t.revision for t in self.service.resolved_traffic() if t.revision and (t.percent or t.tag)}
        for revision, instances in list(self._by_revision.items()):
            if revision in routed:
                continue
            for instance in instances:
                self._shut_down(revision, instance, "its revision no longer receives traffic and has no tag")

    def _shut_down(self, revision: str, instance: RevisionInstance, reason: str) -> None:
        """SIGTERM now, SIGKILL after the grace period, in a thread of its own; the stack is told why."""
        if not instance.alive() or instance.stopping:
            return
        instance.mark_stopping()  # routed no more from now on
        self._on_shutdown(revision, instance, reason)
        stopper = threading.Thread(
            target=instance.stop, args=(self.shutdown_grace,), daemon=True, name=f"shutdown-{instance.pid}"
        )
        self._stoppers.append(stopper)
        stopper.start()

    def start_scaling_in(self, idle_timeout: float) -> None:
        """From now on, shut down instances idle for ``idle_timeout`` (see :meth:`_scale_in_idle`)."""
        self._scaler = threading.Thread(
            target=self._scale_in_idle, args=(idle_timeout,), daemon=True, name="scale-in"
        )
        self._scaler.start()

    def _scale_in_idle(self, timeout: float) -> None:
        """Every instance idle for ``timeout`` is shut down, down to its revision's ``min_instances``."""
        while not self._scaler_stop.wait(min(1.0, timeout / 4)):
            with self.state.lock:
                floors = {r.name: r.spec.min_instances for r in self.service.revisions}
            for revision, instances in list(self._by_revision.items()):
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

    def stop_scaling_in(self) -> None:
        self._scaler_stop.set()
        if self._scaler is not None:
            self._scaler.join(timeout=5)
            self._scaler = None

    def stop_all(self) -> None:
        """All instances get SIGTERM at once, as Cloud Run scales a revision down: the grace periods overlap."""
        stoppers = [threading.Thread(target=i.stop, daemon=True) for i in self.started]
        for stopper in stoppers:
            stopper.start()
        for stopper in [*stoppers, *self._stoppers]:
            stopper.join(timeout=15)

    # -- for the metrics sampler -------------------------------------------------------------------------
    def sample_targets(self) -> list[InstanceTarget]:
        """Every instance the stack started, with its revision's limits (for the sampler)."""
        with self.state.lock:
            specs = {r.name: r.spec for r in self.service.revisions}
        targets = []
        for revision, instances in list(self._by_revision.items()):
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
