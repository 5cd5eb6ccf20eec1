"""What the local stack observes, kept for its Cloud Monitoring emulator.

Cloud Run counts the requests that reach a container instance and samples every instance; so does the
local stack: the front end records each answer of an instance (revision, status, the instance's
latency; refusals before an instance are not requests of the metrics), and a sampler thread
reads each live instance's process tree from /proc every ``period`` seconds (memory and CPU against the
revision's limits, alive and active instances per revision).
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from cloudrun_smoke.local import procfs

log = logging.getLogger(__name__)

DEFAULT_PERIOD = 1.0  # seconds between samples locally (Cloud Run samples every 60 s)
MAX_RECORDS = 200_000  # per kind; the oldest go first

_QUANTITY = re.compile(r"^\s*(\d+(?:\.\d+)?|\.\d+)\s*([A-Za-z]*)\s*$")
_BINARY = {"": 1, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}
_DECIMAL = {"k": 10**3, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}


def memory_bytes(quantity: str) -> int:
    """Bytes of a Kubernetes-style quantity as ``gcloud run deploy --memory`` takes it (``512Mi``, ``2Gi``,
    ``1G``); ``ValueError`` names the quantity when it is not one."""
    match = _QUANTITY.match(quantity)
    unit = match.group(2) if match else "?"
    factor = _BINARY.get(unit) or _DECIMAL.get(unit)
    if match is None or factor is None or float(match.group(1)) <= 0:
        raise ValueError(f"memory limit {quantity!r} is not a quantity such as 512Mi or 2Gi")
    return int(float(match.group(1)) * factor)


def cpu_count(quantity: str) -> float:
    """vCPUs of ``--cpu`` (``1``, ``2``, ``0.5``, ``1000m``)."""
    match = _QUANTITY.match(quantity)
    if match is None or match.group(2) not in ("", "m") or float(match.group(1)) <= 0:
        raise ValueError(f"cpu limit {quantity!r} is not a number of vCPUs such as 1, 2 or 500m")
    return float(match.group(1)) / (1000 if match.group(2) == "m" else 1)


@dataclass(frozen=True)
class RequestRecord:
    """One request an instance answered. ``end`` is POSIX seconds."""

    end: float
    revision: str
    status: int
    latency_ms: float
    instance_id: str = ""


@dataclass(frozen=True)
class UtilizationSample:
    """One instance at one sampling instant; ``cpu`` is None on an instance's first sample (no Δ yet)."""

    time: float
    revision: str
    instance_id: str
    memory: float
    cpu: float | None


@dataclass(frozen=True)
class InstanceCountSample:
    time: float
    revision: str
    active: int
    idle: int


class MetricsRecorder:
    """Thread-safe store of the stack's observations, read by the Monitoring emulator."""

    def __init__(self, period: float = DEFAULT_PERIOD, max_records: int = MAX_RECORDS) -> None:
        if period <= 0:
            raise ValueError(f"the sampling period must be positive, got {period:g}")
        self.period = period
        self._lock = threading.Lock()
        self._requests: deque[RequestRecord] = deque(maxlen=max_records)
        self._utilizations: deque[UtilizationSample] = deque(maxlen=max_records)
        self._instance_counts: deque[InstanceCountSample] = deque(maxlen=max_records)
        self._in_flight: dict[str, int] = {}
        self._last_served: dict[str, float] = {}

    # -- what the front end reports ------------------------------------------------------------------
    @contextlib.contextmanager
    def serving(self, instance_id: str) -> Iterator[None]:
        """Marks the instance active while a request is in flight (instance_count's ``active`` state)."""
        with self._lock:
            self._in_flight[instance_id] = self._in_flight.get(instance_id, 0) + 1
        try:
            yield
        finally:
            with self._lock:
                self._in_flight[instance_id] -= 1
                self._last_served[instance_id] = time.time()

    def record_request(
        self,
        revision: str,
        status: int,
        latency_ms: float,
        *,
        instance_id: str = "",
        end: float | None = None,
    ) -> None:
        record = RequestRecord(time.time() if end is None else end, revision, status, latency_ms, instance_id)
        with self._lock:
            self._requests.append(record)

    # -- what the sampler reports --------------------------------------------------------------------
    def record_utilization(self, sample: UtilizationSample) -> None:
        with self._lock:
            self._utilizations.append(sample)

    def record_instance_count(self, sample: InstanceCountSample) -> None:
        with self._lock:
            self._instance_counts.append(sample)

    def active_since(self, instance_id: str, since: float) -> bool:
        """Whether the instance served a request after ``since`` or is serving one now."""
        with self._lock:
            return self._in_flight.get(instance_id, 0) > 0 or self._last_served.get(instance_id, 0.0) > since

    # -- what the emulator reads ---------------------------------------------------------------------
    def requests(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._requests)

    def utilizations(self) -> list[UtilizationSample]:
        with self._lock:
            return list(self._utilizations)

    def instance_counts(self) -> list[InstanceCountSample]:
        with self._lock:
            return list(self._instance_counts)


@dataclass(frozen=True)
class InstanceTarget:
    """An instance the sampler measures: its process and its revision's limits."""

    revision: str
    instance_id: str
    pid: int | None
    alive: bool
    memory_limit_bytes: int
    cpu_limit: float


TargetLookup = Callable[[], Sequence[InstanceTarget]]

_warned_no_proc = False


def _warn_no_proc_once() -> None:
    global _warned_no_proc
    if not _warned_no_proc:
        _warned_no_proc = True
        log.warning("no /proc on this system: container memory and CPU utilizations are not sampled")


class InstanceSampler:
    """Samples every instance each ``period`` seconds from a background thread."""

    def __init__(self, recorder: MetricsRecorder, targets: TargetLookup, period: float | None = None) -> None:
        self._recorder = recorder
        self._targets = targets
        self.period = period or recorder.period
        self._previous: dict[str, tuple[float, float]] = {}  # instance -> (monotonic, cpu seconds)
        self._last_tick = time.time()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._proc = procfs.available()
        self.ticks = 0
        self.cost_seconds = 0.0  # CPU time the sampler itself spent

    def start(self) -> InstanceSampler:
        if not self._proc:
            _warn_no_proc_once()
        self._thread = threading.Thread(target=self._run, name="instance-sampler", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _run(self) -> None:
        next_tick = time.monotonic() + self.period
        while not self._stop.wait(max(0.0, next_tick - time.monotonic())):
            self.sample_once()
            next_tick += self.period
            if next_tick < time.monotonic():  # fell behind (a suspended machine): skip, do not burst
                next_tick = time.monotonic() + self.period

    def sample_once(self) -> None:
        """One sampling instant for every instance (the thread calls this each period)."""
        cost = time.thread_time()
        now, clock = time.time(), time.monotonic()
        since, self._last_tick = self._last_tick, now
        counts: dict[str, list[int]] = {}
        for target in self._targets():
            active_idle = counts.setdefault(target.revision, [0, 0])
            if not target.alive or target.pid is None:
                self._previous.pop(target.instance_id, None)
                continue
            active_idle[0 if self._recorder.active_since(target.instance_id, since) else 1] += 1
            if self._proc and target.memory_limit_bytes > 0 and target.cpu_limit > 0:
                self._sample_usage(target, now, clock)
        for revision, (active, idle) in counts.items():
            self._recorder.record_instance_count(InstanceCountSample(now, revision, active, idle))
        self.ticks += 1
        self.cost_seconds += time.thread_time() - cost

    def _sample_usage(self, target: InstanceTarget, now: float, clock: float) -> None:
        assert target.pid is not None
        usage = procfs.tree_usage(target.pid)
        if usage is None:
            return
        cpu: float | None = None
        previous = self._previous.get(target.instance_id)
        if previous is not None and clock > previous[0]:
            used = max(0.0, usage.cpu_seconds - previous[1])
            cpu = min(1.0, used / ((clock - previous[0]) * target.cpu_limit))
        self._previous[target.instance_id] = (clock, usage.cpu_seconds)
        memory = min(1.0, usage.rss_bytes / target.memory_limit_bytes)
        self._recorder.record_utilization(
            UtilizationSample(now, target.revision, target.instance_id, memory, cpu)
        )
