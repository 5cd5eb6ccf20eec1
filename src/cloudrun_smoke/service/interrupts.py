"""Ctrl-C waits for a creation in flight, so that what the service created is known and removed.

Interrupted while a ``POST`` that creates an object is on its way, the run would never learn the id
of what the service created, and teardown could not delete it. Inside :func:`deferred`, a first
Ctrl-C is held until the request has ended (it is bounded by the HTTP timeout), then raised; a
second one is raised at once.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType


@contextmanager
def deferred() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)
    held: list[int] = []

    def hold(signum: int, frame: FrameType | None) -> None:
        if held:
            raise KeyboardInterrupt
        held.append(signum)

    signal.signal(signal.SIGINT, hold)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if not held or previous == signal.SIG_IGN:
        return
    if callable(previous):
        previous(signal.SIGINT, None)  # Python's default handler raises KeyboardInterrupt
    else:
        raise KeyboardInterrupt
