"""Per-instance state: why an object the run just created can answer 404.

The public deployment keeps SQLite and Chroma inside each container; with several instances, two
requests of one scenario can reach different ones. Cloud Run's request logs carry the instance id of
each request, so a 404 on the run's own object is explained from them instead of reported bare.
"""

from __future__ import annotations

from typing import Any

from cloudrun_smoke.config import Environment


def request_log_filter(env: Environment, object_id: str) -> str:
    return (
        'resource.type="cloud_run_revision" '
        f'AND resource.labels.service_name="{env.service}" '
        f'AND logName="projects/{env.project}/logs/run.googleapis.com%2Frequests" '
        f'AND httpRequest.requestUrl:"{object_id}"'
    )


def diagnose_404(client: Any, env: Environment, object_id: str) -> str:
    """Which instances served the requests about ``object_id``; empty when the logs cannot tell."""
    from google.cloud import logging as cloud_logging

    try:
        entries = list(
            client.list_entries(
                resource_names=[f"projects/{env.project}"],
                filter_=request_log_filter(env, object_id),
                order_by=cloud_logging.ASCENDING,
                page_size=200,
            )
        )
    except Exception as e:  # a diagnosis must never hide the failure it explains
        return f"(request logs unavailable: {type(e).__name__})"
    rows = []
    for entry in entries:
        request = entry.http_request or {}
        instance = (entry.labels or {}).get("instanceId", "?")
        rows.append(
            (
                instance,
                request.get("requestMethod", "?"),
                request.get("requestUrl", "?"),
                request.get("status", "?"),
            )
        )
    instances = sorted({r[0] for r in rows})
    if len(instances) < 2:
        return ""
    listed = "\n".join(
        f"    {method} {url} → {status} on instance {inst[:16]}" for inst, method, url, status in rows
    )
    return (
        f"{object_id} was created by this run, but its requests reached {len(instances)} different instances, "
        "each with its own state (SQLite and Chroma live inside the container): the 404 may come from an "
        f"instance that never saw it.\n{listed}"
    )
