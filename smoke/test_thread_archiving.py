"""Runbook test 1 (P0) — archiving a thread enqueues a consolidation that completes asynchronously.

Create a thread, add a message, archive it; then the service must log, for that thread and in this
order: the enqueue by the archive hook, the start of the consolidation, and its completion with at
least one new concept.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from cloudrun_smoke import contract
from cloudrun_smoke.config import Environment
from cloudrun_smoke.http import ServiceClient
from cloudrun_smoke.logs import LogWatcher
from cloudrun_smoke.run import SmokeRun
from cloudrun_smoke.timeutil import utcnow

pytestmark = pytest.mark.writes

MESSAGE = "Je préfère utiliser Docker pour le déploiement des services conteneurisés en production."


def test_archive_enqueues_a_consolidation_that_completes(
    smoke_service: ServiceClient, smoke_run: SmokeRun, smoke_env: Environment, smoke_logs: LogWatcher
) -> None:
    thread_id = contract.create_thread(smoke_service, f"cloudrun-smoke {smoke_run.run_id}")["id"]
    smoke_run.created_threads.append(thread_id)
    contract.add_message(smoke_service, thread_id, MESSAGE)
    archived_at = utcnow()
    contract.archive_thread(smoke_service, thread_id)

    # One deadline for the whole asynchronous chain, counted from the archive request.
    since = archived_at - timedelta(seconds=5)
    deadline = utcnow() + timedelta(seconds=smoke_env.log_deadline)
    where = {"thread_id": thread_id}
    matches = []
    for name in ("archive.enqueued", "queue.consolidating", "queue.consolidated"):
        remaining = max(0.1, (deadline - utcnow()).total_seconds())
        matches.append(smoke_logs.expect(name, where, timeout=remaining, since=since))

    stamps = [m.line.timestamp for m in matches]
    assert stamps == sorted(stamps), "log lines out of order for thread {}:\n{}".format(
        thread_id, "\n".join(f"    {m.line.short()}" for m in matches)
    )
    concepts = int(matches[-1].fields["concepts"])
    assert concepts >= 1, (
        f"thread {thread_id} was consolidated with {concepts} new concepts (expected >= 1): "
        f"the consolidation stored nothing\n    {matches[-1].line.short()}"
    )
