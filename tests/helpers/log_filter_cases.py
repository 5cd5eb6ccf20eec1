"""Cloud Logging filters and the entries they select: data only, shared by the tests of the filter
evaluator and of the Logging emulator (which also sends every case through google-cloud-logging).

``ENTRIES``: LogEntry dicts in the REST v2 JSON shape, as Cloud Run writes them.
``CASES``: (filter, the exact set of insertIds it selects from ``ENTRIES``). Every filter is a complete
expression on its own: another test wraps the ones without "timestamp" as
``(FILTER) AND timestamp>="2000-01-01T00:00:00Z"``, so none is empty and a comment always ends in a
newline (otherwise it would swallow the closing parenthesis).
``INVALID``: filters that must be rejected with a ``FilterError``.
"""

from __future__ import annotations

from typing import Any

PROJECT = "smoke-proj"
SERVICE = "emergence-api"
REV1 = "emergence-api-00001-fox"
REV2 = "emergence-api-00002-owl"
INSTANCE = "run.googleapis.com/instanceId"
TRACE_1 = f"projects/{PROJECT}/traces/0af7651916cd43dd8448eb211c80319c"
TRACE_2 = f"projects/{PROJECT}/traces/4bf92f3577b34da6a3ce929d0e0e4736"
URL = "https://emergence-api-7hgfw2k3sq-ew.a.run.app"


def _log(log_id: str) -> str:
    return f"projects/{PROJECT}/logs/{log_id.replace('/', '%2F')}"


STDOUT = _log("run.googleapis.com/stdout")
STDERR = _log("run.googleapis.com/stderr")
REQUESTS = _log("run.googleapis.com/requests")
ACTIVITY = _log("cloudaudit.googleapis.com/activity")


def _revision(revision: str | None) -> dict[str, Any]:
    labels = {
        "project_id": PROJECT,
        "service_name": SERVICE,
        "location": "europe-west1",
        "configuration_name": SERVICE,
    }
    if revision:
        labels["revision_name"] = revision
    return {"type": "cloud_run_revision", "labels": labels}


def _entry(
    insert_id: str, second: str, log_name: str, resource: dict[str, Any], **fields: Any
) -> dict[str, Any]:
    """``second`` is the seconds part of 2026-11-24T09:0M:SS; entries arrive 0.8 s after they're stamped."""
    minute, _, seconds = second.rpartition(":")
    whole, _, fraction = seconds.partition(".")
    received = f"{int(whole) + 0.8:09.6f}" if int(whole) < 59 else "59.999999"
    return {
        "insertId": insert_id,
        "logName": log_name,
        "resource": resource,
        "timestamp": f"2026-11-24T09:0{minute}:{whole}.{fraction}Z",
        "receiveTimestamp": f"2026-11-24T09:0{minute}:{received}Z",
        **fields,
    }


ENTRIES: list[dict[str, Any]] = [
    _entry(
        "e01",
        "3:40.100000",
        STDOUT,
        _revision(REV1),
        severity="INFO",
        textPayload="Starting server on port 8080",
        labels={INSTANCE: "inst-a1"},
    ),
    _entry(
        "e02",
        "3:41.250000",
        REQUESTS,
        _revision(REV1),
        severity="INFO",
        httpRequest={
            "requestMethod": "GET",
            "requestUrl": f"{URL}/healthz",
            "status": 200,
            "latency": "0.004512s",
            "userAgent": "GoogleHC/1.0",
            "remoteIp": "10.8.0.5",
            "requestSize": "120",
            "responseSize": "15",
            "protocol": "HTTP/1.1",
        },
        trace=TRACE_1,
        spanId="b7ad6b7169203331",
        labels={INSTANCE: "inst-a1"},
    ),
    _entry(
        "e03",
        "3:42.000001",
        STDERR,
        _revision(REV1),
        severity="ERROR",
        textPayload=(
            "Traceback (most recent call last):\n"
            '  File "app.py", line 42, in handler\n'
            'ValueError: bad "quote" in C:\\tmp'
        ),
        labels={INSTANCE: "inst-a1"},
    ),
    _entry(
        "e04",
        "3:43.500000",
        STDOUT,
        _revision(REV2),
        severity="INFO",
        jsonPayload={
            "message": "Consolidation enqueued",
            "job": {"id": "job-7", "kind": "archive", "attempt": 1},
            "tags": ["archive", "async"],
            "durationMs": 1500,
            "ok": True,
        },
        trace=TRACE_2,
        labels={INSTANCE: "inst-b2"},
    ),
    _entry(
        "e05",
        "3:43.400000",
        REQUESTS,
        _revision(REV2),
        severity="INFO",
        httpRequest={
            "requestMethod": "POST",
            "requestUrl": f"{URL}/api/archive",
            "status": 202,
            "latency": "0.350s",
            "userAgent": "python-httpx/0.27.0",
            "remoteIp": "203.0.113.7",
            "requestSize": "2048",
            "responseSize": "512",
            "protocol": "HTTP/1.1",
        },
        trace=TRACE_2,
        labels={INSTANCE: "inst-b2"},
    ),
    _entry(
        "e06",
        "3:50.000000",
        REQUESTS,
        _revision(REV2),
        severity="ERROR",
        httpRequest={
            "requestMethod": "GET",
            "requestUrl": f"{URL}/api/items?limit=20",
            "status": 503,
            "latency": "5.2s",
            "userAgent": "python-httpx/0.27.0",
            "remoteIp": "203.0.113.7",
            "responseSize": "95",
            "protocol": "HTTP/1.1",
        },
        labels={INSTANCE: "inst-b2"},
    ),
    _entry(
        "e07",
        "3:51.000000",
        STDERR,
        _revision(REV2),
        severity="WARNING",
        jsonPayload={
            "message": "Retrying upstream call",
            "attempt": 3,
            "upstream": "firestore",
            "ratio": 0.75,
            "note": None,
            "ok": False,
        },
        labels={INSTANCE: "inst-b2"},
    ),
    _entry(  # no severity: DEFAULT
        "e08",
        "3:52.000000",
        STDOUT,
        _revision(REV2),
        jsonPayload={
            "message": "cache warmup done",
            "count": 12,
            "greeting": "Grüße aus München",
            "path": "C:\\tmp\\cache",
            "Mixed.Key": "dotted",
        },
        labels={INSTANCE: "inst-b2"},
    ),
    _entry(  # nanosecond timestamp
        "e09",
        "3:53.750000500",
        STDERR,
        _revision(REV2),
        severity="CRITICAL",
        textPayload="Out of memory: killed process 17 (python)",
        labels={INSTANCE: "inst-c3"},
    ),
    _entry(
        "e10",
        "3:55.000000",
        REQUESTS,
        _revision(REV2),
        severity="WARNING",
        httpRequest={
            "requestMethod": "GET",
            "requestUrl": f"{URL}/missing",
            "status": 404,
            "latency": "1.5s",
            "userAgent": "curl/8.5.0",
            "remoteIp": "198.51.100.23",
            "protocol": "HTTP/1.1",
        },
        labels={INSTANCE: "inst-c3"},
    ),
    _entry(  # a Cloud Run job, not the service
        "e11",
        "4:00.000000",
        STDOUT,
        {
            "type": "cloud_run_job",
            "labels": {
                "project_id": PROJECT,
                "job_name": "nightly-consolidation",
                "location": "europe-west1",
            },
        },
        severity="DEBUG",
        textPayload="consolidation finished: 42 items",
        labels={
            "run.googleapis.com/execution_name": "nightly-consolidation-x7k2p",
            "run.googleapis.com/task_index": "0",
            "run.googleapis.com/task_attempt": "0",
        },
    ),
    _entry(  # an Admin Activity audit entry for the service: no revision, no labels
        "e12",
        "4:05.123456",
        ACTIVITY,
        _revision(None),
        severity="NOTICE",
        protoPayload={
            "@type": "type.googleapis.com/google.cloud.audit.AuditLog",
            "serviceName": "run.googleapis.com",
            "methodName": "google.cloud.run.v1.Services.ReplaceService",
            "resourceName": f"namespaces/{PROJECT}/services/{SERVICE}",
        },
    ),
]

ALL = {entry["insertId"] for entry in ENTRIES}


def _all_but(*ids: str) -> set[str]:
    return ALL - set(ids)


REV1_IDS = {"e01", "e02", "e03"}
REVISION_IDS = {f"e{n:02d}" for n in range(1, 11)}  # every entry with a revision_name label
STDERR_IDS = {"e03", "e07", "e09"}
REQUEST_IDS = {"e02", "e05", "e06", "e10"}
WARNING_UP = {"e03", "e06", "e07", "e09", "e10"}

CASES: list[tuple[str, set[str]]] = [
    # -- equality, has, case ---------------------------------------------------------------------------
    ('insertId="e03"', {"e03"}),
    ('resource.type="cloud_run_job"', {"e11"}),
    ("resource.type=cloud_run_revision", _all_but("e11")),
    (f'resource.labels.revision_name="{REV1}"', REV1_IDS),
    (f"resource.labels.revision_name={REV1.upper()}", REV1_IDS),  # '=' ignores letter case
    (f'logName="{STDERR}"', STDERR_IDS),
    ('logName:"run.googleapis.com%2Frequests"', REQUEST_IDS),
    ("logName:REQUESTS", REQUEST_IDS),  # ':' is a case-insensitive substring test
    ("logName=run.googleapis.com%2Fstderr", set()),  # '=' compares the whole value
    ('resource.labels.service_name!="emergence-api"', set()),  # '!=' on a missing label fails
    ('NOT resource.labels.service_name="emergence-api"', {"e11"}),  # NOT of a failed comparison
    ("resource.labels.job_name:*", {"e11"}),
    ("-resource.labels.revision_name:*", {"e11", "e12"}),
    # -- severity ----------------------------------------------------------------------------------------
    ("severity=ERROR", {"e03", "e06"}),
    ("severity>=ERROR", {"e03", "e06", "e09"}),
    ('severity>="warning"', WARNING_UP),
    ("severity<INFO", {"e08", "e11"}),  # e08 has no severity: DEFAULT
    ("severity=DEFAULT", {"e08"}),
    ("severity>=500", {"e03", "e06", "e09"}),
    ("severity=300", {"e12"}),
    ("severity>ALERT", set()),
    ("severity=(ERROR OR CRITICAL)", {"e03", "e06", "e09"}),
    ("NOT severity:*", {"e08"}),
    # -- boolean structure: NOT binds tightest, then OR, then AND ------------------------------------
    ("severity=ERROR OR severity=CRITICAL AND logName:stderr", {"e03", "e09"}),
    ("logName:stderr AND severity=ERROR OR severity=WARNING", {"e03", "e07"}),
    ("insertId=e01 OR NOT insertId=e02 AND NOT insertId=e03 OR insertId=e04", _all_but("e02", "e03")),
    ("logName:stderr severity>=ERROR", {"e03", "e09"}),  # juxtaposition is AND
    ("-logName:stderr -logName:stdout -logName:requests", {"e12"}),
    ("NOT (httpRequest.status>=400 OR logName:stdout)", {"e02", "e03", "e05", "e07", "e09", "e12"}),
    ('(logName:stderr OR logName:requests) AND resource.labels.revision_name:"00001"', {"e02", "e03"}),
    ("((severity>=WARNING))", WARNING_UP),
    ("resource.type=cloud_run_revision\nseverity>=WARNING\nlogName:stderr", STDERR_IDS),
    ("logName:stderr and", {"e03"}),  # lower-case 'and' is a search term ("handler")
    # -- text payloads -----------------------------------------------------------------------------------
    ('textPayload:"out of memory"', {"e09"}),
    ('textPayload="out of memory"', set()),
    ('textPayload="out of MEMORY: killed process 17 (python)"', {"e09"}),
    ("textPayload:consolidation", {"e11"}),
    ("textPayload:(memory killed)", {"e09"}),  # each value, joined by the implicit AND
    ('textPayload:("traceback" OR "memory")', {"e03", "e09"}),
    ('textPayload:("memory" AND NOT "python")', set()),
    ('textPayload:(NOT "memory")', _all_but("e09")),
    ("NOT textPayload:*", {"e02", "e04", "e05", "e06", "e07", "e08", "e10", "e12"}),
    # -- global restrictions: some field, payload included, has the value ---------------------------
    ('"Consolidation enqueued"', {"e04"}),
    ("consolidation", {"e04", "e11"}),
    ("firestore", {"e07"}),
    ('"GoogleHC"', {"e02"}),
    ("503", {"e06"}),  # httpRequest.status, an integer, equals it
    ("1500", {"e04"}),  # jsonPayload.durationMs, a number, equals it
    ("(firestore OR GoogleHC) -logName:requests", {"e07"}),
    # -- numbers -----------------------------------------------------------------------------------------
    ("httpRequest.status>=500", {"e06"}),
    ("httpRequest.status>=400 httpRequest.status<500", {"e10"}),
    ("httpRequest.status=202", {"e05"}),
    ("httpRequest.status<300", _all_but("e06", "e10")),  # absent httpRequest: status is defaulted to 0
    ("httpRequest.status:* AND httpRequest.status<300", {"e02", "e05"}),
    ("httpRequest.requestSize>1000", {"e05"}),  # an int64, sent as a JSON string
    ("http_request.status=404", {"e10"}),  # proto names match in snake_case too
    ("jsonPayload.attempt>=3", {"e07"}),
    ("jsonPayload.job.attempt=1", {"e04"}),
    ("jsonPayload.ratio<0.8", {"e07"}),
    ("jsonPayload.durationMs>1e3", {"e04"}),
    ('jsonPayload.count="12"', {"e08"}),  # a numeric string converts to the field's number
    ("jsonPayload.count>abc", set()),  # a failed conversion fails the comparison
    ("jsonPayload.attempt>-1", {"e07"}),
    ("jsonPayload.ok=false", {"e07"}),
    ("jsonPayload.ok=TRUE", {"e04"}),
    # -- durations ---------------------------------------------------------------------------------------
    ("httpRequest.latency>5s", {"e06"}),
    ("httpRequest.latency>=0.35s", {"e05", "e06", "e10"}),
    ("httpRequest.latency<100ms AND httpRequest:*", {"e02"}),
    ("httpRequest.latency>1500ms", {"e06"}),
    ('httpRequest.latency="350ms"', {"e05"}),
    ("httpRequest.latency=4512us", {"e02"}),
    ("httpRequest.latency>=1m", set()),
    # -- timestamps --------------------------------------------------------------------------------------
    ('timestamp>="2026-11-24T09:03:50Z"', {"e06", "e07", "e08", "e09", "e10", "e11", "e12"}),
    ('timestamp<"2026-11-24T09:03:42.000001Z"', {"e01", "e02"}),
    ('timestamp="2026-11-24T09:03:42.000001+00:00"', {"e03"}),
    ('timestamp>="2026-11-24T09:03:43.4+0000" AND timestamp<"2026-11-24T09:03:43.5+0000"', {"e05"}),
    ('timestamp>"2026-11-24T10:03:00+01:00"', ALL),
    ('timestamp<"2026-11-24"', set()),
    ('timestamp>="2026-11-24" timestamp<"2026-11-25"', ALL),
    ('timestamp>"2026-11-24T09:03:53.7500004Z" AND timestamp<"2026-11-24T09:03:54Z"', {"e09"}),
    ('timestamp<="2026-11-24T09:03:53.75Z" AND timestamp>="2026-11-24T09:03:53Z"', set()),
    ('timestamp>="2026-11-24t09:04:00z"', {"e11", "e12"}),
    ('receiveTimestamp>="2026-11-24T09:04:00.5Z"', {"e11", "e12"}),
    # -- labels ------------------------------------------------------------------------------------------
    (f'labels."{INSTANCE}"="inst-c3"', {"e09", "e10"}),
    (f'labels."{INSTANCE}":inst', REVISION_IDS),
    ('labels."run.googleapis.com/execution_name":*', {"e11"}),
    ('labels."run.googleapis.com/task_index"=0', {"e11"}),
    ("labels.instanceId:*", set()),
    ('labels:"inst-a1"', REV1_IDS),  # ':' on a map searches its values
    # -- JSON and proto payloads ----------------------------------------------------------------------
    ('jsonPayload.message="cache warmup done"', {"e08"}),
    ('jsonPayload.message:"RETRY"', {"e07"}),
    ("jsonPayload.job.kind=archive", {"e04"}),
    ("jsonPayload.tags=async", {"e04"}),  # an array: any member
    ("jsonPayload.note=NULL_VALUE", {"e07"}),
    ("jsonPayload.note!=NULL_VALUE", set()),
    ("NOT jsonPayload.note=NULL_VALUE", _all_but("e07")),
    ('jsonPayload.nearest_store="x"', set()),
    ('jsonPayload.nearest_store!="x"', set()),  # '!=' on a missing field fails
    ('NOT jsonPayload.nearest_store="x"', ALL),  # NOT on a missing field succeeds
    ('jsonPayload."Mixed.Key"=dotted', {"e08"}),
    ('jsonPayload.greeting:"GRÜSSE"', {"e08"}),  # NFKC case folding: ß folds to ss
    ('jsonPayload:"warmup"', {"e08"}),
    ("jsonPayload:*", {"e04", "e07", "e08"}),
    ('protoPayload.methodName:"ReplaceService"', {"e12"}),
    ('protoPayload."@type"="type.googleapis.com/google.cloud.audit.AuditLog"', {"e12"}),
    ("protoPayload.methodname:replaceservice", {"e12"}),
    # -- string escapes ----------------------------------------------------------------------------------
    ('textPayload:"bad \\"quote\\""', {"e03"}),
    ('textPayload:"C:\\\\tmp"', {"e03"}),
    ('jsonPayload.path="c:\\\\TMP\\\\cache"', {"e08"}),
    ('textPayload:"handler\\nValueError"', {"e03"}),
    ('textPayload:"\\u004Fut of memory"', {"e09"}),
    # -- regular expressions (RE2, case-sensitive, unanchored) ------------------------------------------
    ('textPayload=~"^Out of memory: killed process \\\\d+"', {"e09"}),
    ('textPayload=~"^Out of memory: killed process \\d+"', {"e09"}),  # unknown escapes pass through
    ('textPayload=~"out of memory"', set()),
    ('textPayload=~"(?i)out of memory"', {"e09"}),
    ('logName=~"%2F(stdout|stderr)$"', {"e01", "e03", "e04", "e07", "e08", "e09", "e11"}),
    ('httpRequest.requestUrl!~"/api/"', _all_but("e05", "e06")),  # defaulted "" doesn't match
    ('jsonPayload.message=~("^Cons" OR "^cache")', {"e04", "e08"}),
    ('resource.labels.revision_name=~"-0000[12]-"', REVISION_IDS),
    ('jsonPayload.tags=~"^asy"', {"e04"}),
    ('textPayload=~"process (?<pid>\\\\d+)"', {"e09"}),  # RE2's named group syntax
    ('textPayload=~"items\\\\z"', {"e11"}),  # RE2's end of text
    ('textPayload=~"killed process [[:digit:]]+"', {"e09"}),  # POSIX class
    # -- functions ---------------------------------------------------------------------------------------
    ('log_id("run.googleapis.com/stderr")', STDERR_IDS),
    ('log_id("cloudaudit.googleapis.com/activity")', {"e12"}),
    ('ip_in_net(httpRequest.remoteIp, "10.0.0.0/8")', {"e02"}),
    ('ip_in_net(httpRequest.remoteIp, "203.0.113.0/24")', {"e05", "e06"}),
    # -- comments and whatever else Cloud Run queries look like --------------------------------------
    ("severity=ERROR -- only errors\n", {"e03", "e06"}),
    ("-- leading comment\nlogName:requests\n-- trailing comment\n", REQUEST_IDS),
    ("trace:*", {"e02", "e04", "e05"}),
    (f'trace="{TRACE_2}"', {"e04", "e05"}),
    ('spanId=""', _all_but("e02")),  # absent spanId is defaulted to ""
    ("operation.id:*", set()),
    ("resource.labels.service_name=emergence-api httpRequest.requestMethod=POST", {"e05"}),
    ("httpRequest.requestMethod=(GET OR POST) httpRequest.status!=200", {"e05", "e06", "e10"}),
    (
        f'resource.type="cloud_run_revision" AND resource.labels.service_name="{SERVICE}" AND '
        f'resource.labels.location="europe-west1" AND (logName="{STDOUT}" OR logName="{STDERR}")',
        {"e01", "e03", "e04", "e07", "e08", "e09"},
    ),
]

INVALID: list[str] = [
    "(severity=ERROR",
    "severity=ERROR)",
    "severity=ERROR AND",
    "AND severity=ERROR",
    "severity=ERROR OR OR logName:stderr",
    "NOT",
    "severity=",
    "()",
    'textPayload=("a" OR)',
    "severity==ERROR",
    "httpRequest.status=>500",
    "httpRequest.status<>500",
    'textPayload~"x"',
    'textPayload!"x"',
    'textPayload:"unterminated',
    "textPayload:'single'",
    "severity=ERROR && logName:stderr",
    "insertId = abc:def",
    "*",
    "textPayload=*",
    "textPayload:*memory",
    "labels. = x",
    "jsonPayload.x = - 5",
    'textPayload="bad \\x4 escape"',
    "sample(insertId, 0.1)",
    'SEARCH("hello")',
    'cast(timestamp, STRING) =~ "^2026"',
    "foo(bar)",
    "log_id()",
    'log_id("run.googleapis.com/stderr") = 1',
    'ip_in_net(httpRequest.remoteIp, "10.0.0.0/33")',
    "thud = 1",
    "textPayload.thud = 1",
    "httpRequest.thud = 1",
    "labels.run.googleapis.com/instanceId = inst-a1",
    '"textPayload" = "x"',
    'httpRequest = "GET"',
    'labels."a".b',
    "severity=LOUD",
    "severity=450",
    "severity=~ERR",
    'timestamp>="yesterday"',
    'timestamp>="2026-11-24 09:00:00Z"',
    'timestamp>="2026-13-01T00:00:00Z"',
    "httpRequest.latency>5",
    "httpRequest.latency>5sec",
    "httpRequest.status>=5xx",
    "jsonPayload.note<NULL_VALUE",
    "textPayload=NULL_VALUE",
    "NULL_VALUE",
    'textPayload=~"(a)\\\\1"',
    'textPayload=~"foo(?=bar)"',
    'textPayload=~"(?<!x)y"',
    'textPayload=~"a++"',
    'textPayload=~"(unclosed"',
    "textPayload:" + '"' + "x" * 20_000 + '"',
]
