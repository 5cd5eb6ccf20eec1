"""Cloud Logging payloads: (a) entries.list pages served over loopback HTTP to the real
``google-cloud-logging`` client (JSON API) and read by the LogWatcher's source, the window's log reader
and the 404 diagnosis; (b) the emulator's entries and pages for the same situations have the same shape."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from google.auth.credentials import AnonymousCredentials

from cloudrun_smoke.config.schema import Environment
from cloudrun_smoke.gcp.clients import logging_client
from cloudrun_smoke.local.json_api import ApiError, JsonApiServer, Request, route
from cloudrun_smoke.local.log_router import LogRouter, RevisionResource
from cloudrun_smoke.local.log_store import LogStore
from cloudrun_smoke.local.logging_api import Ingestion, LoggingApi
from cloudrun_smoke.local.stack import LocalStack
from cloudrun_smoke.logs.diagnosis import _served
from cloudrun_smoke.logs.pacing import ReadPacer
from cloudrun_smoke.logs.patterns import pattern
from cloudrun_smoke.logs.source import CloudLoggingSource
from cloudrun_smoke.waiting import wait_until
from cloudrun_smoke.window.logs import WindowLogReader
from cloudrun_smoke.window.period import Window
from helpers.shapes import assert_same_shape, load
from helpers.stacks import tiny_stack_config

PROJECT, REGION, SERVICE = "emergence-prod", "europe-west1", "emergencev8-backend"
REVISION = f"{SERVICE}-00042-xoq"
THREAD = "5f2c9a7e-1b3d-4e6f-8a0c-2d4f6b8e0a1c"
INSTANCE = load("log_entry_request").payload["labels"]["instanceId"]

PAGES = ("entries_list_page_with_token", "entries_list_page_empty_with_token", "entries_list_page_last")


# -- (a) the three pages, in order, to the real client --------------------------------------------------------
class FixturePages:
    """entries:list answering the fixture pages in turn, each token leading to the next page."""

    def __init__(self) -> None:
        self.pages = [load(name).payload for name in PAGES]
        self.bodies: list[Any] = []

    def list_entries(self, request: Request) -> tuple[int, Any]:
        self.bodies.append(request.body)
        token = request.body.get("pageToken")
        tokens = [None, *(p.get("nextPageToken") for p in self.pages)]
        if token not in tokens[: len(self.pages)]:
            raise ApiError(400, f"pageToken: unknown {token!r}")
        return 200, self.pages[tokens.index(token)]


@pytest.fixture
def pages() -> Iterator[tuple[FixturePages, Environment]]:
    api = FixturePages()
    server = JsonApiServer("logging-fixtures", [route("POST", "/v2/entries:list", api.list_entries)]).start()
    env = Environment(
        name="prod",
        source="smoke.toml",
        project=PROJECT,
        region=REGION,
        service=SERVICE,
        logging_api_endpoint=server.endpoint,
    )
    yield api, env
    server.stop()


def test_the_watchers_source_reads_every_page_and_every_payload_form(
    pages: tuple[FixturePages, Environment],
) -> None:
    api, env = pages
    source = CloudLoggingSource(logging_client(env, AnonymousCredentials()), PROJECT)
    lines, token, calls = [], None, 0
    while True:  # one paid request a page: the harness continues a search by its token
        page, token = source.page('resource.type="cloud_run_revision"', token)
        lines, calls = lines + page, calls + 1
        if token is None:
            break
    assert calls == 3, "one entries:list call per page, the empty one included"
    assert [b.get("pageToken") for b in api.bodies] == [
        None,
        *(load(n).payload["nextPageToken"] for n in PAGES[:2]),
    ]
    request, structured, text = lines
    assert (request.text, request.revision, request.instance_id) == ("", REVISION, INSTANCE)
    # jsonPayload: the message is the line; severity is the entry's.
    assert structured.severity == "INFO" and structured.log_name.endswith("run.googleapis.com%2Fstderr")
    assert pattern("archive.enqueued").match(structured.text) == {"thread_id": THREAD}
    # textPayload: no severity on the entry, none in the text either.
    assert text.severity == "DEFAULT" and text.instance_id == INSTANCE
    assert pattern("queue.consolidating").match(text.text) == {"thread_id": THREAD, "reason": "archived"}
    assert text.timestamp == datetime(2026, 11, 25, 9, 42, 11, 801694, tzinfo=UTC)
    assert text.receive_timestamp is not None and text.receive_timestamp > text.timestamp


def test_the_window_reader_takes_latencies_and_lines_across_pages(
    pages: tuple[FixturePages, Environment],
) -> None:
    _, env = pages
    end = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
    reader = WindowLogReader(
        logging_client(env, AnonymousCredentials()),
        project=PROJECT,
        service=SERVICE,
        region=REGION,
        revision=REVISION,
        window=Window(end - timedelta(hours=1), end, "conformance"),
        max_pages=10,
        pacer=ReadPacer(60),
    )
    latencies = reader.archive_latencies()
    assert (latencies.items, latencies.pages, latencies.capped) == ([pytest.approx(184.391727)], 3, False)


def test_the_404_diagnosis_reads_instance_method_url_status_and_trace(
    pages: tuple[FixturePages, Environment],
) -> None:
    _, env = pages
    rows, complete = _served(logging_client(env, AnonymousCredentials()), env, "any", lambda: True)
    assert complete
    url = f"https://emergencev8-backend-q3x7vbtzka-ew.a.run.app/api/threads/{THREAD}"
    trace = f"projects/{PROJECT}/traces/4bf92f3577b34da6a3ce929d0e0e4736"
    assert rows[0] == (INSTANCE, "PATCH", url, 200, trace)


# -- (b) the emulator ------------------------------------------------------------------------------------------
def emulator_entries(endpoint: str, filter_: str, page_size: int = 50) -> list[dict[str, Any]]:
    body = {"resourceNames": [f"projects/{PROJECT}"], "filter": filter_, "pageSize": page_size}
    return httpx.post(f"{endpoint}/v2/entries:list", json=body, timeout=10).json().get("entries", [])


@pytest.fixture
def routed() -> Iterator[tuple[LogRouter, str]]:
    api = LoggingApi(LogStore(), Ingestion(delay=0.0))
    server = api.serve()
    yield LogRouter(api), server.endpoint
    server.stop()


RESOURCE = RevisionResource(PROJECT, REGION, SERVICE, REVISION, SERVICE)


def test_emulator_text_line(routed: tuple[LogRouter, str]) -> None:
    router, endpoint = routed
    router.route_line(
        RESOURCE, "stdout", load("log_entry_stdout_text").payload["textPayload"] + "\n", INSTANCE
    )
    [entry] = emulator_entries(endpoint, 'logName:"stdout"')
    assert_same_shape(load("log_entry_stdout_text"), entry)


def test_emulator_structured_line(routed: tuple[LogRouter, str]) -> None:
    router, endpoint = routed
    google = load("log_entry_stderr_json").payload
    # The line the service prints: Cloud Run moves the special fields out of jsonPayload.
    line = {
        **google["jsonPayload"],
        "severity": "INFO",
        "logging.googleapis.com/labels": {"run_id": "smoke-20261125-0941"},
        "logging.googleapis.com/trace": google["trace"],
        "logging.googleapis.com/spanId": google["spanId"],
        "logging.googleapis.com/trace_sampled": True,
    }
    router.route_line(RESOURCE, "stderr", json.dumps(line), INSTANCE)
    [entry] = emulator_entries(endpoint, 'logName:"stderr"')
    assert_same_shape(load("log_entry_stderr_json"), entry)


def test_emulator_pages_with_and_without_a_token(routed: tuple[LogRouter, str]) -> None:
    router, endpoint = routed
    for i in range(3):
        router.route_line(RESOURCE, "stdout", f"line {i}", INSTANCE)
    body = {"resourceNames": [f"projects/{PROJECT}"], "filter": "", "pageSize": 2}
    first = httpx.post(f"{endpoint}/v2/entries:list", json=body, timeout=10).json()
    last = httpx.post(
        f"{endpoint}/v2/entries:list", json={**body, "pageToken": first["nextPageToken"]}, timeout=10
    ).json()
    # Entries are compared one by one above; here the page around them.
    assert_same_shape(load("entries_list_page_with_token"), {**first, "entries": []})
    assert_same_shape(load("entries_list_page_last"), {**last, "entries": []})
    assert len(first["entries"]) == 2 and len(last["entries"]) == 1 and "nextPageToken" not in last


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    config = tiny_stack_config(PROJECT, region=REGION, service=SERVICE)
    with LocalStack(config) as stack:
        yield stack


def test_emulator_request_log(stack: LocalStack) -> None:
    httpx.get(
        f"{stack.service_url}/api/threads/{THREAD}", headers={"User-Agent": "python-httpx/0.28.1"}, timeout=10
    )
    body = {"resourceNames": [f"projects/{PROJECT}"], "filter": 'logName:"requests"', "pageSize": 10}

    def entry() -> Any:
        found = httpx.post(f"{stack.logging_api_endpoint}/v2/entries:list", json=body, timeout=10).json()
        return (found.get("entries") or [None])[0]

    seen = wait_until(entry, timeout=10, what="the request log entry in the Logging emulator", interval=0.05)
    assert_same_shape(load("log_entry_request"), seen)


def test_emulator_empty_page_with_a_token() -> None:
    config = tiny_stack_config(PROJECT, service=SERVICE, faults=("stack:short-pages",))
    with LocalStack(config) as stack:
        body: dict[str, Any] = {"resourceNames": [f"projects/{PROJECT}"], "filter": "", "pageSize": 1000}

        def empty_page() -> Any:
            """Page through (from the start again after the last page) until an empty page has a token."""
            page = httpx.post(f"{stack.logging_api_endpoint}/v2/entries:list", json=body, timeout=10).json()
            if not page.get("entries") and page.get("nextPageToken"):
                return page
            body["pageToken"] = page.get("nextPageToken", "")
            return None

        page = wait_until(
            empty_page, timeout=20, what="an empty entries.list page with a nextPageToken", interval=0.1
        )
        assert_same_shape(load("entries_list_page_empty_with_token"), page)
