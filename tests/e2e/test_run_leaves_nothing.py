"""A run leaves nothing of its smoke users behind, however it ends: passed, failed, or Ctrl-C.

The suite attaches to a stack that outlives it (as to `cloudrun-smoke local up`). Afterwards the test
reads the service's own store for every thread the run's users created, waits until the service's
queue has finished with them, then asks the service, as each of those users, whether each thread is
deleted (a soft delete counts) and whether the user's memory (concepts, preferences) is empty.
"""

from __future__ import annotations

import contextlib
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import pytest

from cloudrun_smoke.config.environment import load_config
from cloudrun_smoke.local.stack import LocalStack, stack_for
from cloudrun_smoke.service import contract
from cloudrun_smoke.service.http import ServiceClient
from cloudrun_smoke.service.settle import queue_settled
from cloudrun_smoke.service.users import SmokeUser, clean_up
from cloudrun_smoke.waiting import wait_until
from emergence_reference.store import DB_FILENAME
from helpers.log_entries import watcher_on
from helpers.smoke_runs import (
    MARKER_VAR,
    ROOT,
    clean_environ,
    interactive_smoke_argv,
    processes_with_marker,
    run_smoke,
)

REFERENCE = f"{sys.executable} -m emergence_reference"
ENQUEUED = "Consolidation enqueued for thread "
QUEUE_ENDS = ("consolidated: ", "Erreur consolidation thread", "Task consolidate_thread failed")


@dataclass
class Service:
    stack: LocalStack
    db: Path

    @property
    def attach(self) -> dict[str, str]:
        return {
            "SMOKE_RUN_API_ENDPOINT": self.stack.run_api_endpoint,
            "SMOKE_LOGGING_API_ENDPOINT": self.stack.logging_api_endpoint,
        }

    def smoke_threads(self) -> list[tuple[str, str, int]]:
        """(thread id, user id, archived) of every thread a smoke user created, from the service's store."""
        if not self.db.exists():
            return []
        with contextlib.closing(sqlite3.connect(f"file:{self.db}?mode=ro", uri=True)) as conn:
            rows = conn.execute("SELECT id, user_id, archived FROM threads WHERE user_id LIKE 'smoke-%'")
            return [(str(i), str(u), int(a)) for i, u, a in rows.fetchall()]

    def queue_done_with(self, thread_id: str) -> bool:
        """Whether the service's queue is done with this thread: never handed it, or logged its end."""
        texts = [str(s.entry.get("textPayload", "")) for s in self.stack.logging.store]
        ours = [text for text in texts if thread_id in text]
        if not any(ENQUEUED in text for text in ours):
            return True
        return any(end in text for text in ours for end in QUEUE_ENDS)

    def lines_about(self, thread_ids: list[str]) -> str:
        """The stack's log lines naming these threads, with when each became visible: for a failure."""
        return "\n".join(
            f"  {s.entry.get('timestamp')} visible at {s.visible_at:.3f}: "
            f"{str(s.entry.get('textPayload', ''))[:160]}"
            for s in self.stack.logging.store
            if any(t in str(s.entry.get("textPayload", "")) for t in thread_ids)
        )

    def as_user(self, user_id: str, path: str) -> httpx.Response:
        headers = {"x-dev-bypass": "1", "x-user-id": user_id}
        return httpx.get(f"{self.stack.service_url}{path}", headers=headers, timeout=30)


@contextlib.contextmanager
def running_service(tmp_path: Path, *faults: str) -> Iterator[Service]:
    """The shipped local environment's stack, its data where the test can read it, and preferences
    visible in the memory stats (a variant the contract allows), so that leftovers cannot hide."""
    data = tmp_path / "service-data"
    env = load_config(ROOT / "smoke.toml").environment("local", {"SMOKE_LOCAL_SERVICE_CMD": REFERENCE})
    assert env.stack is not None
    settings = env.stack.model_copy(
        update={
            "env": {**env.stack.env, "EMERGENCE_DATA_DIR": str(data)},
            "faults": ("preferences-in-stats", *faults),
        }
    )
    with stack_for(env.with_overrides(stack=settings)) as stack:
        yield Service(stack, data / DB_FILENAME)


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    with running_service(tmp_path) as service:
        yield service


@pytest.fixture
def slow_queue(tmp_path: Path) -> Iterator[Service]:
    """Each consolidation starts 2 s late: the run ends before its consolidations do."""
    with running_service(tmp_path, "queue-slow=2") as service:
        yield service


def assert_nothing_left(service: Service) -> None:
    threads = service.smoke_threads()
    assert threads, "the run created no thread: nothing was proven"
    wait_until(
        lambda: all(service.queue_done_with(t) for t, _, _ in threads) or None,
        timeout=60,
        what="the service's queue to finish with the run's archived threads",
    )
    live = []
    for thread_id, user_id, _ in threads:
        response = service.as_user(user_id, f"/api/threads/{thread_id}")
        if response.status_code == 404:
            continue  # hard-deleted
        assert response.status_code == 200, response.text
        if response.json()["thread"].get("archival_reason") != "user_deleted":
            live.append(thread_id)
    assert not live, f"threads of the run not deleted: {live}"
    for user_id in sorted({u for _, u, _ in threads}):
        stats = service.as_user(user_id, "/api/memory/user/stats").json()
        left = {k: stats[k]["total"] for k in ("preferences", "concepts") if stats[k]["total"]}
        assert not left, f"the memory of {user_id} was not cleared: {left}"


@pytest.mark.slow
def test_a_healthy_run_leaves_nothing(service: Service, tmp_path: Path) -> None:
    run = run_smoke(tmp_path, "--env", "local", env=service.attach)
    assert run.returncode == 0, run.output
    assert run.verdict["run"]["cleanup_problems"] == []
    assert_nothing_left(service)


@pytest.mark.slow
def test_a_failing_run_leaves_nothing(slow_queue: Service, tmp_path: Path) -> None:
    """Every log wait gives up at once: the run ends while its consolidations are still under way."""
    service = slow_queue
    run = run_smoke(tmp_path, "--env", "local", "--log-deadline", "0.5", env=service.attach)
    assert run.returncode == 1, run.output
    assert run.outcomes["test_thread_archiving.py::test_archive_enqueues_a_consolidation_that_completes"] in (
        "failure",
        "error",
    )
    assert_nothing_left(service)


@pytest.mark.slow
def test_ctrl_c_mid_run_stops_promptly_and_leaves_nothing(slow_queue: Service, tmp_path: Path) -> None:
    service = slow_queue
    marker = uuid.uuid4().hex
    report = tmp_path / "verdict.json"
    environ = clean_environ()
    with (tmp_path / "output.txt").open("w") as output:
        process = subprocess.Popen(
            # Not the SLO checks: with every consolidation 2 s late on a busy machine they fail and
            # the run can reach its teardown (where a first Ctrl-C waits for the queue) before the
            # signal lands; this test is about Ctrl-C, not about queue time.
            interactive_smoke_argv(
                "--env", "local", f"--smoke-report={report}", "--deselect", "smoke/test_slo.py"
            ),
            cwd=ROOT,
            stdout=output,
            stderr=subprocess.STDOUT,
            env={**environ, MARKER_VAR: marker, **service.attach},
        )
        try:
            # Mid-run: a thread is archived, so its consolidation is under way when Ctrl-C lands.
            wait_until(
                lambda: any(a for _, _, a in service.smoke_threads()) or None,
                timeout=120,
                what="the run to archive a thread",
                interval=0.05,
            )
            interrupted, interrupted_at = time.monotonic(), time.time()
            process.send_signal(signal.SIGINT)
            code = process.wait(timeout=60)
            took = time.monotonic() - interrupted
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    out = (tmp_path / "output.txt").read_text()
    assert code == 2, out
    assert took < 30, f"{took:.1f} s from Ctrl-C to exit\n{out}"
    assert "Traceback (most recent call last)" not in out, out
    assert processes_with_marker(marker) == []
    assert_nothing_left(service)
    verdict = report.read_text()
    assert '"exit_status": 2' in verdict and '"cleanup_problems": []' in verdict, (
        f"{verdict}\nCtrl-C at {interrupted_at:.3f}, {took:.1f} s to exit; the stack's lines of the run's threads:\n"
        + service.lines_about([t for t, _, _ in service.smoke_threads()])
    )


def in_a_fresh_interpreter(script: str) -> str:
    """Run a signal test in its own process: SIGINT's handler belongs to the process, and a test must
    depend neither on what other tests of its worker left installed nor on an ignored SIGINT inherited
    from a CI runner (the script installs Python's default handler first)."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.strip()


def test_ctrl_c_during_a_creation_is_held_until_the_creation_ends() -> None:
    """Else the service creates a thread whose id the run never learns, and cleanup cannot delete it."""
    out = in_a_fresh_interpreter(
        """
        import signal
        from cloudrun_smoke.service import interrupts
        signal.signal(signal.SIGINT, signal.default_int_handler)  # as a terminal starts Python
        before = signal.getsignal(signal.SIGINT)
        ended = []
        try:
            with interrupts.deferred():
                signal.raise_signal(signal.SIGINT)
                ended.append("the creation")
        except KeyboardInterrupt:
            print("raised after", ended, signal.getsignal(signal.SIGINT) is before)
        else:
            print("not raised")
        """
    )
    assert out == "raised after ['the creation'] True"


def test_a_second_ctrl_c_is_not_held() -> None:
    out = in_a_fresh_interpreter(
        """
        import signal
        from cloudrun_smoke.service import interrupts
        signal.signal(signal.SIGINT, signal.default_int_handler)  # as a terminal starts Python
        reached = []
        try:
            with interrupts.deferred():
                signal.raise_signal(signal.SIGINT)
                signal.raise_signal(signal.SIGINT)
                reached.append("after the second Ctrl-C")
        except KeyboardInterrupt:
            print("raised", reached)
        """
    )
    assert out == "raised []"


GRACE = 3.0  # the teardown's wait for consolidations without an end line


@pytest.mark.slow
def test_cleanup_waits_for_every_users_consolidations_at_once(tmp_path: Path) -> None:
    """A service whose consolidations start and never end: the grace is spent once for all the run's
    users, not once per user (a failing run with four users once took 80 s to tear down); each thread
    without an end line is reported, and still every thread is deleted and every memory cleared."""
    with running_service(tmp_path, "consolidation-hangs") as service:
        stack = service.stack
        watcher = watcher_on(
            stack.logging_api_endpoint, stack.config.project, 'resource.type="cloud_run_revision"', 120
        )
        run_id = uuid.uuid4().hex[:8]
        run_users = []
        for n in range(3):
            user_id = f"smoke-settle-{run_id}-{n}"
            headers = {"x-dev-bypass": "1", "x-user-id": user_id}
            user = SmokeUser(user_id, ServiceClient(service.stack.service_url, headers, run_id), per_run=True)
            contract.archive_thread(user.client, user.new_thread("settle", "Docker et Kubernetes"))
            run_users.append(user)
        try:
            started = time.monotonic()
            problems = clean_up(run_users, queue_settled(watcher, grace=GRACE))
            took = time.monotonic() - started
        finally:
            watcher.close()
            for user in run_users:
                user.client.close()
        for user in run_users:
            for thread_id in user.threads:
                answer = service.as_user(user.user_id, f"/api/threads/{thread_id}")
                assert (
                    answer.status_code == 404 or answer.json()["thread"]["archival_reason"] == "user_deleted"
                )
            assert service.as_user(user.user_id, "/api/memory/user/stats").json()["concepts"]["total"] == 0
    threads = [t for user in run_users for t in user.threads]
    assert sorted(problems) == sorted(
        f"thread {t}: its consolidation had not ended when the memory of its user was cleared "
        "(no end line seen); it may still write to that memory"
        for t in threads
    )
    # Once: GRACE and the deletes (3.1 s of them seen on a busy machine); once per user: 3 x GRACE at least.
    assert took < 2 * GRACE + 2.0, f"three users' teardown took {took:.1f} s with a grace of {GRACE:g} s"


@pytest.mark.slow
def test_an_archive_cut_short_is_waited_for_only_if_the_thread_says_archived(service: Service) -> None:
    """Ctrl-C can land while a PATCH is on its way: it may or may not have reached the service. The
    thread, asked before it is deleted, tells which; a Ctrl-C run once waited 20 s for the end of a
    consolidation that never started, then reported it as possibly still writing."""
    user_id = f"smoke-cut-{uuid.uuid4().hex[:8]}"
    headers = {"x-dev-bypass": "1", "x-user-id": user_id}
    user = SmokeUser(user_id, ServiceClient(service.stack.service_url, headers, "cut"), per_run=True)
    try:
        never_sent = user.new_thread("cut short before the service saw it", "Docker")
        answered = user.new_thread("archived, answered", "Kubernetes")
        unread = user.new_thread("archived, the answer never read", "Terraform")
        contract.archive_thread(user.client, answered)
        contract.archive_thread(user.client, unread)
        patch = next(t for t in reversed(user.client.timings) if t.path == contract.thread_path(unread))
        cut_short = [
            replace(patch, status=None),
            replace(patch, path=contract.thread_path(never_sent), status=None),
        ]
        user.client.timings[:] = [t for t in user.client.timings if t is not patch] + cut_short
        assert sorted(user.archive_requested()) == sorted([answered, unread])
    finally:
        clean_up([user])
        user.client.close()
