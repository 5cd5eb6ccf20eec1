"""Every fault switch and correct variant of the reference service, shown at the HTTP or log level.

Each test runs a real service process with its switch(es); switches that cannot interfere share one.
Absence of a line is asserted only once the process has stopped (all its output is then captured) or
after a later line that the same code path writes after it.
"""

from __future__ import annotations

import json
import re
import signal
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from emergence_reference.faults import REGISTRY, SWITCHES, FaultSet, UnknownFaultError
from helpers.reference import (
    PREFERENCE,
    VECTORISED,
    Service,
    add_messages,
    archive,
    batch,
    consolidated,
    consolidating,
    create_thread,
    enqueued,
    running_service,
    stop,
)

ERROR_CONSOLIDATION = r" ERROR \[[\w.]+\] Erreur consolidation thread {}: "


def stamp(line: str) -> datetime:
    return datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f")


@pytest.fixture(scope="module")
def combo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """Switches that touch separate routes: one process for all of them."""
    switches = "search-leaks,tend-garden-500,batch-missing-field,dev-bypass-accepted,archived-bool,hard-delete,health-ok"
    with running_service(
        tmp_path_factory.mktemp("combo") / "data", EMERGENCE_FAULTS=switches, AUTH_DEV_BYPASS="0"
    ) as svc:
        yield svc


# -- switches sharing one process ----------------------------------------------------------------------


def test_search_leaks_other_users_messages(combo: Service, user: str) -> None:
    marker = f"leak{uuid.uuid4().hex[:10]}"
    owner = combo.client(user)
    add_messages(owner, create_thread(owner)["id"], ("user", f"secret {marker}"))
    leaked = combo.client(f"{user}-other").get("/api/memory/search", params={"q": marker}).json()["results"]
    assert [r["user_id"] for r in leaked] == [user]


def test_tend_garden_500(combo: Service, user: str) -> None:
    client = combo.client(user)
    thread_id = create_thread(client)["id"]
    response = client.post("/api/memory/tend-garden", json={"thread_id": thread_id})
    assert response.status_code == 500 and isinstance(response.json()["detail"], str)


def test_batch_missing_field(combo: Service, user: str) -> None:
    body = batch(combo.client(user), force=True)
    assert "skipped_count" not in body and {
        "status",
        "consolidated_count",
        "total_archived",
        "errors",
    } <= set(body)


def test_dev_bypass_accepted_although_forbidden(combo: Service, user: str) -> None:
    response = combo.client(user).get("/api/threads/archived/list")
    assert response.status_code == 200, "AUTH_DEV_BYPASS=0 but the bypass must still work under the fault"


def test_variant_archived_bool_and_hard_delete(combo: Service, user: str) -> None:
    client = combo.client(user)
    created = create_thread(client)["thread"]
    assert created["archived"] is False
    thread = archive(client, created["id"])
    assert thread["archived"] is True
    assert client.get("/api/threads/archived/list").json()["items"][0]["archived"] is True
    assert client.delete(f"/api/threads/{created['id']}").status_code == 204
    after = client.get(f"/api/threads/{created['id']}")
    assert after.status_code == 404 and after.json()["detail"]
    assert client.delete(f"/api/threads/{created['id']}").status_code == 404


def test_variant_health_ok(combo: Service) -> None:
    assert combo.client().get("/health").json() == {"status": "ok"}


# -- the archive hook and the queue --------------------------------------------------------------------


def test_archive_ignored_answers_200_and_leaves_the_thread_unarchived(tmp_path: Path, user: str) -> None:
    with running_service(tmp_path / "data", "--fault", "archive-ignored") as svc:
        client = svc.client(user)
        thread_id = create_thread(client)["id"]
        assert archive(client, thread_id)["archived"] == 0
        assert client.get(f"/api/threads/{thread_id}").json()["thread"]["archived"] == 0
    assert not svc.stderr_lines_with(f"Consolidation enqueued for thread {thread_id}")


def test_enqueue_fails_logs_the_warning_and_answers_200(tmp_path: Path, user: str) -> None:
    with running_service(tmp_path / "data", "--fault", "enqueue-fails") as svc:
        client = svc.client(user)
        thread_id = create_thread(client)["id"]
        start = len(svc.output.snapshot("stderr"))
        assert archive(client, thread_id)["archived"] == 1
        svc.output.wait_for(
            "stderr", r" WARNING \[[\w.]+\] \[Thread Archiving\] Failed to enqueue consolidation: .+", start
        )
    assert not svc.stderr_lines_with(f"Consolidation enqueued for thread {thread_id}")
    assert not svc.stderr_lines_with(f"Consolidating archived thread {thread_id}")


def test_consolidation_hangs(tmp_path: Path, user: str) -> None:
    with running_service(tmp_path / "data", "--fault", "consolidation-hangs") as svc:
        client = svc.client(user)
        threads = [create_thread(client)["id"] for _ in range(3)]
        for thread_id in threads:
            add_messages(client, thread_id, ("user", "Migration Kubernetes"))
            archive(client, thread_id)
        for thread_id in threads[:2]:  # two workers start a consolidation each and never finish it
            svc.output.wait_for("stderr", consolidating(thread_id))
        assert all(
            client.get(f"/api/threads/{t}").json()["thread"]["consolidated_at"] is None for t in threads
        )
    assert not [
        line for line in svc.output.snapshot("stderr") if re.search(r"consolidated: \d+ new concepts", line)
    ]
    assert svc.stderr_lines_with("[MemoryTaskQueue] Stopped 2 workers, 1 pending tasks dropped")


def test_consolidation_wrong_thread(tmp_path: Path, user: str) -> None:
    with running_service(tmp_path / "data", "--fault", "consolidation-wrong-thread") as svc:
        client = svc.client(user)
        thread_id, start = archive_new_thread(svc, client, "Migration Kubernetes")
        _, match = svc.output.wait_for("stderr", consolidated(r"(?P<other>[0-9a-f]{32})"), start)
        assert match["other"] != thread_id
        assert int(match["n"]) == 2
        assert client.get(f"/api/threads/{thread_id}").json()["thread"]["consolidated_at"] is not None
        assert [line for line in svc.output.snapshot("stderr") if thread_id in line] == [
            line for line in svc.output.snapshot("stderr") if re.search(enqueued(thread_id), line)
        ]


def test_consolidated_at_missing(tmp_path: Path, user: str) -> None:
    with running_service(tmp_path / "data", "--fault", "consolidated-at-missing") as svc:
        client = svc.client(user)
        thread_id, start = archive_new_thread(svc, client, "Migration Kubernetes")
        _, match = svc.output.wait_for("stderr", consolidated(thread_id), start)
        [(stored,)] = svc.query("SELECT COUNT(*) FROM concepts WHERE origin_thread_id = ?", thread_id)
        assert int(match["n"]) == stored == 2
        assert client.get(f"/api/threads/{thread_id}").json()["thread"]["consolidated_at"] is None
        body = batch(client)  # nothing marks the thread: a batch without force consolidates it again
        assert (body["consolidated_count"], body["skipped_count"]) == (1, 0)


def test_rearchive_enqueues_a_second_consolidation(tmp_path: Path, user: str) -> None:
    with running_service(tmp_path / "data", "--fault", "rearchive-enqueues") as svc:
        client = svc.client(user)
        thread_id, start = archive_new_thread(svc, client, "Migration Kubernetes")
        first, match = svc.output.wait_for("stderr", consolidated(thread_id), start)
        assert int(match["n"]) == 2
        assert archive(client, thread_id)["archived"] == 1  # already archived
        _, again = svc.output.wait_for("stderr", consolidated(thread_id), first + 1)
        assert int(again["n"]) == 0  # the second consolidation finds nothing new
        assert len(svc.stderr_lines_with(f"Consolidation enqueued for thread {thread_id}")) == 2
        assert len(svc.stderr_lines_with(f"Consolidating archived thread {thread_id}")) == 2


def test_llm_unreachable(tmp_path: Path, user: str) -> None:
    with running_service(tmp_path / "data", "--fault", "llm-unreachable") as svc:
        client = svc.client(user)
        thread_id, start = archive_new_thread(svc, client, "Migration Kubernetes du cluster")
        error, _ = svc.output.wait_for(
            "stderr", ERROR_CONSOLIDATION.format(thread_id) + r"Connection error", start
        )
        done, match = svc.output.wait_for("stderr", consolidated(thread_id), start)
        assert error < done and int(match["n"]) == 0
        assert len([line for line in svc.output.snapshot("stderr")[start:] if " ERROR " in line]) >= 2
        body = batch(client, force=True)
        assert (body["status"], body["consolidated_count"], body["skipped_count"], body["errors"]) == (
            "success",
            0,
            1,
            [],
        )
        garden = client.post("/api/memory/tend-garden", json={"thread_id": thread_id})
        assert garden.status_code == 500 and "Connection error" in garden.json()["detail"]
        assert client.get(f"/api/threads/{thread_id}").json()["thread"]["consolidated_at"] is None


def test_archive_slow(tmp_path: Path, user: str) -> None:
    with running_service(tmp_path / "data", "--fault", "archive-slow=400") as svc:
        client = svc.client(user)
        thread_id = create_thread(client)["id"]
        started = time.monotonic()
        client.patch(f"/api/threads/{thread_id}", json={"title": "rename"})
        plain = time.monotonic() - started
        started = time.monotonic()
        archive(client, thread_id)
        slow = time.monotonic() - started
        assert slow >= 0.4 > plain, (slow, plain)


def test_queue_slow(tmp_path: Path, user: str) -> None:
    with running_service(tmp_path / "data", "--fault", "queue-slow=1.5") as svc:
        client = svc.client(user)
        thread_id = create_thread(client)["id"]
        start = len(svc.output.snapshot("stderr"))
        archive(client, thread_id)
        first, _ = svc.output.wait_for("stderr", enqueued(thread_id), start)
        last, _ = svc.output.wait_for("stderr", consolidated(thread_id), start)
        lines = svc.output.snapshot("stderr")
        assert (stamp(lines[last]) - stamp(lines[first])).total_seconds() >= 1.5


def test_variant_llm_latency(tmp_path: Path, user: str) -> None:
    """The consolidation's wait is after its 'Consolidating' line: work done after the response."""
    with running_service(tmp_path / "data", "--fault", "llm-latency=1.5") as svc:
        client = svc.client(user)
        thread_id = create_thread(client)["id"]
        start = len(svc.output.snapshot("stderr"))
        archive(client, thread_id)
        first, _ = svc.output.wait_for("stderr", f"Consolidating archived thread {thread_id}", start)
        last, _ = svc.output.wait_for("stderr", consolidated(thread_id), start)
        lines = svc.output.snapshot("stderr")
        assert (stamp(lines[last]) - stamp(lines[first])).total_seconds() >= 1.5


# -- the batch -----------------------------------------------------------------------------------------


def archive_new_thread(svc: Service, client: httpx.Client, text: str) -> tuple[str, int]:
    """A new thread with one user message, archived; and where the service's stderr stood just before
    the archive, for the lines it set off."""
    thread_id = str(create_thread(client)["id"])
    add_messages(client, thread_id, ("user", text))
    start = len(svc.output.snapshot("stderr"))
    archive(client, thread_id)
    return thread_id, start


def archived_threads(svc: Service, user: str, count: int) -> list[str]:
    client = svc.client(user)
    ids = []
    for i in range(count):
        thread_id, start = archive_new_thread(svc, client, f"Kubernetes numéro {i} observabilité")
        svc.output.wait_for("stderr", consolidated(thread_id), start)
        ids.append(thread_id)
    return ids


def test_batch_counts_off(tmp_path: Path, user: str) -> None:
    with running_service(tmp_path / "data", "--fault", "batch-counts-off") as svc:
        archived_threads(svc, user, 2)
        body = batch(svc.client(user))
        assert body["consolidated_count"] + body["skipped_count"] + len(body["errors"]) == 2
        assert body["total_archived"] == 3


def test_batch_ignores_limit(tmp_path: Path, user: str) -> None:
    with running_service(tmp_path / "data", "--fault", "batch-ignores-limit") as svc:
        archived_threads(svc, user, 3)
        body = batch(svc.client(user), limit=1, force=True)
        assert (body["consolidated_count"], body["total_archived"]) == (3, 3)


def test_batch_reconsolidates_without_force(tmp_path: Path, user: str) -> None:
    with running_service(tmp_path / "data", "--fault", "batch-reconsolidates") as svc:
        archived_threads(svc, user, 2)
        body = batch(svc.client(user))
        assert (body["consolidated_count"], body["skipped_count"]) == (2, 0)


def test_batch_log_disagrees(tmp_path: Path, user: str) -> None:
    with running_service(tmp_path / "data", "--fault", "batch-log-disagrees") as svc:
        archived_threads(svc, user, 2)
        start = len(svc.output.snapshot("stderr"))
        body = batch(svc.client(user), force=True)
        assert (body["consolidated_count"], body["skipped_count"], body["errors"]) == (2, 0, [])
        assert body["total_archived"] == 2
        line = r"\[consolidate_archived\] Batch completed: 3 consolidated, 0 skipped, 0 errors$"
        svc.output.wait_for("stderr", line, start)  # written before the response


def test_memory_forgets(tmp_path: Path, user: str) -> None:
    with running_service(tmp_path / "data", "--fault", "memory-forgets") as svc:
        client = svc.client(user)
        thread_id, start = archive_new_thread(svc, client, "Migration Kubernetes")
        _, match = svc.output.wait_for("stderr", consolidated(thread_id), start)
        assert int(match["n"]) == 2
        assert client.get("/api/memory/user/stats").json()["concepts"]["total"] == 2  # stored
        for q in ("kubernetes", "migration"):
            found = client.get("/api/memory/concepts/search", params={"q": q}).json()
            assert (found["results"], found["count"]) == ([], 0), q
        unified = client.get("/api/memory/search/unified", params={"q": "kubernetes"}).json()
        assert unified["ltm_concepts"] == [] and unified["messages"]  # the messages are still there


# -- preferences ---------------------------------------------------------------------------------------


def archive_preference(svc: Service, client: httpx.Client) -> str:
    thread_id, start = archive_new_thread(svc, client, PREFERENCE)
    svc.output.wait_for("stderr", consolidated(thread_id), start)
    return thread_id


def test_preferences_upsert_fails(tmp_path: Path, user: str) -> None:
    with running_service(tmp_path / "data", "--fault", "preferences-upsert-fails") as svc:
        client = svc.client(user)
        start = len(svc.output.snapshot("stderr"))
        thread_id = archive_preference(svc, client)
        svc.output.wait_for(
            "stderr",
            r" ERROR \[[\w.]+\] Vectorisation préférences impossible: Expected IDs to be unique",
            start,
        )
        _, match = svc.output.wait_for("stderr", consolidated(thread_id), start)
        assert int(match["n"]) >= 1
        assert client.get(f"/api/threads/{thread_id}").json()["thread"]["consolidated_at"] is not None
        assert not svc.stderr_lines_with("préférences/intentions vectorisées")


def test_preferences_not_persisted(tmp_path: Path, user: str) -> None:
    with running_service(
        tmp_path / "data", "--fault", "preferences-not-persisted", "--fault", "preferences-in-stats"
    ) as svc:
        client = svc.client(user)
        archive_preference(svc, client)  # the save lines would precede the queue's result line
        assert not svc.stderr_lines_with("ajoutés/mis à jour dans 'memory_preferences'")
        assert not svc.stderr_lines_with("vectorisées")
        assert client.get("/api/memory/user/stats").json()["preferences"]["total"] == 0


def test_preferences_no_dedup(tmp_path: Path, user: str) -> None:
    with running_service(
        tmp_path / "data", "--fault", "preferences-no-dedup", "--fault", "preferences-in-stats"
    ) as svc:
        client = svc.client(user)
        thread_id = archive_preference(svc, client)
        assert client.get("/api/memory/user/stats").json()["preferences"]["total"] == 2
        assert client.post("/api/memory/tend-garden", json={"thread_id": thread_id}).status_code == 200
        assert client.get("/api/memory/user/stats").json()["preferences"]["total"] == 4


def test_preferences_wrong_user(tmp_path: Path, user: str) -> None:
    with running_service(
        tmp_path / "data", "--fault", "preferences-wrong-user", "--fault", "preferences-in-stats"
    ) as svc:
        client = svc.client(user)
        start = len(svc.output.snapshot("stderr"))
        archive_preference(svc, client)
        _, match = svc.output.wait_for("stderr", VECTORISED, start)
        assert int(match["n"]) == 2
        assert client.get("/api/memory/user/stats").json()["preferences"]["total"] == 0
        assert svc.client("default").get("/api/memory/user/stats").json()["preferences"]["total"] == 2


def test_variant_preferences_in_stats(tmp_path: Path, user: str) -> None:
    with running_service(tmp_path / "data", "--fault", "preferences-in-stats") as svc:
        client = svc.client(user)
        archive_preference(svc, client)
        prefs = client.get("/api/memory/user/stats").json()["preferences"]
        assert prefs["total"] == 2 and prefs["by_type"] == {"preference": 1, "intent": 1}


# -- health --------------------------------------------------------------------------------------------


def test_api_health_503(tmp_path: Path) -> None:
    with running_service(tmp_path / "data", "--fault", "api-health-503") as svc:
        response = svc.client().get("/api/health")
        assert response.status_code == 503 and response.json()["status"] != "ok"
        assert svc.client().get("/healthz").status_code == 200


def test_healthz_not_ready(tmp_path: Path) -> None:
    with running_service(tmp_path / "data", "--fault", "healthz-not-ready", wait_path="/api/health") as svc:
        svc.output.wait_for("stderr", r"Vector store opened: ")
        healthz = svc.client().get("/healthz")
        assert healthz.status_code == 503
        assert healthz.json() | {"embed": None} == {
            "ok": False,
            "status": "starting",
            "db": True,
            "embed": None,
            "vector": False,
            "di": True,
        }
        ready = svc.client().get("/ready")
        assert ready.status_code == 503 and ready.json()["ok"] is False and "vector" in ready.json()["error"]


# -- process-level variants ----------------------------------------------------------------------------


def test_variant_json_logs(tmp_path: Path, user: str) -> None:
    with running_service(tmp_path / "data", "--fault", "json-logs") as svc:
        client = svc.client(user)
        thread_id = create_thread(client)["id"]
        add_messages(client, thread_id, ("user", "Migration Kubernetes"))
        archive(client, thread_id)
        svc.output.wait_for("stdout", r'^\{.*"message": "\[MemoryTaskQueue\] Thread ' + thread_id)
        code = stop(svc)
    assert code == 0
    entries = [json.loads(line) for line in svc.output.snapshot("stdout") if line]
    by_message = {e["message"]: e for e in entries}
    assert (
        by_message[f"[Thread Archiving] Consolidation enqueued for thread {thread_id}"]["severity"] == "INFO"
    )
    assert f"[MemoryTaskQueue] Thread {thread_id} consolidated: 2 new concepts" in by_message
    assert any('"PATCH /api/threads/' in e["message"] for e in entries)  # uvicorn's access lines too
    assert svc.output.snapshot("stderr") == []


def test_variant_slow_start(tmp_path: Path) -> None:
    started = time.monotonic()
    with running_service(tmp_path / "data", "--fault", "slow-start=2", wait_path="/api/health") as svc:
        assert time.monotonic() - started >= 2
        lines = svc.output.snapshot("stderr")
        cold = next(i for i, line in enumerate(lines) if "Cold start: warming up for 2s" in line)
        listening = next(i for i, line in enumerate(lines) if "Uvicorn running on" in line)
        assert cold < listening


def test_variant_transient_503(tmp_path: Path, user: str) -> None:
    with running_service(tmp_path / "data", "--fault", "transient-503=5", wait_path="/api/health") as svc:
        client = svc.client(user)
        codes = [
            client.post("/api/threads/", json={"type": "chat", "title": f"t{i}"}).status_code
            for i in range(20)
        ]
        assert codes.count(503) in (3, 4) and set(codes) == {201, 503}
        listed = svc.query("SELECT COUNT(*) FROM threads WHERE user_id = ?", user)
        assert listed == [(codes.count(201),)]  # a 503 was never processed


# -- the registry and its syntax -----------------------------------------------------------------------


def test_every_switch_has_a_test_here() -> None:
    source = Path(__file__).read_text() + Path(__file__).with_name("test_reference_service.py").read_text()
    assert [name for name in SWITCHES if name not in source] == []


def test_parameterised_syntax() -> None:
    faults = FaultSet.from_names(["archive-slow", "queue-slow=2.5", "transient-503"])
    assert (faults.value("archive-slow"), faults.value("queue-slow"), faults.value("transient-503")) == (
        800,
        2.5,
        20,
    )
    assert faults.describe() == "archive-slow=800, queue-slow=2.5, transient-503=20"
    for bad in ("hard-delete=3", "queue-slow=soon", "queue-slow=-1", "nope=1"):
        with pytest.raises(UnknownFaultError):
            FaultSet.from_names([bad])
    assert set(REGISTRY) == set(SWITCHES)


def test_list_faults_prints_both_tables(tmp_path: Path) -> None:
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "emergence_reference", "--list-faults"],
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout
    assert out.index("Faults:") < out.index("Correct variants:")
    assert all(name in out for name in SWITCHES) and "queue-slow[=VALUE]" in out


def test_sigterm_during_slow_start_exits_promptly(tmp_path: Path) -> None:
    import subprocess
    import sys

    from helpers.reference import free_port, service_env

    proc = subprocess.Popen(
        [sys.executable, "-m", "emergence_reference", "--fault", "slow-start=30"],
        env=service_env(free_port(), tmp_path / "data"),
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    for line in proc.stderr:
        if "Cold start" in line:
            break
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0


# -- faults a post-deploy window must catch ------------------------------------------------------------

MIB = 1024 * 1024
TASK_FAILED = r" ERROR \[[\w.]+\] Task consolidate_thread failed: invalid LLM response for thread {}: "
TWO_GI = 2 * 1024 * MIB


def test_consolidation_fails_some_fails_every_nth_task(tmp_path: Path, user: str) -> None:
    from emergence_reference.tasks import EveryNth

    assert FaultSet.from_names(["consolidation-fails-some"]).value("consolidation-fails-some") == 0.05
    default = EveryNth(0.05)
    assert [n for n in range(1, 61) if default.due()] == [20, 40, 60]
    with running_service(tmp_path / "data", "--fault", "consolidation-fails-some=0.1") as svc:
        start = len(svc.output.snapshot("stderr"))
        threads: list[tuple[httpx.Client, str]] = []
        for i in range(20):  # a user per thread: each consolidation brings its user new concepts
            client = svc.client(f"{user}-{i}")
            thread_id = create_thread(client)["id"]
            add_messages(client, thread_id, ("user", "Migration Kubernetes du cluster"))
            archive(client, thread_id)
            threads.append((client, thread_id))
        failed = {threads[9][1], threads[19][1]}
        for _, thread_id in threads:
            _, match = svc.output.wait_for("stderr", consolidated(thread_id), start)
            assert (int(match["n"]) == 0) == (thread_id in failed), thread_id
        for thread_id in failed:
            svc.output.wait_for("stderr", TASK_FAILED.format(thread_id), start)
        for client, thread_id in threads:
            stamp_ = client.get(f"/api/threads/{thread_id}").json()["thread"]["consolidated_at"]
            assert (stamp_ is None) == (thread_id in failed), thread_id
    lines = svc.output.snapshot("stderr")[start:]
    errors = [re.search(ERROR_CONSOLIDATION.format(r"(\w+)"), line) for line in lines]
    assert {m[1] for m in errors if m} == failed and len([m for m in errors if m]) == 2
    assert len([line for line in lines if "Task consolidate_thread failed: " in line]) == 2
    for thread_id in failed:  # the gardener's error, then the queue's result line, then the task's failure
        order = [
            next(i for i, line in enumerate(lines) if re.search(pattern, line))
            for pattern in (
                ERROR_CONSOLIDATION.format(thread_id) + "invalid LLM response",
                consolidated(thread_id),
                TASK_FAILED.format(thread_id),
            )
        ]
        assert order == sorted(order), order


def rss_bytes(pid: int) -> int:
    """The process's resident set, as the kernel reports it."""
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"^VmRSS:\s+(\d+) kB$", status, re.M)
    assert match, status
    return int(match[1]) * 1024


def test_memory_creep_holds_resident_memory_past_80_percent_of_2gi(tmp_path: Path) -> None:
    with running_service(tmp_path / "data", "--fault", "memory-creep", wait_path="/api/health") as svc:
        base = rss_bytes(svc.proc.pid)  # at most one 50 MB chunk in already
        svc.output.wait_for(
            "stderr", r" INFO \[[\w.]+\] Memory ballast: growing to 1800 MB at about 200 MB/s"
        )
        latencies: list[float] = []
        samples = [base]
        deadline = time.monotonic() + 30

        def health() -> None:
            sent = time.perf_counter()
            assert client.get("/api/health").status_code == 200
            latencies.append(time.perf_counter() - sent)
            samples.append(rss_bytes(svc.proc.pid))

        with httpx.Client(base_url=svc.base_url, timeout=5, trust_env=False) as client:
            while samples[-1] < base + 1750 * MIB:
                assert time.monotonic() < deadline, f"RSS {samples[-1] / MIB:.0f} MiB after 30 s"
                health()
            # ``base`` may or may not hold the first chunk: the last one may still be on its way. The
            # ballast is full once the RSS stops moving for a quarter of a second (a chunk's time).
            still_since, still_at = time.monotonic(), samples[-1]
            while time.monotonic() - still_since < 0.25:
                assert time.monotonic() < deadline, (
                    f"RSS still growing after 30 s: {samples[-1] / MIB:.0f} MiB"
                )
                health()
                if abs(samples[-1] - still_at) > 2 * MIB:
                    still_since, still_at = time.monotonic(), samples[-1]
            held = len(samples)
            watch_until = time.monotonic() + 1.0  # five chunks' time at 200 MB/s: it must grow no more
            while time.monotonic() < watch_until:
                health()
    peak = max(samples)
    assert samples[-1] >= 0.8 * TWO_GI and peak < base + 2000 * MIB, (base / MIB, peak / MIB)
    assert max(samples[held:]) - samples[held - 1] < 60 * MIB, "the ballast grew past its size"
    latencies.sort()
    assert latencies[len(latencies) // 2] < 0.05, latencies  # the answers are not slowed down


def test_cpu_burn_keeps_a_child_busy_in_the_service_tree_without_slowing_it(tmp_path: Path) -> None:
    """The load runs in a child process, counted with the service as Cloud Run counts the container;
    the event loop keeps answering; the child ends with the service."""
    from cloudrun_smoke.local import procfs
    from emergence_reference.burner import shares

    assert FaultSet.from_names(["cpu-burn"]).value("cpu-burn") == 1.6
    assert shares(1.6) == [0.8, 0.8] and shares(1) == [1.0] and shares(0) == []
    with running_service(tmp_path / "data", "--fault", "cpu-burn=0.5", wait_path="/api/health") as svc:
        svc.output.wait_for(
            "stderr", r" INFO \[[\w.]+\] CPU burn: 1 child process\(es\) keeping 0.5 CPU\(s\) busy"
        )
        burners = [
            pid
            for pid in procfs.descendants(svc.proc.pid)
            if b"emergence_reference.burner" in Path(f"/proc/{pid}/cmdline").read_bytes()
        ]
        assert len(burners) == 1, procfs.descendants(svc.proc.pid)
        before, began = procfs.tree_usage(burners[0]), time.monotonic()
        latencies = []
        with httpx.Client(base_url=svc.base_url, timeout=5, trust_env=False) as client:
            while time.monotonic() - began < 2.0:
                sent = time.perf_counter()
                assert client.get("/api/health").status_code == 200
                latencies.append(time.perf_counter() - sent)
                time.sleep(0.05)
        after, elapsed = procfs.tree_usage(burners[0]), time.monotonic() - began
        assert before is not None and after is not None
        share = (after.cpu_seconds - before.cpu_seconds) / elapsed
        # About half a CPU; much less when the machine is busy (two test workers on two cores).
        assert 0.1 <= share <= 0.7, share
    assert (
        not Path(f"/proc/{burners[0]}").exists()
        or b"zombie" in Path(f"/proc/{burners[0]}/status").read_bytes()
    )
    latencies.sort()
    # Not stalled (a busy loop holding the GIL would stall the event loop); a busy machine adds some.
    assert latencies[len(latencies) // 2] < 0.2, latencies


def test_slow_reads_delay_every_get_and_no_write(tmp_path: Path, user: str) -> None:
    with running_service(tmp_path / "data", "--fault", "slow-reads=500") as svc:
        client = svc.client(user)

        def timed(method: str, path: str, **kwargs: object) -> float:
            sent = time.perf_counter()
            response = client.request(method, path, **kwargs)  # type: ignore[arg-type]
            assert response.status_code < 300, response.text
            return time.perf_counter() - sent

        thread_id = create_thread(client)["id"]
        writes = [
            timed("POST", "/api/threads/", json={"type": "chat"}),
            timed("POST", f"/api/threads/{thread_id}/messages", json={"role": "user", "content": "hello"}),
            timed("PATCH", f"/api/threads/{thread_id}", json={"archived": True}),
        ]
        reads = [
            timed("GET", f"/api/threads/{thread_id}"),
            timed("GET", "/api/threads/archived/list"),
            timed("GET", "/api/health"),
        ]
    assert min(reads) >= 0.5 > max(writes), (reads, writes)


def test_server_errors_answer_500_for_their_share_of_the_api_and_spare_health(
    tmp_path: Path, user: str
) -> None:
    with running_service(tmp_path / "data", "--fault", "server-errors=0.25") as svc:
        client = svc.client(user)
        codes = [client.get("/api/threads/archived/list").status_code for _ in range(20)]
        health = [client.get("/api/health").status_code for _ in range(8)]
    assert codes.count(500) == 5 and set(codes) == {200, 500}, codes
    assert set(health) == {200}, health


def test_latency_factor_multiplies_the_time_of_every_answer(tmp_path: Path, user: str) -> None:
    """With a 300 ms archive (archive-slow), a factor of 3 makes it 900 ms; a fast answer stays fast."""
    faults = ("--fault", "archive-slow=300", "--fault", "latency-factor=3")
    with running_service(tmp_path / "data", *faults) as svc:
        client = svc.client(user)
        thread_id = create_thread(client)["id"]
        sent = time.perf_counter()
        assert client.patch(f"/api/threads/{thread_id}", json={"archived": True}).status_code == 200
        archive = time.perf_counter() - sent
        sent = time.perf_counter()
        assert client.get("/api/health").status_code == 200
        health = time.perf_counter() - sent
    assert archive >= 0.9, f"archive took {archive:.3f} s: 3 x 300 ms expected"
    assert health < 0.5, f"/api/health took {health:.3f} s"


# -- neighbours: other users, picked by id -------------------------------------------------------------
UPSERT_FAILED = "Vectorisation préférences impossible: Expected IDs to be unique"


def archive_preferences(svc: Service, client: httpx.Client, count: int) -> tuple[list[str], list[str]]:
    """``count`` threads stating a preference, archived one after the other; the stderr lines they set off."""
    start = len(svc.output.snapshot("stderr"))
    ids = [archive_preference(svc, client) for _ in range(count)]
    return ids, svc.output.snapshot("stderr")[start:]


def test_neighbours_fail_only_the_neighbours_some_consolidations_and_some_saves(
    tmp_path: Path, user: str
) -> None:
    with running_service(tmp_path / "data", "--fault", "neighbours-fail") as svc:
        neighbour = svc.client(f"neighbour-1-{user}")
        start = len(svc.output.snapshot("stderr"))
        threads, _ = archive_preferences(svc, neighbour, 6)
        # Consolidations 3 and 6 fail; of the four that save, the 2nd and 4th saves fail. The task's
        # failure line comes after the queue's result line.
        svc.output.wait_for("stderr", TASK_FAILED.format(threads[5]), start)
        lines = svc.output.snapshot("stderr")[start:]
        failed = [line for line in lines if "Task consolidate_thread failed: " in line]
        assert [t for t in threads if any(t in line for line in failed)] == [threads[2], threads[5]]
        assert len([line for line in lines if UPSERT_FAILED in line]) == 2
        assert len([line for line in lines if re.search(VECTORISED, line)]) == 2
        # Anyone else is served normally.
        _, others = archive_preferences(svc, svc.client(user), 2)
        assert not [line for line in others if " ERROR " in line]
        assert len([line for line in others if re.search(VECTORISED, line)]) == 2


def test_neighbours_spared_keeps_the_other_faults_off_the_neighbours(tmp_path: Path, user: str) -> None:
    with running_service(
        tmp_path / "data", EMERGENCE_FAULTS="preferences-upsert-fails,neighbours-spared"
    ) as svc:
        _, neighbours = archive_preferences(svc, svc.client(f"neighbour-2-{user}"), 1)
        assert any(re.search(VECTORISED, line) for line in neighbours)
        assert not [line for line in neighbours if UPSERT_FAILED in line]
        _, ours = archive_preferences(svc, svc.client(user), 1)
        assert [line for line in ours if UPSERT_FAILED in line]
        assert not [line for line in ours if re.search(VECTORISED, line)]


# -- shutdown: what the in-memory queue holds when SIGTERM comes ---------------------------------------
# Cloud Run's container runtime contract, "Instance shutdown"
# (https://cloud.google.com/run/docs/container-contract#instance-shutdown): SIGTERM, then SIGKILL 10 s later.


def queued_then_terminated(svc: Service, user: str, count: int) -> tuple[list[str], float]:
    """``count`` archived threads, queued behind one slow worker, then SIGTERM: their ids and how long
    the process took to end."""
    client = svc.client(user)
    threads = []
    for i in range(count):
        thread_id, start = archive_new_thread(svc, client, f"Kubernetes numéro {i} observabilité")
        svc.output.wait_for("stderr", enqueued(thread_id), start)
        threads.append(thread_id)
    started = time.monotonic()
    assert stop(svc) == 0
    return threads, time.monotonic() - started


def test_shutdown_drops_queue_loses_what_is_queued_without_a_line(tmp_path: Path, user: str) -> None:
    with running_service(
        tmp_path / "data", "--workers", "1", "--fault", "queue-slow=2", "--fault", "shutdown-drops-queue"
    ) as svc:
        threads, took = queued_then_terminated(svc, user, 3)
    lines = svc.output.snapshot("stderr")
    assert not [line for t in threads for line in lines if re.search(consolidated(t), line)]
    assert not [line for line in lines if "[MemoryTaskQueue] Stopped" in line or "Shutdown complete" in line]
    assert took < 2, f"the process took {took:.1f} s to end: it should end at once on SIGTERM"


def test_variant_shutdown_drains_consolidates_the_queue_within_the_grace_period(
    tmp_path: Path, user: str
) -> None:
    with running_service(
        tmp_path / "data", "--workers", "1", "--fault", "queue-slow=0.5", "--fault", "shutdown-drains"
    ) as svc:
        threads, took = queued_then_terminated(svc, user, 3)
    lines = svc.output.snapshot("stderr")
    assert [t for t in threads if any(re.search(consolidated(t), line) for line in lines)] == threads
    assert svc.stderr_lines_with("[MemoryTaskQueue] Draining ")
    assert svc.stderr_lines_with("[MemoryTaskQueue] Stopped 1 workers, 0 pending tasks dropped")
    assert took < 10, f"the drain took {took:.1f} s: Cloud Run sends SIGKILL 10 s after SIGTERM"


def test_by_default_the_queue_is_dropped_at_shutdown_and_counted(tmp_path: Path, user: str) -> None:
    """The public service's behaviour, which a rollout or a scale-in turns into lost consolidations."""
    with running_service(tmp_path / "data", "--workers", "1", "--fault", "queue-slow=2") as svc:
        threads, _ = queued_then_terminated(svc, user, 3)
    lines = svc.output.snapshot("stderr")
    assert not [line for t in threads[1:] for line in lines if re.search(consolidated(t), line)]
    assert svc.stderr_lines_with("[MemoryTaskQueue] Stopped 1 workers, 2 pending tasks dropped")
