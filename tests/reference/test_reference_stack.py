"""The reference service as the local stack's default revision: its lines reach the Logging emulator.

Read through the real Google client, as the suite reads them: plain text on stderr becomes
``textPayload`` of ``run.googleapis.com/stderr`` (level only in the text), the ``json-logs`` variant
becomes ``jsonPayload`` with a parsed severity on ``run.googleapis.com/stdout``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from google.cloud import logging as cloud_logging

from cloudrun_smoke.local.stack import LocalStack, LocalStackConfig
from helpers.log_entries import entries_when, logging_client
from helpers.stacks import archive_through_front_end, reference_stack_config

PROJECT = "reference-stack"


def entries(stack: LocalStack, filter_: str) -> list[cloud_logging.entries.LogEntry]:
    client = logging_client(stack.logging_api_endpoint, PROJECT)
    return entries_when(client, filter_, timeout=20, interval=0.2)


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack(reference_stack_config(PROJECT)) as running:
        yield running


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
    with LocalStack(reference_stack_config(PROJECT, "json-logs")) as json_stack:
        thread_id = archive_through_front_end(json_stack, "Migration Kubernetes du cluster")
        [entry] = entries(
            json_stack,
            f'jsonPayload.message="[MemoryTaskQueue] Thread {thread_id} consolidated: 3 new concepts"',
        )
        assert entry.severity == "INFO"
        assert entry.log_name == f"projects/{PROJECT}/logs/run.googleapis.com%2Fstdout"
