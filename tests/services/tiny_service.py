"""A minimal Cloud Run-style service for the stack's own tests.

It listens on $PORT, logs its Cloud Run environment on stderr (plain text) and a structured JSON line
on stdout, echoes request paths to stderr, and exits on ``/exit`` (a crash, for the no-orphan tests).
It holds state the way the public deployment does, per instance: ``POST /objects`` stores an object in
the instance's own directory, ``GET /objects/ID`` answers 404 on any other instance. ``GET /headers``
echoes the request headers it received, ``GET /env`` its environment. Modes from argv: ``--exit-at-start`` dies before listening;
``--never-listen`` never binds; ``--spawn-child`` starts a child process (``GET /child`` gives its
pid) to prove that nothing a revision starts outlives the stack.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

CHILD: subprocess.Popen[bytes] | None = None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _send(self, status: int, payload: object) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        print(f"request {self.path}", file=sys.stderr, flush=True)
        if self.path == "/exit":
            os._exit(3)
        if self.path == "/headers":
            self._send(200, {k.lower(): v for k, v in self.headers.items()})
        elif self.path == "/env":
            self._send(200, dict(os.environ))
        elif self.path == "/child":
            self._send(200, {"pid": CHILD.pid if CHILD else None})
        elif self.path.startswith("/objects/"):
            stored = Path("objects") / self.path.rsplit("/", 1)[-1]
            if stored.is_file():
                self._send(200, json.loads(stored.read_text()))
            else:
                self._send(404, {"detail": "not found"})
        else:
            self._send(
                200,
                {"path": self.path, "pid": os.getpid(), "revision": os.environ.get("K_REVISION", "")},
            )

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        data = json.loads(self.rfile.read(length) or b"{}")
        print(f"request POST {self.path}", file=sys.stderr, flush=True)
        if self.path != "/objects":
            self._send(404, {"detail": "not found"})
            return
        object_id = uuid.uuid4().hex
        Path("objects").mkdir(exist_ok=True)
        (Path("objects") / object_id).write_text(json.dumps({"id": object_id, "data": data}))
        self._send(201, {"id": object_id})

    def log_message(self, format: str, *args: object) -> None:
        pass


def main() -> None:
    global CHILD
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
    if "--spawn-child" in sys.argv:
        CHILD = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"])
    if "--never-listen" in sys.argv:
        while True:
            time.sleep(60)
    ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()


if __name__ == "__main__":
    main()
