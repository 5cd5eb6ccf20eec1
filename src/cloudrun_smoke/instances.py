"""Per-instance state: why an object the run just created can answer 404.

The public deployment keeps SQLite and Chroma inside each container; with several instances, two
requests of one scenario can reach different ones. Cloud Run's request logs carry the instance id of
each request, so a 404 on the run's own object is explained from them instead of reported bare.
"""

from __future__ import annotations

import time
from typing import Any

from cloudrun_smoke.config import Environment

SHARED_STATE_FIX = (
    "To share state between instances, set DATABASE_URL and CHROMA_HOST on the revision (runbook), "
    "or deploy with --max-instances 1."
)


def request_log_filter(env: Environment, object_id: str, creation_trace: str = "") -> str:
    about = f'httpRequest.requestUrl:"{object_id}"'
    if creation_trace:
        about = f'({about} OR trace="projects/{env.project}/traces/{creation_trace}")'
    return (
        'resource.type="cloud_run_revision" '
        f'AND resource.labels.service_name="{env.service}" '
        f'AND logName="projects/{env.project}/logs/run.googleapis.com%2Frequests" '
        f"AND {about}"
    )


def _served(client: Any, env: Environment, filter_: str) -> list[tuple[str, str, str, Any, str]]:
    from google.cloud import logging as cloud_logging

    entries = client.list_entries(
        resource_names=[f"projects/{env.project}"],
        filter_=filter_,
        order_by=cloud_logging.ASCENDING,
        page_size=200,
    )
    rows = []
    for entry in entries:
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
    return rows


def diagnose_404(
    client: Any, env: Environment, object_id: str, creation_trace: str = "", wait: float = 10.0
) -> str:
    """Which instances served the requests about ``object_id``; empty when the logs cannot tell.

    Request logs are ingested late like any entry: read again (a few reads, on failure only) until the
    creating request and the 404 are both visible or ``wait`` seconds passed.
    """
    filter_ = request_log_filter(env, object_id, creation_trace)
    deadline = time.monotonic() + wait
    while True:
        try:
            rows = _served(client, env, filter_)
        except Exception as e:  # a diagnosis must never hide the failure it explains
            return f"(request logs unavailable: {type(e).__name__})"
        complete = any(r[3] == 404 for r in rows) and (
            not creation_trace or any(r[4].endswith(creation_trace) for r in rows)
        )
        if complete or time.monotonic() >= deadline:
            break
        time.sleep(1.0)
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
