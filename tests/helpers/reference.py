"""The reference service (``python -m emergence_reference``) as a subprocess, and requests that speak its
contract: shared by the tests of tests/reference/ and the stack tests that drive it through the front end.

Waiting is event-driven with deadlines: on the service's output lines (read by a background thread) or
on an HTTP poll, never on a bare sleep.
"""

from __future__ import annotations

import contextlib
import os
import re
import selectors
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from emergence_reference.store import DB_FILENAME

START_DEADLINE = 20.0
LOG_DEADLINE = 10.0


# -- the service process and its output -------------------------------------------------------------


class OutputCapture:
    """The process's stdout and stderr, split into lines by one background thread.

    After reading stdout, the thread drains stderr before publishing, so when a stdout line becomes
    visible every stderr line the service wrote before it is visible too. That makes "wait for a later
    access line on stdout, then check stderr" a sound way to assert that a stderr line never came.
    """

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None and proc.stderr is not None
        self.lines: dict[str, list[str]] = {"stdout": [], "stderr": []}
        self.closed = False
        self._cond = threading.Condition()
        self._files = {"stdout": proc.stdout, "stderr": proc.stderr}
        self._thread = threading.Thread(target=self._run, name="service-output", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        selector = selectors.DefaultSelector()
        partial = {name: b"" for name in self._files}
        open_streams = set(self._files)
        for name, stream in self._files.items():
            os.set_blocking(stream.fileno(), False)
            selector.register(stream, selectors.EVENT_READ, name)
        while open_streams:
            ready = {key.data for key, _ in selector.select()}
            fresh: dict[str, list[str]] = {"stdout": [], "stderr": []}
            for name in ("stdout", "stderr"):  # this order is what makes the guarantee above hold
                if name not in open_streams or (name == "stdout" and name not in ready):
                    continue
                data, eof = self._drain(self._files[name].fileno())
                *complete, partial[name] = (partial[name] + data).split(b"\n")
                if eof:
                    complete += [partial[name]] if partial[name] else []
                    selector.unregister(self._files[name])
                    open_streams.discard(name)
                fresh[name] = [line.decode("utf-8", "replace") for line in complete]
            with self._cond:
                for name, new_lines in fresh.items():
                    self.lines[name].extend(new_lines)
                self.closed = not open_streams
                self._cond.notify_all()
        selector.close()

    @staticmethod
    def _drain(fd: int) -> tuple[bytes, bool]:
        chunks: list[bytes] = []
        while True:
            try:
                chunk = os.read(fd, 65536)
            except BlockingIOError:
                return b"".join(chunks), False
            if not chunk:
                return b"".join(chunks), True
            chunks.append(chunk)

    def snapshot(self, stream: str) -> list[str]:
        with self._cond:
            return list(self.lines[stream])

    def wait_for(
        self, stream: str, pattern: str, start: int = 0, timeout: float = LOG_DEADLINE
    ) -> tuple[int, re.Match[str]]:
        """The first line at or after index ``start`` that matches ``pattern``, waiting up to ``timeout``."""
        regex = re.compile(pattern)
        found: tuple[int, re.Match[str]] | None = None

        def search() -> bool:
            nonlocal found
            for index in range(start, len(self.lines[stream])):
                match = regex.search(self.lines[stream][index])
                if match:
                    found = (index, match)
                    return True
            return self.closed

        with self._cond:
            self._cond.wait_for(search, timeout=timeout)
            if found is None:
                tail = "\n".join(self.lines[stream][-30:])
                pytest.fail(f"no {stream} line matching {pattern!r} within {timeout}s; last lines:\n{tail}")
            return found

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)


@dataclass
class Service:
    proc: subprocess.Popen[bytes]
    port: int
    data_dir: Path
    output: OutputCapture
    clients: list[httpx.Client] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def db_path(self) -> Path:
        return self.data_dir / DB_FILENAME

    def client(self, user: str | None = None, **headers: str) -> httpx.Client:
        all_headers = {"x-dev-bypass": "1", "x-user-id": user} if user else {}
        all_headers.update({key.replace("_", "-"): value for key, value in headers.items()})
        client = httpx.Client(base_url=self.base_url, headers=all_headers, timeout=10, trust_env=False)
        self.clients.append(client)
        return client

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        """Read the service's SQLite file directly (WAL mode: safe while the service writes)."""
        with contextlib.closing(sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True)) as conn:
            return conn.execute(sql, params).fetchall()

    def stderr_lines_with(self, text: str) -> list[str]:
        return [line for line in self.output.snapshot("stderr") if text in line]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def service_env(port: int, data_dir: Path, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != "EMERGENCE_FAULTS"}
    env.update(
        PORT=str(port),
        HOST="127.0.0.1",
        EMERGENCE_DATA_DIR=str(data_dir),
        K_SERVICE="emergencev8-backend",
        K_REVISION="emergencev8-backend-00001-ref",
        K_CONFIGURATION="emergencev8-backend",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def wait_until_serving(service: Service, deadline: float, path: str = "/healthz") -> None:
    """Poll ``path`` until it answers 200, the process dies, or the deadline passes.

    ``/healthz`` (the default) is 200 only once the vector store is open; ``/api/health`` as soon as
    the process serves."""
    with httpx.Client(base_url=service.base_url, timeout=1, trust_env=False) as client:
        while True:
            if service.proc.poll() is not None:
                service.output.join(5)
                stderr = "\n".join(service.output.snapshot("stderr"))
                pytest.fail(f"service exited with {service.proc.returncode} before serving:\n{stderr}")
            with contextlib.suppress(httpx.TransportError):
                if client.get(path).status_code == 200:
                    return
            if time.monotonic() > deadline:
                pytest.fail(f"service not serving on {service.base_url} after {START_DEADLINE}s")
            time.sleep(0.02)  # poll interval, not synchronisation: the loop re-checks a real condition


def stop(service: Service, sig: int = signal.SIGTERM) -> int:
    for client in service.clients:
        client.close()
    if service.proc.poll() is None:
        service.proc.send_signal(sig)
    try:
        code = service.proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        service.proc.kill()
        code = service.proc.wait(timeout=5)
    service.output.join(5)
    return code


@contextlib.contextmanager
def running_service(data_dir: Path, *args: str, wait_path: str = "/healthz", **env: str) -> Iterator[Service]:
    service: Service | None = None
    for _attempt in range(3):  # a free port can be taken between choosing it and binding it
        port = free_port()
        proc = subprocess.Popen(
            [sys.executable, "-m", "emergence_reference", *args],
            env=service_env(port, data_dir, **env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        service = Service(proc, port, data_dir, OutputCapture(proc))
        try:
            wait_until_serving(service, time.monotonic() + START_DEADLINE, wait_path)
            break
        except pytest.fail.Exception:
            stop(service, signal.SIGKILL)
            if not any("address already in use" in line for line in service.output.snapshot("stderr")):
                raise
    assert service is not None
    try:
        yield service
    finally:
        stop(service)


# -- requests speaking the contract ------------------------------------------------------------


# -- helpers speaking the contract ------------------------------------------------------------------


def create_thread(client: httpx.Client, **body: Any) -> dict[str, Any]:
    response = client.post("/api/threads/", json={"type": "chat", **body})
    assert response.status_code == 201, response.text
    payload: dict[str, Any] = response.json()
    return payload


def add_messages(client: httpx.Client, thread_id: str, *messages: tuple[str, str]) -> None:
    for role, content in messages:
        response = client.post(f"/api/threads/{thread_id}/messages", json={"role": role, "content": content})
        assert response.status_code == 201, response.text


def archive(client: httpx.Client, thread_id: str) -> dict[str, Any]:
    response = client.patch(f"/api/threads/{thread_id}", json={"archived": True})
    assert response.status_code == 200, response.text
    thread: dict[str, Any] = response.json()["thread"]
    return thread


def enqueued(thread_id: str) -> str:
    return rf"\[Thread Archiving\] Consolidation enqueued for thread {thread_id}$"


def consolidating(thread_id: str) -> str:
    return rf"\[MemoryTaskQueue\] Consolidating archived thread {thread_id} \(reason: archiving\)$"


def consolidated(thread_id: str) -> str:
    return rf"\[MemoryTaskQueue\] Thread {thread_id} consolidated: (?P<n>\d+) new concepts$"


def archive_and_wait_consolidated(service: Service, client: httpx.Client, thread_id: str) -> int:
    """Archive, wait for the queue's result line, return the N it logged."""
    start = len(service.output.snapshot("stderr"))
    archive(client, thread_id)
    _, match = service.output.wait_for("stderr", consolidated(thread_id), start)
    return int(match["n"])


PREFERENCE = "I prefer dark mode and I want concise answers in French."
SAVED = r"(?P<n>\d+) items ajoutés/mis à jour dans 'memory_preferences'\.$"
VECTORISED = r"(?P<n>\d+) préférences/intentions vectorisées\.$"


def batch(client: httpx.Client, **body: Any) -> dict[str, Any]:
    response = client.post("/api/memory/consolidate-archived", json=body)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result
