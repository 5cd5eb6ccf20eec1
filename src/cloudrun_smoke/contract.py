"""The EmergenceV8 contract the checks rely on: routes, bodies and what a response may look like.

One module, so a change of the service's API is one change here. Readers accept what the contract
allows (``archived`` as true or 1, extra fields) and fail on what it forbids.
"""

from __future__ import annotations

from typing import Any

from cloudrun_smoke.http import ServiceClient, ServiceResponseError, describe_response, expect_json

THREADS = "/api/threads/"


def thread_path(thread_id: str) -> str:
    return f"/api/threads/{thread_id}"


def is_archived(value: Any) -> bool:
    """``archived`` is a boolean in the contract and the integer 0/1 in the public code: both are fine."""
    if value is True or value == 1:
        return True
    if value is False or value == 0 or value is None:
        return False
    raise ServiceResponseError(f"thread 'archived' must be true/false or 1/0, got {value!r}")


def create_thread(service: ServiceClient, title: str, thread_type: str = "chat") -> dict[str, Any]:
    response = service.post(THREADS, {"type": thread_type, "title": title})
    body = expect_json(response, (200, 201), f"create a thread (POST {THREADS})")
    thread_id = body.get("id") if isinstance(body, dict) else None
    if not isinstance(thread_id, str) or not thread_id:
        raise ServiceResponseError(
            f"create a thread: the response has no string 'id': {describe_response(response)}"
        )
    return body


def add_message(service: ServiceClient, thread_id: str, content: str, role: str = "user") -> dict[str, Any]:
    path = f"{thread_path(thread_id)}/messages"
    response = service.post(path, {"role": role, "content": content})
    body = expect_json(response, (200, 201), f"add a message (POST {path})")
    if not isinstance(body, dict) or not body.get("message_id"):
        raise ServiceResponseError(
            f"add a message: the response has no 'message_id': {describe_response(response)}"
        )
    return body


def archive_thread(service: ServiceClient, thread_id: str) -> dict[str, Any]:
    path = thread_path(thread_id)
    response = service.patch(path, {"archived": True})
    body = expect_json(response, 200, f"archive the thread (PATCH {path})")
    thread = body.get("thread") if isinstance(body, dict) else None
    if not isinstance(thread, dict):
        raise ServiceResponseError(f"archive the thread: no 'thread' object in {describe_response(response)}")
    if not is_archived(thread.get("archived")):
        raise ServiceResponseError(
            f"archive the thread: 'archived' is not set afterwards: {describe_response(response)}"
        )
    return thread


def get_thread(service: ServiceClient, thread_id: str) -> dict[str, Any]:
    path = thread_path(thread_id)
    body = expect_json(service.get(path), 200, f"read the thread (GET {path})")
    if not isinstance(body, dict) or not isinstance(body.get("thread"), dict):
        raise ServiceResponseError(f"read the thread: no 'thread' object in the response to GET {path}")
    return body


def delete_thread(service: ServiceClient, thread_id: str) -> int:
    """Delete (soft or hard: the contract allows both); a thread already gone is fine."""
    return service.delete(thread_path(thread_id)).status_code
