"""The reference service, writing hostile log lines while it works (same argv as ``python -m
emergence_reference``).

On each of the first two archive requests (``PATCH /api/threads/ID``) it writes, beside its usual
lines: a 2 MB plain-text ERROR line naming the thread, a 200 KB ``jsonPayload``, a line of invalid
UTF-8 with terminal escape sequences and control characters (also at ERROR, naming the thread), and
JSON lines that are not objects. The service itself behaves correctly, so only the check that judges
ERROR lines naming the run may fail; every other line must still be found.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import emergence_reference.app as reference_app
from emergence_reference.__main__ import main

HUGE_TEXT = 2_000_000
BIG_JSON = 200_000
NOISY_ARCHIVES = 2


def hostile_lines(thread_id: str) -> list[tuple[Any, bytes]]:
    """(stream, bytes) pairs, each one line."""
    tid = thread_id.encode()
    return [
        (
            sys.stderr,
            b"2026-01-01 00:00:00,000 ERROR [noisy] dump for thread " + tid + b": " + b"x" * HUGE_TEXT,
        ),
        (sys.stdout, json.dumps({"severity": "INFO", "thread": thread_id, "blob": "y" * BIG_JSON}).encode()),
        (
            sys.stderr,
            b"\x1b[2J\x1b[31m ERROR \x1b[0m garbled \xff\xfe\xc3\x28 thread "
            + tid
            + b" \x00\x01\x07\x08\x9b\rover",
        ),
        (sys.stdout, b'["not", "an", "object"]'),
        (sys.stdout, b'"a JSON string"'),
        (sys.stdout, b"42"),
        (sys.stdout, b'{"message": "unterminated'),
    ]


def write_whole_lines(lines: list[tuple[Any, bytes]]) -> None:
    """Holding every logging handler's lock: a line of another thread must not land inside ours."""
    handlers = {
        h
        for name in ("", "uvicorn", "uvicorn.error", "uvicorn.access")
        for h in logging.getLogger(name).handlers
    }
    for handler in handlers:
        handler.acquire()
    try:
        for stream, line in lines:
            stream.flush()
            stream.buffer.write(line + b"\n")
            stream.buffer.flush()
    finally:
        for handler in handlers:
            handler.release()


def create_app(settings: Any) -> Any:
    app = ORIGINAL_CREATE_APP(settings)
    noisy = {"left": NOISY_ARCHIVES}

    @app.middleware("http")
    async def write_hostile_lines(request: Any, call_next: Callable[[Any], Awaitable[Any]]) -> Any:
        response = await call_next(request)
        path = request.url.path
        if request.method == "PATCH" and path.startswith("/api/threads/") and noisy["left"] > 0:
            noisy["left"] -= 1
            write_whole_lines(hostile_lines(path.rsplit("/", 1)[-1]))
        return response

    return app


ORIGINAL_CREATE_APP = reference_app.create_app
reference_app.create_app = create_app

if __name__ == "__main__":
    sys.exit(main())
