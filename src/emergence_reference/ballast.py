"""Memory ballast for the ``memory-creep`` fault: resident memory that grows until a target.

A leak shows in Cloud Run's memory utilisation only when its pages are really resident, so each chunk
is an anonymous mapping whose every page is written. The write is ``ctypes.memset``, which runs without
the GIL: the event loop keeps answering while the ballast grows, as with a leak in native code.
"""

from __future__ import annotations

import ctypes
import logging
import mmap
import threading
import time

logger = logging.getLogger(__name__)

MB = 1024 * 1024
CHUNK_MB = 50
RATE_MB_PER_S = 200.0


class Ballast:
    """Grows by ``CHUNK_MB`` chunks at about ``rate`` MB/s until it holds ``target_mb``, then holds it."""

    def __init__(self, target_mb: float, rate: float = RATE_MB_PER_S, chunk_mb: int = CHUNK_MB) -> None:
        self.target_bytes = int(target_mb * MB)
        self._rate = rate
        self._chunk = chunk_mb * MB
        self._chunks: list[mmap.mmap] = []
        self._held = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._grow, name="memory-ballast", daemon=True)

    @property
    def held_bytes(self) -> int:
        return self._held

    def start(self) -> Ballast:
        logger.info("Memory ballast: growing to %d MB at about %g MB/s", self.target_bytes // MB, self._rate)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._chunks.clear()  # the mappings are unmapped once no export holds them
        self._held = 0

    def _grow(self) -> None:
        started = time.monotonic()
        while self._held < self.target_bytes:
            size = min(self._chunk, self.target_bytes - self._held)
            chunk = mmap.mmap(-1, size)
            address = ctypes.addressof(ctypes.c_char.from_buffer(chunk))
            ctypes.memset(address, 0xA5, size)  # every page written: resident, not just reserved
            self._chunks.append(chunk)
            self._held += size
            # Pace to the rate: wait for the time this much memory should have taken (or a stop).
            due = started + self._held / MB / self._rate
            if self._stop.wait(max(0.0, due - time.monotonic())):
                return
