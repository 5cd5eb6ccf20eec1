"""A watchdog process that kills the stack's process groups when the stack's process dies.

``PR_SET_PDEATHSIG`` reaches only a revision's own process: whatever that process started (workers, a
database, a vector store) would survive a SIGKILL of the stack. The watchdog holds the read end of a
pipe from the stack and is told each process group it must answer for; when the pipe reaches EOF —
on a clean close or because the stack's process died in any way — it terminates every group it still
holds. It runs in its own session so that a Ctrl-C in the terminal does not take it down first.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time


class Watchdog:
    """The stack's side: start once, then ``adopt``/``release`` process group ids."""

    def __init__(self) -> None:
        self._process: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()

    def start(self) -> Watchdog:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "cloudrun_smoke.local.watchdog"],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            start_new_session=True,
        )
        return self

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def _send(self, line: str) -> None:
        with self._lock:
            if self._process is None or self._process.stdin is None:
                return
            with contextlib.suppress(OSError, ValueError):
                self._process.stdin.write(line.encode() + b"\n")
                self._process.stdin.flush()

    def adopt(self, pgid: int) -> None:
        self._send(f"+{pgid}")

    def release(self, pgid: int) -> None:
        self._send(f"-{pgid}")

    def close(self) -> None:
        with self._lock:
            process, self._process = self._process, None
        if process is None:
            return
        with contextlib.suppress(OSError, ValueError):
            if process.stdin:
                process.stdin.close()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def _kill_groups(groups: set[int], grace: float = 3.0) -> None:
    for pgid in groups:
        with contextlib.suppress(OSError):
            os.killpg(pgid, signal.SIGCONT)  # a group frozen for cpu_idle must get its grace period
            os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    pending = set(groups)
    while pending and time.monotonic() < deadline:
        for pgid in list(pending):
            try:
                os.killpg(pgid, 0)
            except OSError:
                pending.discard(pgid)
        time.sleep(0.05)
    for pgid in pending:
        with contextlib.suppress(OSError):
            os.killpg(pgid, signal.SIGKILL)


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    groups: set[int] = set()
    for raw in sys.stdin.buffer:
        line = raw.decode(errors="replace").strip()
        with contextlib.suppress(ValueError):
            if line.startswith("+"):
                groups.add(int(line[1:]))
            elif line.startswith("-"):
                groups.discard(int(line[1:]))
    _kill_groups(groups)


if __name__ == "__main__":
    main()
