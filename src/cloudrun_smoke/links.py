"""Where to look further: Logs Explorer URLs and the equivalent gcloud commands, for failure messages."""

from __future__ import annotations

import shlex
from datetime import datetime
from urllib.parse import quote

from cloudrun_smoke.timeutil import format_rfc3339


def logs_explorer_url(
    project: str, filter_: str, start: datetime | None = None, end: datetime | None = None
) -> str:
    url = f"https://console.cloud.google.com/logs/query;query={quote(filter_, safe='')}"
    if start is not None and end is not None:
        url += f";timeRange={quote(format_rfc3339(start) + '/' + format_rfc3339(end), safe='')}"
    return f"{url}?project={quote(project)}"


def gcloud_logging_read(project: str, filter_: str, limit: int = 50) -> str:
    return (
        f"gcloud logging read {shlex.quote(filter_)} --project {shlex.quote(project)} "
        f"--order asc --limit {limit} --format 'value(timestamp,severity,textPayload,jsonPayload.message)'"
    )


def gcloud_describe_service(project: str, region: str, service: str) -> str:
    return f"gcloud run services describe {service} --project {project} --region {region}"
