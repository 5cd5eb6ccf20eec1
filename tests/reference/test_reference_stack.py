"""The reference service as the local stack's default revision: its lines reach the Logging emulator.

Read through the real Google client, as the suite reads them: plain text on stderr becomes
``textPayload`` of ``run.googleapis.com/stderr`` (level only in the text), the ``json-logs`` variant
becomes ``jsonPayload`` with a parsed severity on ``run.googleapis.com/stdout``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import logging as cloud_logging

from cloudrun_smoke.gcp.clients import reading_client_class
from cloudrun_smoke.local.run_model import RevisionSpec
from cloudrun_smoke.local.stack import LocalStack, LocalStackConfig
from cloudrun_smoke.waiting import wait_until

PROJECT = "reference-stack"
HEADERS = {"x-dev-bypass": "1", "x-user-id": "stack-user"}


def stack_config(*faults: str) -> LocalStackConfig:
    return LocalStackConfig(
        project=PROJECT,
        spec=RevisionSpec(image="local/emergencev8-backend:dev", env={"ENVIRONMENT": "production"}),
        ingestion_delay=0.2,
        ingestion_jitter=0.0,
        read_quota_per_minute=None,
        faults=faults,
    )


def entries(stack: LocalStack, filter_: str) -> list[cloud_logging.entries.LogEntry]:
    client = reading_client_class()(
        project=PROJECT,
        credentials=AnonymousCredentials(),
        _use_grpc=False,
        client_options={"api_endpoint": stack.logging_api_endpoint},
    )
    return wait_until(
        lambda: found if (found := list(client.list_entries(filter_=filter_))) else None,
        timeout=20,
        what=f"entries matching {filter_}",
        interval=0.2,
    )


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack(stack_config()) as running:
        yield running


def archive_through_front_end(stack: LocalStack, text: str) -> str:
    with httpx.Client(base_url=stack.service_url, headers=HEADERS, timeout=10, trust_env=False) as client:
        wait_until(
            lambda: client.get("/healthz").status_code == 200 or None,
            timeout=20,
            what="/healthz 200",
            interval=0.1,
        )
        thread_id: str = client.post("/api/threads/", json={"type": "chat"}).json()["id"]
        assert (
            client.post(
                f"/api/threads/{thread_id}/messages", json={"role": "user", "content": text}
            ).status_code
            == 201
        )
        assert client.patch(f"/api/threads/{thread_id}", json={"archived": True}).status_code == 200
    return thread_id


def test_the_stack_runs_the_reference_service_by_default() -> None:
    assert LocalStackConfig().service_cmd == "python -m emergence_reference"


def test_archive_lines_reach_the_logging_emulator_as_text_payload(stack: LocalStack) -> None:
    thread_id = archive_through_front_end(stack, f"Je préfère Docker en production {uuid.uuid4().hex[:6]}")
    [done] = entries(stack, f'textPayload:"Thread {thread_id} consolidated"')
    assert done.log_name == f"projects/{PROJECT}/logs/run.googleapis.com%2Fstderr"
    assert " INFO [emergence_reference.tasks] [MemoryTaskQueue] Thread " in done.payload
    assert done.resource.labels["service_name"] == "emergencev8-backend"
    [hook] = entries(stack, f'textPayload:"Consolidation enqueued for thread {thread_id}"')
    assert hook.timestamp <= done.timestamp
    vectorised = entries(stack, 'textPayload:"préférences/intentions vectorisées"')
    assert vectorised and all(e.payload.endswith("1 préférences/intentions vectorisées.") for e in vectorised)
    access = entries(
        stack, f'logName:"run.googleapis.com%2Fstdout" AND textPayload:"PATCH /api/threads/{thread_id}"'
    )
    assert "200" in access[0].payload


def test_json_logs_variant_reaches_the_emulator_as_json_payload() -> None:
    with LocalStack(stack_config("json-logs")) as json_stack:
        thread_id = archive_through_front_end(json_stack, "Migration Kubernetes du cluster")
        [entry] = entries(
            json_stack,
            f'jsonPayload.message="[MemoryTaskQueue] Thread {thread_id} consolidated: 3 new concepts"',
        )
        assert entry.severity == "INFO"
        assert entry.log_name == f"projects/{PROJECT}/logs/run.googleapis.com%2Fstdout"
