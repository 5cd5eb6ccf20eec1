"""Where to look further: Logs Explorer and Metrics Explorer URLs and the equivalent commands, for failure
messages."""

from __future__ import annotations

import json
import shlex
from collections.abc import Sequence
from datetime import datetime
from urllib.parse import quote, urlencode

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


def metrics_explorer_url(
    project: str,
    filter_: str,
    aligner: str,
    reducer: str,
    group_by: Sequence[str],
    start: datetime,
    end: datetime,
) -> str:
    state = {
        "xyChart": {
            "dataSets": [
                {
                    "timeSeriesFilter": {
                        "filter": filter_,
                        "perSeriesAligner": aligner,
                        "crossSeriesReducer": reducer,
                        "groupByFields": list(group_by),
                    },
                    "plotType": "LINE",
                }
            ]
        },
        "timeSelection": {
            "timeRange": "custom",
            "start": format_rfc3339(start),
            "end": format_rfc3339(end),
        },
    }
    page_state = quote(json.dumps(state, separators=(",", ":")), safe="")
    return f"https://console.cloud.google.com/monitoring/metrics-explorer?project={quote(project)}&pageState={page_state}"


def monitoring_api_call(
    project: str,
    filter_: str,
    aligner: str,
    reducer: str,
    group_by: Sequence[str],
    period_s: int,
    start: datetime,
    end: datetime,
) -> str:
    """The exact ListTimeSeries request of a window check, as a command to run by hand."""
    params = [
        ("filter", filter_),
        ("interval.startTime", format_rfc3339(start)),
        ("interval.endTime", format_rfc3339(end)),
        ("aggregation.alignmentPeriod", f"{period_s}s"),
        ("aggregation.perSeriesAligner", aligner),
        ("aggregation.crossSeriesReducer", reducer),
        *(("aggregation.groupByFields", field) for field in group_by),
    ]
    url = f"https://monitoring.googleapis.com/v3/projects/{quote(project)}/timeSeries?{urlencode(params)}"
    return f'curl -H "Authorization: Bearer $(gcloud auth print-access-token)" "{url}"'
