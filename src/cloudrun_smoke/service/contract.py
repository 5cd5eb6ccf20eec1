"""The EmergenceV8 contract the checks rely on: routes, bodies and what a response may look like.

One module, so a change of the service's API is one change here. Readers accept what the contract
allows (``archived`` as true or 1, extra fields) and fail on what it forbids.
"""

from __future__ import annotations

from typing import Any

from cloudrun_smoke.service.http import ServiceClient, ServiceResponseError, describe_response, expect_json

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


def clear_memory(service: ServiceClient) -> int:
    """Wipe the caller's memory: only ever for a user that exists for this run alone."""
    return service.delete("/api/memory/clear").status_code


# -- memory ------------------------------------------------------------------------------------------------
BATCH = "/api/memory/consolidate-archived"
BATCH_FIELDS: dict[str, type | tuple[type, ...]] = {
    "status": str,
    "consolidated_count": int,
    "skipped_count": int,
    "total_archived": int,
    "errors": list,
}


def schema_problems(body: Any, fields: dict[str, type | tuple[type, ...]]) -> list[str]:
    """Missing or mistyped fields; extra fields are allowed (the contract may grow)."""
    if not isinstance(body, dict):
        return [f"expected a JSON object, got {type(body).__name__}"]
    problems = []
    for name, kind in fields.items():
        if name not in body:
            problems.append(f"missing field {name!r}")
        elif (isinstance(body[name], bool) and kind is int) or not isinstance(body[name], kind):
            expected = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
            problems.append(f"field {name!r} should be {expected}, got {body[name]!r}")
    return problems


def consolidate_archived(service: ServiceClient, **body: Any) -> dict[str, Any]:
    """``POST /api/memory/consolidate-archived`` with its schema checked (status, counts, errors)."""
    response = service.post(BATCH, body)
    result = expect_json(response, 200, f"batch consolidation (POST {BATCH} {body})")
    problems = schema_problems(result, BATCH_FIELDS)
    if problems:
        raise ServiceResponseError(
            f"batch consolidation (POST {BATCH} {body}): {'; '.join(problems)}\n  body: {result!r}"
        )
    return dict(result)


def tend_garden(service: ServiceClient, body: dict[str, Any]) -> dict[str, Any]:
    path = "/api/memory/tend-garden"
    result = expect_json(service.post(path, body), 200, f"tend the memory garden (POST {path} {body})")
    if not isinstance(result, dict):
        raise ServiceResponseError(f"POST {path}: expected a JSON object, got {result!r}")
    return result


def _get_checked(
    service: ServiceClient, path: str, fields: dict[str, type | tuple[type, ...]], what: str, **params: Any
) -> dict[str, Any]:
    """GET a JSON object whose named fields must be there with the right types."""
    body = expect_json(service.get(path, params=params or None), 200, f"{what} (GET {path})")
    problems = schema_problems(body, fields)
    if problems:
        raise ServiceResponseError(f"GET {path} {params or ''}: {'; '.join(problems)}\n  body: {body!r}")
    return dict(body)


def user_stats(service: ServiceClient) -> dict[str, Any]:
    return _get_checked(
        service, "/api/memory/user/stats", {"preferences": dict, "concepts": dict}, "memory stats"
    )


def search_messages(service: ServiceClient, query: str) -> list[dict[str, Any]]:
    body = _get_checked(service, "/api/memory/search", {"results": list}, "message search", q=query, limit=50)
    return list(body["results"])


def search_concepts(service: ServiceClient, query: str) -> list[dict[str, Any]]:
    body = _get_checked(
        service, "/api/memory/concepts/search", {"results": list}, "concept search", q=query, limit=20
    )
    return list(body["results"])
