"""State shared by every instance: one Chroma server and one SQLite file, as production's
``CHROMA_HOST`` and ``DATABASE_URL`` give a multi-instance revision.

The Chroma server is ``chroma run`` from the installed ``chromadb`` package, started like a revision
instance: its own process group, killed by the kernel if the stack's process dies
(``PR_SET_PDEATHSIG``), adopted by the stack's watchdog for whatever it leaves behind, and ready once
its heartbeat (``GET /api/v2/heartbeat``) answers. The SQLite file is only a path: each instance opens
it in WAL mode with a busy timeout (see ``emergence_reference.store``).

Sources: Cloud Run's container runtime contract, "Filesystem access" (each instance's writable
filesystem is in memory, its own: https://cloud.google.com/run/docs/container-contract#filesystem);
Chroma's "Run a Chroma Server" (``chroma run --path --host --port``, ``HttpClient``:
https://docs.trychroma.com/docs/cli/run).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from cloudrun_smoke.local.runner import RevisionStartError, dying_with_parent, free_port, stop_group
from cloudrun_smoke.local.watchdog import Watchdog

DB_FILENAME = "shared.db"
HEARTBEAT_PATH = "/api/v2/heartbeat"
# `chroma` is a console script of the chromadb package; run through this interpreter, it needs no PATH.
_CHROMA_MAIN = "import sys; from chromadb.cli.cli import app; sys.argv[0] = 'chroma'; app()"


class SharedState:
    """Start with :meth:`start`, hand :meth:`env` to every instance, :meth:`stop` after the instances."""

    def __init__(self, workdir: Path, watchdog: Watchdog | None = None) -> None:
        self.workdir = workdir / "shared-state"
        self.db_path = self.workdir / DB_FILENAME
        self.port = free_port()
        self._watchdog = watchdog
        self._process: subprocess.Popen[bytes] | None = None
        self._log = self.workdir / "chroma.log"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    @property
    def chroma_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        """What every instance gets, as a revision's env vars (SQLAlchemy's ``sqlite:///`` + path)."""
        return {
            "DATABASE_URL": f"sqlite:///{self.db_path}",
            "CHROMA_HOST": "127.0.0.1",
            "CHROMA_PORT": str(self.port),
        }

    def start(self, timeout: float) -> SharedState:
        self.workdir.mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, "-c", _CHROMA_MAIN, "run", "--path", str(self.workdir / "chroma")]
        argv += ["--host", "127.0.0.1", "--port", str(self.port)]
        with self._log.open("wb") as log:
            try:
                self._process = subprocess.Popen(
                    dying_with_parent(argv),
                    env={**os.environ, "ANONYMIZED_TELEMETRY": "False"},
                    cwd=self.workdir,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            except OSError as e:
                raise RevisionStartError(f"cannot start the shared Chroma server: {e}") from None
        if self._watchdog is not None:
            self._watchdog.adopt(self._process.pid)
        self._wait_for_heartbeat(timeout)
        return self

    def _wait_for_heartbeat(self, timeout: float) -> None:
        assert self._process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RevisionStartError(self._explain(f"exited with code {self._process.returncode}"))
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.chroma_url + HEARTBEAT_PATH, timeout=1.0).status_code == 200:
                    return
            time.sleep(0.1)
        self.stop()
        raise RevisionStartError(self._explain(f"did not answer GET {HEARTBEAT_PATH} within {timeout:g} s"))

    def _explain(self, what: str) -> str:
        lines = self._log.read_text(errors="replace").splitlines()[-15:] if self._log.exists() else []
        tail = "\n".join(f"    {line}" for line in lines) or "    (no output)"
        return f"the shared Chroma server (chroma run, port {self.port}) {what}. Last output:\n{tail}"

    def stop(self, grace: float = 5.0) -> None:
        """SIGTERM to its group, SIGKILL after the grace; then the watchdog may forget it."""
        process = self._process
        if process is None:
            return
        stop_group(process, grace)
        if self._watchdog is not None:
            self._watchdog.release(process.pid)
