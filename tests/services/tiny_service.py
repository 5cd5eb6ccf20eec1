"""A minimal Cloud Run-style service for the stack's own tests.

It listens on $PORT, logs its Cloud Run environment on stderr (plain text) and a structured JSON line
on stdout, echoes request paths to stderr, and exits on ``/exit`` (a crash, for the no-orphan tests).
Modes from argv: ``--exit-at-start`` dies before listening; ``--never-listen`` never binds.
"""

from __future__ import annotations

import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, HTTPServer


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        print(f"request {self.path}", file=sys.stderr, flush=True)
        if self.path == "/exit":
            os._exit(3)
        body = json.dumps({"path": self.path, "pid": os.getpid()}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def main() -> None:
    if "--exit-at-start" in sys.argv:
        print("fatal: cannot open the database", file=sys.stderr, flush=True)
        sys.exit(1)
    k = {name: os.environ.get(name, "") for name in ("PORT", "K_SERVICE", "K_REVISION", "K_CONFIGURATION")}
    print("starting with " + " ".join(f"{n}={v}" for n, v in k.items()), file=sys.stderr, flush=True)
    print(
        json.dumps(
            {
                "severity": "WARNING",
                "message": "structured hello",
                "component": "tiny",
                "logging.googleapis.com/labels": {"run.googleapis.com/x": "y"},
                "logging.googleapis.com/trace": "projects/p/traces/abc",
            }
        ),
        flush=True,
    )
    if "--never-listen" in sys.argv:
        while True:
            time.sleep(60)
    HTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()


if __name__ == "__main__":
    main()
