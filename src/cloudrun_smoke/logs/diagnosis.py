"""Per-instance state: why an object the run just created can answer 404.

The public deployment keeps SQLite and Chroma inside each container; with several instances, two
requests of one scenario can reach different ones. Cloud Run's request logs carry the instance id of
each request, so a 404 on the run's own object is explained from them instead of reported bare.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from cloudrun_smoke.config.schema import Environment
from cloudrun_smoke.gcp.errors import is_throttled
from cloudrun_smoke.gcp.scope import CloudRunScope
from cloudrun_smoke.logs.pages import list_page
from cloudrun_smoke.service.run import SmokeRun
from cloudrun_smoke.waiting import WaitTimeout, wait_until

SHARED_STATE_FIX = (
    "To share state between instances, set DATABASE_URL and CHROMA_HOST on the revision (runbook), "
    "or deploy with --max-instances 1."
)


def request_log_filter(
    scope: CloudRunScope, object_id: str, creation_trace: str = "", since: datetime | None = None
) -> str:
    """The request logs about ``object_id`` (its URL, or the trace of the request that created it);
    ``since`` bounds the search in time (the run's start), so that it answers sooner."""
    about = f'httpRequest.requestUrl:"{object_id}"'
    if creation_trace:
        about = f'({about} OR trace="projects/{scope.project}/traces/{creation_trace}")'
    return f"{scope.request_logs_filter(since)} AND {about}"


NOT_FOUND = "→ 404"  # how a failure's message names a 404 (see service.http)

Row = tuple[str, str, str, Any, str]  # instance, method, URL, status, trace


def _served(client: Any, env: Environment, filter_: str, pay: Callable[[], bool]) -> tuple[list[Row], bool]:
    """Every request log of ``filter_``, one paid page at a time; (rows, complete): incomplete when
    the budget gave no turn before the diagnosis's deadline (a search may answer empty pages with a
    token to continue, see :mod:`cloudrun_smoke.logs.pages`)."""
    rows: list[Row] = []
    loggers: dict[str, Any] = {}
    token: str | None = None
    while True:
        if not pay():
            return rows, False
        page = list_page(client, env.project, filter_, page_size=200, token=token, loggers=loggers)
        for entry in page.entries:
            request = entry.http_request or {}
            rows.append(
                (
                    (entry.labels or {}).get("instanceId", "?"),
                    request.get("requestMethod", "?"),
                    request.get("requestUrl", "?"),
                    request.get("status", "?"),
                    entry.trace or "",
                )
            )
        token = page.next_token
        if token is None:
            return rows, True


def diagnose_404(
    client: Any,
    env: Environment,
    object_id: str,
    creation_trace: str = "",
    wait: float = 10.0,
    *,
    pay_for_read: Callable[[float], bool],
    since: datetime | None = None,
    on_throttled: Callable[[], object] = lambda: None,
) -> str:
    """Which instances served the requests about ``object_id``; empty when the logs cannot tell.

    Request logs are ingested late like any entry: read again (a few reads, on failure only) until the
    creating request and the 404 are both visible or ``wait`` seconds passed. Every page is paid from
    the run's one read pacer, like the watcher's polls and the window reads: ``pay_for_read(until)`` is
    the watcher's ``pay_for_read`` (which also counts the read as the run's) or the pacer's
    ``take_turn``; it waits out a 429 pause that another reader met. A 429 or any other error of its
    own ends the diagnosis (it must never delay the failure it explains); a 429 is also reported to
    ``on_throttled`` (the pacer's ``throttled``), so that the run's other readers pause as after their own.
    """
    filter_ = request_log_filter(CloudRunScope.of(env), object_id, creation_trace, since)
    deadline = time.monotonic() + wait
    rows: list[Row] = []

    def search_done() -> bool | None:
        """Search once; done when both requests are visible, or the budget gave no turn in time."""
        nonlocal rows
        found, searched = _served(client, env, filter_, lambda: pay_for_read(deadline))
        rows = found if searched or not rows else rows  # a search cut short keeps the last whole one
        complete = any(r[3] == 404 for r in rows) and (
            not creation_trace or any(r[4].endswith(creation_trace) for r in rows)
        )
        return True if complete or not searched else None

    try:  # each search waits its turn at the read budget: no pause between searches
        wait_until(search_done, timeout=wait, what=f"the request logs about {object_id}", interval=0.0)
    except WaitTimeout:
        pass  # what surfaced by the deadline may tell anyway
    except Exception as e:  # a diagnosis must never hide the failure it explains
        if is_throttled(e):
            on_throttled()
        return f"(request logs unavailable: {type(e).__name__})"
    instances = sorted({r[0] for r in rows})
    if len(instances) < 2:
        return ""
    listed = "\n".join(
        f"    {method} {url} → {status} on instance {inst[:16]}" for inst, method, url, status, _ in rows
    )
    return (
        f"{object_id} was created by this run, but its requests reached {len(instances)} different instances, "
        "each with its own state (SQLite and Chroma live inside the container): the 404 may come from an "
        f"instance that never saw it.\n{listed}\n{SHARED_STATE_FIX}"
    )


def explain_failure(
    message: str,
    failed_check: str,
    run: SmokeRun,
    client: Any,
    env: Environment,
    *,
    pay_for_read: Callable[[float], bool],
    diagnosed: dict[str, str],
    on_throttled: Callable[[], object] = lambda: None,
) -> str:
    """The per-instance explanation of a failure whose message names a thread this run created; a
    thread explained once (``diagnosed``: thread id -> check) is then only pointed to. Empty if none."""
    if NOT_FOUND not in message:
        return ""
    created_by = {t: trace for user in run.users for t, trace in user.created_by.items()}
    for thread_id in run.thread_ids:
        if thread_id in message and thread_id in diagnosed:  # explained once; then a pointer to it
            return f"thread {thread_id}: see {diagnosed[thread_id]}"
        if thread_id in message:
            diagnosed[thread_id] = failed_check
            return diagnose_404(
                client,
                env,
                thread_id,
                created_by.get(thread_id, ""),
                pay_for_read=pay_for_read,
                since=run.started_at - timedelta(seconds=5),
                on_throttled=on_throttled,
            )
    return ""
