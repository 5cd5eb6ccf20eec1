"""Waiting on a condition with a deadline (never a bare sleep as synchronisation)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class WaitTimeout(AssertionError):
    pass


def wait_until(probe: Callable[[], T | None], *, timeout: float, what: str, interval: float = 0.5) -> T:
    """Call ``probe`` until it returns something other than None; fail after ``timeout`` seconds."""
    started = time.monotonic()
    while True:
        result = probe()
        if result is not None:
            return result
        waited = time.monotonic() - started
        if waited >= timeout:
            raise WaitTimeout(f"waited {waited:.1f} s for {what}; giving up")
        time.sleep(min(interval, max(0.0, timeout - waited)))
