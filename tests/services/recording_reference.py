"""The reference service, recording every request it receives (same argv as ``python -m
emergence_reference``).

Each request appends one JSON line to the file named by ``$RECORD_REQUESTS_TO``: method, path, and
the headers a test judges the suite by (``X-Smoke-Run-Id``, ``User-Agent``). Nothing else: no token,
no body. What the service really received, not what the client meant to send.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import emergence_reference.app as reference_app
from emergence_reference.__main__ import main

RECORD_VAR = "RECORD_REQUESTS_TO"
RECORDED_HEADERS = ("x-smoke-run-id", "user-agent")
_LOCK = threading.Lock()


def create_app(settings: Any) -> Any:
    app = ORIGINAL_CREATE_APP(settings)
    path = os.environ[RECORD_VAR]

    @app.middleware("http")
    async def record(request: Any, call_next: Callable[[Any], Awaitable[Any]]) -> Any:
        entry = {"method": request.method, "path": request.url.path}
        entry.update({h: request.headers.get(h) for h in RECORDED_HEADERS})
        with _LOCK, open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(entry) + "\n")
        return await call_next(request)

    return app


ORIGINAL_CREATE_APP = reference_app.create_app
reference_app.create_app = create_app

if __name__ == "__main__":
    sys.exit(main())
