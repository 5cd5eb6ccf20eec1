"""The reference service's memory endpoints, auth and ChromaDB persistence, over HTTP against a real process.

One service process serves the module; the persistence test starts its own to restart it.
"""

from __future__ import annotations

import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from emergence_reference.embedding import HashedBagOfWords
from emergence_reference.preferences import COLLECTION, document_id, extract_preferences
from emergence_reference.vectors import CHROMA_DIRNAME
from helpers.reference import (
    PREFERENCE,
    SAVED,
    VECTORISED,
    Service,
    add_messages,
    archive,
    archive_and_wait_consolidated,
    batch,
    create_thread,
    running_service,
)


def chroma_documents(data_dir: Path, where: dict[str, Any] | None = None) -> dict[str, Any]:
    """Read ``memory_preferences`` straight from the service's ChromaDB directory (service stopped)."""
    import chromadb
    from chromadb.config import Settings

    client = chromadb.PersistentClient(
        path=str(data_dir / CHROMA_DIRNAME), settings=Settings(anonymized_telemetry=False)
    )
    collection = client.get_collection(COLLECTION, embedding_function=HashedBagOfWords())
    found: dict[str, Any] = collection.get(where=where)
    return found


# -- batch consolidation -----------------------------------------------------------------------------


def test_batch_counts_force_and_limit(service: Service, user: str) -> None:
    client = service.client(user)
    ids = []
    for topic in ("Kubernetes cluster", "Terraform modules", "Ansible playbooks"):
        thread_id = create_thread(client)["id"]
        add_messages(client, thread_id, ("user", f"Parlons de {topic}"))
        archive_and_wait_consolidated(service, client, thread_id)
        ids.append(thread_id)
    create_thread(client)  # not archived: out of scope

    unforced = batch(client)
    assert unforced == {
        "status": "success",
        "consolidated_count": 0,
        "skipped_count": 3,
        "total_archived": 3,
        "errors": [],
    }
    start = len(service.output.snapshot("stderr"))
    forced = batch(client, force=True, limit=2)
    assert (forced["consolidated_count"], forced["skipped_count"], forced["total_archived"]) == (2, 0, 2)
    service.output.wait_for(
        "stderr", r"\[consolidate_archived\] Processing 2 archived threads \(force=True\)$", start
    )
    service.output.wait_for(
        "stderr", r"\[consolidate_archived\] Batch completed: 2 consolidated, 0 skipped, 0 errors$", start
    )
    lines = [
        line for line in service.output.snapshot("stderr")[start:] if "[consolidate_archived] Thread" in line
    ]
    assert len(lines) == 2 and all(line.endswith("consolidated: 0 concepts") for line in lines)
    # Another user's archived threads are not the caller's.
    assert batch(service.client(f"{user}-b"), force=True)["total_archived"] == 0


def test_archived_list(service: Service, user: str) -> None:
    client = service.client(user)
    kept = create_thread(client, title="kept")["id"]
    archived_ids = [create_thread(client, title=f"a{i}")["id"] for i in range(3)]
    for thread_id in archived_ids:
        archive(client, thread_id)
    items = client.get("/api/threads/archived/list").json()["items"]
    assert {item["id"] for item in items} == set(archived_ids) and kept not in {i["id"] for i in items}
    page = client.get("/api/threads/archived/list", params={"limit": 2, "offset": 2}).json()["items"]
    assert len(page) == 1 and all(item["archived"] == 1 for item in items)


# -- tend-garden, stats, search ----------------------------------------------------------------------


def test_tend_garden_targets_the_thread_and_keeps_a_history(service: Service, user: str) -> None:
    client = service.client(user)
    thread_id = create_thread(client)["id"]
    add_messages(client, thread_id, ("user", "Observabilité avec Prometheus et Grafana"))
    report = client.post("/api/memory/tend-garden", json={"thread_id": thread_id})
    assert report.status_code == 200, report.text
    body = report.json()
    assert (body["status"], body["consolidated_sessions"], body["new_concepts"]) == ("success", 1, 3)
    assert client.get(f"/api/threads/{thread_id}").json()["thread"]["consolidated_at"] is not None

    noop = service.client(user, x_session_id="not-a-thread").post("/api/memory/tend-garden", json={})
    assert noop.status_code == 200 and noop.json()["message"] == "Aucune session à traiter."
    quirk = client.post("/api/memory/tend-garden", json={})  # public code: 500 for a user with active threads
    assert quirk.status_code == 500 and isinstance(quirk.json()["detail"], str)
    unknown = client.post("/api/memory/tend-garden", json={"thread_id": uuid.uuid4().hex})
    assert unknown.status_code == 404

    history = client.get("/api/memory/tend-garden", params={"limit": 5}).json()["history"]
    assert [h["consolidated_sessions"] for h in history] == [0, 1]


def test_stats_show_concepts_but_not_preferences(service: Service, user: str) -> None:
    client = service.client(user)
    thread_id = create_thread(client)["id"]
    add_messages(client, thread_id, ("user", PREFERENCE))
    start = len(service.output.snapshot("stderr"))
    archive(client, thread_id)
    service.output.wait_for("stderr", VECTORISED, start)
    stats = client.get("/api/memory/user/stats").json()
    assert stats["preferences"] == {"total": 0, "top": [], "by_type": {}}
    assert stats["concepts"]["total"] >= 3
    assert stats["stats"] == {"sessions_analyzed": 1, "threads_archived": 1}


def test_searches_are_scoped_to_the_caller(service: Service, user: str) -> None:
    marker = f"marker{uuid.uuid4().hex[:10]}"
    owner = service.client(user)
    thread_id = create_thread(owner, title=f"notes {marker}")["id"]
    add_messages(owner, thread_id, ("user", f"Private {marker} about Kubernetes"))
    mine = owner.get("/api/memory/search", params={"q": marker}).json()
    assert mine["count"] == 1 and marker in mine["results"][0]["content"]
    other = service.client(f"{user}-other")
    assert other.get("/api/memory/search", params={"q": marker}).json()["results"] == []
    assert owner.get("/api/memory/search", params={"q": "ab"}).status_code == 422

    unified = owner.get("/api/memory/search/unified", params={"q": marker}).json()
    assert set(unified) == {"stm_summaries", "ltm_concepts", "threads", "messages", "total_results"}
    assert (len(unified["threads"]), len(unified["messages"]), unified["total_results"]) == (1, 1, 2)
    assert other.get("/api/memory/search/unified", params={"q": marker}).json()["total_results"] == 0

    archive_and_wait_consolidated(service, owner, thread_id)
    concepts = owner.get("/api/memory/concepts/search", params={"q": "kubernetes"}).json()
    [hit] = concepts["results"]
    assert hit["concept_text"] == "kubernetes" and hit["thread_ids"] == [thread_id]
    assert hit["similarity_score"] >= 0.6
    assert other.get("/api/memory/concepts/search", params={"q": "kubernetes"}).json()["results"] == []


# -- auth --------------------------------------------------------------------------------------------


def test_login_token_authenticates_and_bad_credentials_are_401(tmp_path: Path) -> None:
    allow = "smoke@example.com:s3cret-pw"
    with running_service(tmp_path / "data", AUTH_ALLOWLIST=allow, AUTH_DEV_BYPASS="0") as svc:
        anonymous = svc.client()
        refused = anonymous.post("/api/auth/login", json={"email": "smoke@example.com", "password": "nope"})
        assert refused.status_code == 401 and refused.json()["detail"]
        assert "s3cret-pw" not in "\n".join(svc.output.snapshot("stderr"))
        login = anonymous.post(
            "/api/auth/login", json={"email": "Smoke@example.com", "password": "s3cret-pw"}
        )
        assert login.status_code == 200, login.text
        token = login.json()["token"]
        bearer = svc.client(authorization=f"Bearer {token}")
        created = bearer.post("/api/threads/", json={"type": "chat"})
        assert created.status_code == 201 and created.json()["thread"]["user_id"] == login.json()["user_id"]
        tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
        assert (
            svc.client(authorization=f"Bearer {tampered}").get("/api/threads/archived/list").status_code
            == 401
        )
        # AUTH_DEV_BYPASS=0: the environment forbids the bypass.
        bypass = svc.client("someone").get("/api/threads/archived/list")
        assert bypass.status_code == 401 and "disabled" in bypass.json()["detail"]


# -- preferences in ChromaDB -------------------------------------------------------------------------


def test_preferences_persist_in_chroma_survive_a_restart_dedup_and_clear(tmp_path: Path, user: str) -> None:
    data_dir = tmp_path / "data"
    expected = {document_id(user, p.type, p.text) for p in extract_preferences([PREFERENCE])}
    assert (
        len(expected) == 2
    )  # "I prefer dark mode" (preference), "I want concise answers in French" (intent)
    with running_service(data_dir) as svc:
        client = svc.client(user, x_session_id="s-1")
        thread_id = create_thread(client)["id"]
        add_messages(client, thread_id, ("user", PREFERENCE))
        start = len(svc.output.snapshot("stderr"))
        archive(client, thread_id)
        index, saved = svc.output.wait_for("stderr", SAVED, start)
        _, vectorised = svc.output.wait_for("stderr", VECTORISED, index)
        assert int(saved["n"]) == int(vectorised["n"]) == 2
        svc.output.wait_for("stderr", rf"Thread {thread_id} consolidated: \d+ new concepts$", start)
    stored = chroma_documents(data_dir, {"user_id": user})
    assert set(stored["ids"]) == expected
    assert {m["type"] for m in stored["metadatas"]} == {"preference", "intent"}
    assert all(m["thread_id"] == thread_id and m["count"] == 1 for m in stored["metadatas"])

    with running_service(data_dir, "--fault", "preferences-in-stats") as svc:
        client = svc.client(user)
        assert (
            client.get("/api/memory/user/stats").json()["preferences"]["total"] == 2
        )  # survived the restart
        again = client.post("/api/memory/tend-garden", json={"thread_id": thread_id})
        assert again.status_code == 200 and again.json()["new_preferences"] == 2
        prefs = client.get("/api/memory/user/stats").json()["preferences"]
        assert prefs["total"] == 2 and {t["count"] for t in prefs["top"]} == {2}  # bumped, not duplicated
        other = svc.client(f"{user}-other")
        other_thread = create_thread(other)["id"]
        add_messages(other, other_thread, ("user", PREFERENCE))
        assert other.post("/api/memory/tend-garden", json={"thread_id": other_thread}).status_code == 200

        cleared = client.delete("/api/memory/clear")
        assert cleared.status_code == 200 and cleared.json()["deleted"]["preferences"] == 2
        assert client.get("/api/memory/user/stats").json()["preferences"]["total"] == 0
        assert other.get("/api/memory/user/stats").json()["preferences"]["total"] == 2
    assert chroma_documents(data_dir, {"user_id": user})["ids"] == []
    assert len(chroma_documents(data_dir, {"user_id": f"{user}-other"})["ids"]) == 2


def test_vector_store_makes_no_network_call_and_downloads_nothing(tmp_path: Path) -> None:
    """Open, write and read ``memory_preferences`` under an audit hook that records every socket use."""
    import asyncio

    from emergence_reference.faults import FaultSet
    from emergence_reference.preference_store import PreferenceStore
    from emergence_reference.vectors import VectorStore

    events: list[tuple[str, Any]] = []
    recording = True

    def hook(event: str, args: Any) -> None:
        if recording and event in ("socket.connect", "socket.getaddrinfo", "urllib.Request"):
            events.append((event, args))

    sys.addaudithook(hook)
    home = tmp_path / "home"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HOME", str(home))
        store = VectorStore(tmp_path / "data")
        asyncio.run(store.open([COLLECTION]))
        assert store.ready, store.error
        prefs = PreferenceStore(store, FaultSet())
        assert prefs.save("u1", extract_preferences([PREFERENCE]), thread_id="t1", session_id=None) == 2
        assert prefs.summary("u1")["total"] == 2
        store.close()
    recording = False
    assert events == []
    assert not home.exists() or not any(home.rglob("*")), "something was cached under $HOME"
