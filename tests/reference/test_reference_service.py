"""The reference service (``python -m emergence_reference``), run for real as a subprocess.

One process per module serves most tests; tests that need their own process (a fault, a cold start, a
shutdown) start one and always stop it. Waiting is event-driven with deadlines: on the service's output
lines (read by a background thread) or on an HTTP poll, never on a bare sleep.
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from emergence_reference.consolidation import extract_concepts
from emergence_reference.faults import REGISTRY, FaultSet, UnknownFaultError
from emergence_reference.store import DB_FILENAME
from helpers.reference import (
    Service,
    add_messages,
    archive,
    archive_and_wait_consolidated,
    consolidated,
    consolidating,
    create_thread,
    enqueued,
    free_port,
    running_service,
    service_env,
    stop,
)

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
