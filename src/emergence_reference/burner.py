"""CPU burner for the ``cpu-burn`` fault: child processes that keep CPUs busy.

Cloud Run measures the CPU of the whole container, whichever process uses it. A busy loop in one of
the service's own Python threads would hold the GIL and stall the event loop, so the load runs in
child processes instead (``python -m emergence_reference.burner SHARE PARENT``): the service keeps
answering, as with a runaway native thread or a sidecar. Each child keeps SHARE of one CPU busy, in
periods of ``PERIOD`` s (busy SHARE of it, asleep the rest); it stays in the service's process group and
ends when the service stops it or when its parent is gone.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import subprocess
import sys
import time

logger = logging.getLogger(__name__)

PERIOD = 0.1  # seconds: one busy-then-asleep cycle


def shares(cpus: float) -> list[float]:
    """``cpus`` CPUs spread over as few children as possible, each busy at most one whole CPU."""
    if cpus <= 0:
        return []
    count = math.ceil(cpus)
    return [cpus / count] * count


class Burner:
    """Starts one child per CPU to burn (``shares``) and stops them."""

    def __init__(self, cpus: float) -> None:
        self.cpus = cpus
        self._children: list[subprocess.Popen[bytes]] = []

    @property
    def pids(self) -> list[int]:
        return [child.pid for child in self._children]

    def start(self) -> Burner:
        parts = shares(self.cpus)
        logger.info("CPU burn: %d child process(es) keeping %g CPU(s) busy", len(parts), self.cpus)
        for share in parts:
            self._children.append(
                subprocess.Popen(
                    [sys.executable, "-m", __name__, f"{share:g}", str(os.getpid())],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        return self

    def stop(self) -> None:
        children, self._children = self._children, []
        for child in children:
            with contextlib.suppress(OSError):
                child.terminate()
        for child in children:
            try:
                child.wait(timeout=5)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait(timeout=5)


def burn(share: float, parent: int, period: float = PERIOD) -> None:
    """Busy ``share`` of each period (wall time), asleep the rest, while ``parent`` is our parent."""
    busy = period * min(1.0, max(0.0, share))
    while os.getppid() == parent:
        end = time.perf_counter() + busy
        while time.perf_counter() < end:
            pass
        if busy < period:
            time.sleep(period - busy)


if __name__ == "__main__":
    burn(float(sys.argv[1]), int(sys.argv[2]))
