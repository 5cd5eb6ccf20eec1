"""The reference service (``python -m emergence_reference``), run for real as a subprocess.

One process per module serves most tests; tests that need their own process (a fault, a cold start, a
shutdown) start one and always stop it. Waiting is event-driven with deadlines: on the service's output
lines (read by a background thread) or on an HTTP poll, never on a bare sleep.
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
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from emergence_reference.consolidation import extract_concepts
from emergence_reference.faults import REGISTRY, FaultSet, UnknownFaultError
from emergence_reference.store import DB_FILENAME

START_DEADLINE = 20.0
LOG_DEADLINE = 10.0
THREAD_KEYS = {
    "id",
    "session_id",
    "user_id",
    "type",
    "title",
    "agent_id",
    "meta",
    "archived",
    "archival_reason",
    "created_at",
    "updated_at",
    "consolidated_at",
}


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


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    with running_service(tmp_path_factory.mktemp("reference") / "data") as svc:
        yield svc


@pytest.fixture
def user() -> str:
    """A user of its own for each test, so concept counts per user start from zero."""
    return f"user-{uuid.uuid4().hex[:8]}"


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


# -- health and auth --------------------------------------------------------------------------------


def test_health_endpoints(service: Service) -> None:
    client = service.client()
    api_health = client.get("/api/health")
    assert api_health.status_code == 200
    assert api_health.json()["status"] == "ok"
    assert isinstance(api_health.json()["message"], str)
    assert client.get("/health").json() == {"status": "healthy", "metrics_enabled": False}
    healthz = client.get("/healthz")
    assert healthz.status_code == 200
    assert healthz.json() == {
        "ok": True,
        "status": "ready",
        "db": True,
        "embed": True,
        "vector": True,
        "di": True,
    }
    ready = client.get("/ready")
    assert (ready.status_code, ready.json()) == (200, {"ok": True})


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"x-dev-bypass": "1"},
        {"x-dev-bypass": "1", "x-user-id": ""},
        {"x-user-id": "alice"},
        {"authorization": "Bearer not-a-jwt"},
    ],
    ids=["no-auth", "bypass-without-user", "bypass-with-empty-user", "user-without-bypass", "bad-bearer"],
)
def test_refused_requests_get_401_with_json_detail(service: Service, headers: dict[str, str]) -> None:
    with httpx.Client(base_url=service.base_url, headers=headers, trust_env=False) as client:
        for response in (
            client.post("/api/threads/", json={"type": "chat"}),
            client.get(f"/api/threads/{uuid.uuid4().hex}"),
        ):
            assert response.status_code == 401, response.text
            assert response.headers["content-type"].startswith("application/json")
            assert isinstance(response.json()["detail"], str) and response.json()["detail"]


# -- threads and messages ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/threads/", "/api/threads"])
def test_create_thread(service: Service, user: str, path: str) -> None:
    client = service.client(user, x_session_id="session-1")
    response = client.post(path, json={"type": "debate", "title": "T", "agent_id": "anima", "meta": {"k": 1}})
    assert response.status_code == 201, response.text
    body = response.json()
    thread = body["thread"]
    assert body["id"] == thread["id"]
    assert uuid.UUID(hex=thread["id"]).version == 4 and thread["id"] == uuid.UUID(thread["id"]).hex
    assert set(thread) == THREAD_KEYS
    assert thread | {"id": None, "created_at": None, "updated_at": None} == {
        "id": None,
        "session_id": "session-1",
        "user_id": user,
        "type": "debate",
        "title": "T",
        "agent_id": "anima",
        "meta": {"k": 1},
        "archived": 0,
        "archival_reason": None,
        "created_at": None,
        "updated_at": None,
        "consolidated_at": None,
    }


@pytest.mark.parametrize("body", [{"type": "monologue"}, {"type": 3}, {"type": "chat", "meta": "x"}])
def test_create_thread_with_invalid_body_is_422(service: Service, user: str, body: dict[str, Any]) -> None:
    response = service.client(user).post("/api/threads/", json=body)
    assert response.status_code == 422, response.text
    assert "detail" in response.json()


def test_post_message_and_read_it_back(service: Service, user: str) -> None:
    client = service.client(user)
    thread_id = create_thread(client)["id"]
    response = client.post(
        f"/api/threads/{thread_id}/messages",
        json={"role": "user", "content": "Bonjour", "agent_id": "neo", "tokens": 3, "meta": {"a": True}},
    )
    assert response.status_code == 201, response.text
    created = response.json()
    assert set(created) == {"message_id", "created_at"}

    fetched = client.get(f"/api/threads/{thread_id}")
    assert fetched.status_code == 200
    body = fetched.json()
    assert set(body) == {"thread", "messages", "docs"} and body["docs"] == []
    assert body["thread"]["id"] == thread_id
    [message] = body["messages"]
    assert (message["id"], message["content"], message["role"], message["tokens"]) == (
        created["message_id"],
        "Bonjour",
        "user",
        3,
    )


def test_unknown_thread_is_404(service: Service, user: str) -> None:
    client = service.client(user)
    unknown = uuid.uuid4().hex
    for response in (
        client.get(f"/api/threads/{unknown}"),
        client.post(f"/api/threads/{unknown}/messages", json={"role": "user", "content": "x"}),
        client.patch(f"/api/threads/{unknown}", json={"archived": True}),
        client.delete(f"/api/threads/{unknown}"),
    ):
        assert response.status_code == 404, response.text
        assert isinstance(response.json()["detail"], str)


def test_another_users_thread_is_404(service: Service, user: str) -> None:
    owner = service.client(user)
    thread_id = create_thread(owner)["id"]
    intruder = service.client(f"{user}-other")
    for response in (
        intruder.get(f"/api/threads/{thread_id}"),
        intruder.post(f"/api/threads/{thread_id}/messages", json={"role": "user", "content": "x"}),
        intruder.patch(f"/api/threads/{thread_id}", json={"archived": True}),
        intruder.delete(f"/api/threads/{thread_id}"),
    ):
        assert response.status_code == 404, response.text
    thread = owner.get(f"/api/threads/{thread_id}").json()
    assert thread["thread"]["archived"] == 0 and thread["messages"] == []


def test_delete_is_soft(service: Service, user: str) -> None:
    client = service.client(user)
    thread_id = create_thread(client)["id"]
    response = client.delete(f"/api/threads/{thread_id}")
    assert response.status_code == 204 and response.content == b""
    after = client.get(f"/api/threads/{thread_id}")
    assert after.status_code == 200
    assert after.json()["thread"]["archived"] == 1
    assert after.json()["thread"]["archival_reason"] == "user_deleted"


def test_patch_edits_fields(service: Service, user: str) -> None:
    client = service.client(user)
    thread_id = create_thread(client, title="before")["id"]
    response = client.patch(f"/api/threads/{thread_id}", json={"title": "after", "meta": {"x": 2}})
    assert response.status_code == 200
    thread = response.json()["thread"]
    assert (thread["title"], thread["meta"], thread["archived"]) == ("after", {"x": 2}, 0)


# -- archive → consolidation ------------------------------------------------------------------------


def test_archive_logs_enqueue_consolidation_and_completion_in_order(service: Service, user: str) -> None:
    client = service.client(user)
    thread_id = create_thread(client)["id"]
    add_messages(client, thread_id, ("user", "Parlons de la migration Kubernetes du cluster"))
    start = len(service.output.snapshot("stderr"))

    thread = archive(client, thread_id)
    assert thread["archived"] == 1 and type(thread["archived"]) is int

    out = service.output
    first, _ = out.wait_for("stderr", r" INFO \[[\w.]+\] " + enqueued(thread_id), start)
    second, _ = out.wait_for("stderr", r" INFO \[[\w.]+\] " + consolidating(thread_id), start)
    third, match = out.wait_for("stderr", r" INFO \[[\w.]+\] " + consolidated(thread_id), start)
    fourth, _ = out.wait_for("stderr", r"Worker \d+ completed consolidate_thread in \d+\.\d+s$", third)
    assert first < second < third < fourth
    [(stored,)] = service.query("SELECT COUNT(*) FROM concepts WHERE origin_thread_id = ?", thread_id)
    assert int(match["n"]) == stored == 4  # parlons, migration, kubernetes, cluster

    after = client.get(f"/api/threads/{thread_id}").json()["thread"]
    assert after["archived"] == 1
    assert after["consolidated_at"] is not None
    assert not service.stderr_lines_with("failed")


def test_archiving_an_archived_thread_enqueues_nothing(service: Service, user: str) -> None:
    client = service.client(user)
    thread_id = create_thread(client)["id"]
    add_messages(client, thread_id, ("user", "Observabilité des déploiements"))
    archive_and_wait_consolidated(service, client, thread_id)

    again = archive(client, thread_id)
    assert again["archived"] == 1
    # Marker: the enqueue line is written before the PATCH answers, so once a later archive's enqueue
    # line is on stderr, a second one for this thread would be there already.
    marker = create_thread(client)["id"]
    start = len(service.output.snapshot("stderr"))
    archive(client, marker)
    service.output.wait_for("stderr", enqueued(marker), start)
    assert len(service.stderr_lines_with(f"Consolidation enqueued for thread {thread_id}")) == 1
    assert len(service.stderr_lines_with(f"Consolidating archived thread {thread_id}")) == 1


def test_logged_new_concepts_equal_rows_stored(service: Service, user: str) -> None:
    client = service.client(user)

    rich = create_thread(client)["id"]
    add_messages(
        client,
        rich,
        ("user", "Je préfère l'architecture événementielle avec Kubernetes. Merci!"),
        ("assistant", "D'accord : architecture événementielle, Kubernetes et observabilité."),
        ("system", "instructions confidentielles"),  # only user and assistant text counts
    )
    n_rich = archive_and_wait_consolidated(service, client, rich)
    stored = {
        text
        for (text,) in service.query("SELECT concept_text FROM concepts WHERE origin_thread_id = ?", rich)
    }
    assert n_rich == len(stored) == 5
    assert stored == {"préfère", "architecture", "événementielle", "kubernetes", "observabilité"}
    assert client.get(f"/api/threads/{rich}").json()["thread"]["consolidated_at"] is not None

    empty = create_thread(client)["id"]
    add_messages(client, empty, ("user", "ok merci"), ("assistant", "yes, thanks!"), ("user", "ok"))
    n_empty = archive_and_wait_consolidated(service, client, empty)
    [(rows_empty,)] = service.query("SELECT COUNT(*) FROM concepts WHERE origin_thread_id = ?", empty)
    assert n_empty == rows_empty == 0
    assert client.get(f"/api/threads/{empty}").json()["thread"]["consolidated_at"] is None

    # A concept the user already has is linked and counted again, but is not new.
    overlap = create_thread(client)["id"]
    add_messages(client, overlap, ("user", "Kubernetes encore, et maintenant Terraform et Ansible"))
    n_overlap = archive_and_wait_consolidated(service, client, overlap)
    new_rows = service.query("SELECT concept_text FROM concepts WHERE origin_thread_id = ?", overlap)
    assert n_overlap == len(new_rows) == 2
    assert {text for (text,) in new_rows} == {"terraform", "ansible"}
    [(mentions, threads)] = service.query(
        "SELECT c.mention_count, group_concat(l.thread_id) FROM concepts c"
        " JOIN concept_threads l ON l.concept_id = c.id WHERE c.user_id = ? AND c.concept_text = 'kubernetes'",
        user,
    )
    assert mentions == 2 and set(threads.split(",")) == {rich, overlap}
    [(user_total,)] = service.query("SELECT COUNT(*) FROM concepts WHERE user_id = ?", user)
    assert user_total == n_rich + n_empty + n_overlap


# -- process-level behaviour: faults, start-up, shutdown --------------------------------------------


def test_fault_archive_no_enqueue(tmp_path: Path, user: str) -> None:
    with running_service(tmp_path / "data", EMERGENCE_FAULTS="archive-no-enqueue") as svc:
        svc.output.wait_for("stderr", r"faults=archive-no-enqueue\)")
        client = svc.client(user)
        thread_id = create_thread(client)["id"]
        add_messages(client, thread_id, ("user", "Migration Kubernetes du cluster"))

        thread = archive(client, thread_id)
        assert thread["archived"] == 1

        # Marker: a later request's access line; stderr lines written before it are already captured.
        probe = uuid.uuid4().hex
        assert client.get("/api/health", params={"probe": probe}).status_code == 200
        svc.output.wait_for("stdout", rf'"GET /api/health\?probe={probe} HTTP/1.1" 200')
        assert not svc.stderr_lines_with(thread_id)
        assert not svc.stderr_lines_with("[Thread Archiving]")
        assert client.get(f"/api/threads/{thread_id}").json()["thread"]["consolidated_at"] is None
        assert svc.query("SELECT COUNT(*) FROM concepts") == [(0,)]


@pytest.mark.parametrize(
    ("args", "env"),
    [(["--fault", "no-such-fault"], {}), (["--fault", "archive-no-enqueue"], {"EMERGENCE_FAULTS": "bogus"})],
    ids=["flag", "env-merged-with-flag"],
)
def test_unknown_fault_exits_2_with_one_line(tmp_path: Path, args: list[str], env: dict[str, str]) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "emergence_reference", *args],
        env=service_env(free_port(), tmp_path / "data", **env),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "unknown fault" in lines[0]
    assert all(name in lines[0] for name in REGISTRY)
    assert not (tmp_path / "data").exists()  # refused before touching the disk


@pytest.mark.parametrize("workers", ["0", "two"])
def test_a_bad_worker_count_exits_2_before_touching_the_disk(tmp_path: Path, workers: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "emergence_reference", "--workers", workers],
        env=service_env(free_port(), tmp_path / "data"),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2
    assert "argument --workers: " in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "data").exists()


def test_cold_start_with_empty_data_dir_is_ready_quickly(tmp_path: Path) -> None:
    data_dir = tmp_path / "fresh" / "data"  # does not exist yet
    started = time.monotonic()
    with (
        running_service(data_dir, wait_path="/api/health") as svc,
        httpx.Client(base_url=svc.base_url, trust_env=False) as client,
    ):
        while (status := client.get("/healthz").status_code) != 200:
            assert status == 503 and time.monotonic() - started < 10
        elapsed = time.monotonic() - started
        print(f"\nreference service: /healthz 200 {elapsed:.2f}s after spawn (empty data dir)")
        assert elapsed < 10
        assert (data_dir / DB_FILENAME).is_file()


def test_sigterm_stops_workers_closes_db_and_exits_0(tmp_path: Path) -> None:
    with running_service(tmp_path / "data") as svc:
        code = stop(svc)
        stderr = svc.output.snapshot("stderr")
    assert code == 0, "\n".join(stderr)
    assert any("[MemoryTaskQueue] Stopped 2 workers" in line for line in stderr)
    assert any("Store closed" in line for line in stderr)
    assert stderr[-1].endswith(f"Finished server process [{svc.proc.pid}]")


# -- pure parts, in process -------------------------------------------------------------------------


def test_concept_extraction_is_lexical_and_deterministic() -> None:
    texts = ["L'Écologie urbaine, l'écologie!", "Thanks, great: 42 cafés—résilience_urbaine"]
    assert extract_concepts(texts) == ["écologie", "urbaine", "cafés", "résilience"]
    assert extract_concepts(["ok merci", "yes", "Bonjour, s'il vous plaît"]) == []


def test_fault_registry() -> None:
    assert "archive-no-enqueue" in REGISTRY
    assert all(description and "\n" not in description for description in REGISTRY.values())
    faults = FaultSet.from_names(["archive-no-enqueue"])
    assert faults.on("archive-no-enqueue") and not FaultSet().on("archive-no-enqueue")
    with pytest.raises(KeyError):
        faults.on("typo-fault")
    with pytest.raises(UnknownFaultError):
        FaultSet.from_names(["typo-fault"])
