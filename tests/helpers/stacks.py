"""Local stacks as our tests start them: the tiny service or the reference service, logs visible within
a fraction of a second and no read quota, so that a test waits on events and not on the emulator."""

from __future__ import annotations

from datetime import datetime

import httpx
from google.cloud import logging as cloud_logging

from cloudrun_smoke.config.schema import Environment
from cloudrun_smoke.local.run_model import RevisionSpec
from cloudrun_smoke.local.stack import LocalStack, LocalStackConfig
from cloudrun_smoke.timeutil import format_rfc3339
from cloudrun_smoke.waiting import wait_until
from helpers.log_entries import logging_client
from helpers.paths import TINY


def tiny_stack_config(project: str, **overrides: object) -> LocalStackConfig:
    """The tiny service (tests/services/tiny_service.py) as service ``tiny``; ``overrides`` win."""
    settings: dict[str, object] = {
        "project": project,
        "service": "tiny",
        "service_cmd": TINY,
        "spec": RevisionSpec(image="local/tiny:1"),
        "ingestion_delay": 0.05,
        "ingestion_jitter": 0.0,
        "startup_timeout": 10.0,
        "read_quota_per_minute": None,
    }
    settings.update(overrides)
    return LocalStackConfig(**settings)  # type: ignore[arg-type]


def reference_stack_config(project: str, *faults: str) -> LocalStackConfig:
    """The reference service (the stack's default revision) in production mode, with ``faults``."""
    return LocalStackConfig(
        project=project,
        spec=RevisionSpec(image="local/emergencev8-backend:dev", env={"ENVIRONMENT": "production"}),
        ingestion_delay=0.2,
        ingestion_jitter=0.0,
        read_quota_per_minute=None,
        faults=faults,
    )


def healthy(stack: LocalStack) -> LocalStack:
    """``stack`` once its service answers /healthz with 200 (the reference's vector store is open)."""
    with httpx.Client(base_url=stack.service_url, timeout=5, trust_env=False) as client:
        wait_until(
            lambda: client.get("/healthz").status_code == 200 or None,
            timeout=20,
            what="/healthz 200",
            interval=0.1,
        )
    return stack


def stack_environment(stack: LocalStack, name: str = "local") -> Environment:
    """The environment a smoke.toml would declare for ``stack``: its service, through its emulators."""
    cfg = stack.config
    return Environment(
        name=name,
        source="test",
        project=cfg.project,
        region=cfg.region,
        service=cfg.service,
        run_api_endpoint=stack.run_api_endpoint,
        logging_api_endpoint=stack.logging_api_endpoint,
    )


def stack_logs(stack: LocalStack) -> cloud_logging.Client:
    """The suite's reading client on the stack's Logging emulator, in the stack's project."""
    return logging_client(stack.logging_api_endpoint, stack.config.project)


def app_lines(stack: LocalStack, started: datetime, text: str) -> list[str]:
    """The service's stderr lines holding ``text``, written since ``started``."""
    since = format_rfc3339(started)
    filter_ = f'log_id("run.googleapis.com/stderr") AND textPayload:"{text}" AND timestamp>="{since}"'
    return [str(e.payload) for e in stack_logs(stack).list_entries(filter_=filter_)]


HEADERS = {"x-dev-bypass": "1", "x-user-id": "stack-user"}


def archive_through_front_end(stack: LocalStack, text: str) -> str:
    """Create a thread with one message through the stack's front end, archive it; its id."""
    with httpx.Client(
        base_url=healthy(stack).service_url, headers=HEADERS, timeout=10, trust_env=False
    ) as client:
        thread_id: str = client.post("/api/threads/", json={"type": "chat"}).json()["id"]
        message = {"role": "user", "content": text}
        assert client.post(f"/api/threads/{thread_id}/messages", json=message).status_code == 201
        assert client.patch(f"/api/threads/{thread_id}", json={"archived": True}).status_code == 200
    return thread_id
