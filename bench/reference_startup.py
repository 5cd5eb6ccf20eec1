"""Start-up of the reference service with an empty data directory: spawn → first ``/healthz`` 200.

``/healthz`` is 200 only once SQLite, the task workers and the ChromaDB collection are all up, so this
is the real readiness time. Also reports spawn → first ``/api/health`` 200 (the process serves).

    python bench/reference_startup.py [--runs 5]

Prints one line per run and the medians; exits 1 when the median readiness exceeds the 5 s target.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

TARGET_SECONDS = 5.0
DEADLINE_SECONDS = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def one_run() -> tuple[float, float]:
    with tempfile.TemporaryDirectory(prefix="reference-startup-") as tmp:
        port = free_port()
        env = {
            **{k: v for k, v in os.environ.items() if k != "EMERGENCE_FAULTS"},
            "PORT": str(port),
            "EMERGENCE_DATA_DIR": str(Path(tmp) / "data"),  # does not exist yet: empty data dir
        }
        started = time.monotonic()
        proc = subprocess.Popen(
            [sys.executable, "-m", "emergence_reference"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        serving: float | None = None
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=1, trust_env=False) as client:
                while time.monotonic() - started < DEADLINE_SECONDS:
                    if proc.poll() is not None:
                        raise SystemExit(f"the service exited with {proc.returncode}")
                    try:
                        if serving is None and client.get("/api/health").status_code == 200:
                            serving = time.monotonic() - started
                        if client.get("/healthz").status_code == 200:
                            ready = time.monotonic() - started
                            return serving or ready, ready
                    except httpx.TransportError:
                        pass
                    time.sleep(0.01)  # poll interval
            raise SystemExit(f"/healthz not 200 within {DEADLINE_SECONDS} s")
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    serving, ready = [], []
    for n in range(1, args.runs + 1):
        s, r = one_run()
        serving.append(s)
        ready.append(r)
        print(f"run {n}: /api/health 200 after {s:.2f} s, /healthz 200 after {r:.2f} s")
    median_ready = statistics.median(ready)
    print(
        f"reference service start-up (empty data dir, median of {args.runs}): "
        f"serving {statistics.median(serving):.2f} s, ready (/healthz 200) {median_ready:.2f} s "
        f"(target < {TARGET_SECONDS:g} s)"
    )
    return 0 if median_ready < TARGET_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
