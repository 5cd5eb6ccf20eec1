"""A Cloud Run-style service that answers every request badly, one way per mode (argv).

``--unauthorized``: 401 with a JSON ``detail`` (the app's auth refuses the smoke user).
``--html``: 200 ``text/html`` (a default web server page where the API should be).
``--truncated``: 200 JSON whose ``Content-Length`` promises more than is sent; then the connection closes.
``--hang``: reads the request and never answers (until SIGTERM).

It listens on $PORT like any revision, so that the local stack's front end stands between it and the
suite exactly as Cloud Run would.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODES = ("--unauthorized", "--html", "--truncated", "--hang")
HTML = b"""<!DOCTYPE html>
<html>
<head><title>Welcome to nginx!</title></head>
<body>
<h1>Welcome to nginx!</h1>
<p>If you see this page, the nginx web server is successfully installed and working.</p>
</body>
</html>
"""
NEVER = threading.Event()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    mode = ""

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        print(f"{self.command} {self.path} ({self.mode})", file=sys.stderr, flush=True)
        if self.mode == "--hang":
            NEVER.wait()
        elif self.mode == "--unauthorized":
            self._send(401, "application/json", json.dumps({"detail": "Not authenticated"}).encode())
        elif self.mode == "--html":
            self._send(200, "text/html; charset=utf-8", HTML)
        else:
            body = json.dumps({"status": "ok", "message": "this body is cut short"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body) + 1000))
            self.end_headers()
            self.wfile.write(body[:20])
            self.wfile.flush()
            self.close_connection = True

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if status == 401:
            self.send_header("WWW-Authenticate", "Bearer")
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _answer

    def log_message(self, format: str, *args: object) -> None:
        pass


def main() -> None:
    modes = [a for a in sys.argv[1:] if a in MODES]
    if len(modes) != 1:
        sys.exit(f"usage: misbehaving_service.py {{{'|'.join(MODES)}}}")
    Handler.mode = modes[0]
    server = ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
