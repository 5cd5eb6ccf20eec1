"""Revision instances: any command run with Cloud Run's container contract.

The process gets ``PORT``, ``K_SERVICE``, ``K_REVISION`` and ``K_CONFIGURATION``, must listen on
``PORT`` before a startup deadline (Cloud Run's default TCP startup probe), and never outlives the
stack: it runs in its own process group, which is terminated on stop, and is told by the kernel to
die with its parent if the stack's process is killed outright. When the process exits on its own (a
crash), whatever it started in its group is killed with it; a :class:`Watchdog` covers the group if
the stack's process itself is killed.

With ``cpu_idle`` (Cloud Run's request-based billing: CPU "only allocated during request processing",
container startup and shutdown), the group is frozen with SIGSTOP whenever no request is in flight once
the instance listens, and thawed with SIGCONT when a request reaches it; SIGCONT always comes before
SIGTERM, so a shutdown gets its grace period with CPU.

Cloud Run's container runtime contract, "Instance shutdown"
(https://cloud.google.com/run/docs/container-contract#instance-shutdown): an instance is sent SIGTERM and,
if it has not exited 10 s later, SIGKILL (:data:`SHUTDOWN_GRACE_S`).
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence

from cloudrun_smoke.local.watchdog import Watchdog

SHUTDOWN_GRACE_S = 10.0  # Cloud Run: SIGKILL 10 s after SIGTERM

LineSink = Callable[[str, str], None]
ExitSink = Callable[["RevisionInstance", int], None]


class RevisionStartError(RuntimeError):
    """The revision never became ready; the message carries the process's last output."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def parse_command(command: str | Sequence[str]) -> list[str]:
    """A command string is split like a shell would; ``python`` means this interpreter."""
    argv = shlex.split(command) if isinstance(command, str) else list(command)
    if not argv:
        raise ValueError("the service command is empty")
    if argv[0] in ("python", "python3"):
        argv[0] = sys.executable
    # Each instance runs in its own directory: paths the user gave relative to where the stack was
    # started (``python tests/services/x.py``) are made absolute so that they still resolve.
    return [_absolute_if_local(arg) for arg in argv]


def _absolute_if_local(arg: str) -> str:
    if arg.startswith("-") or os.path.isabs(arg) or ("/" not in arg and not arg.endswith(".py")):
        return arg
    return os.path.abspath(arg) if os.path.exists(arg) else arg


_SETPRIV = shutil.which("setpriv") if sys.platform.startswith("linux") else None


def dying_with_parent(argv: Sequence[str]) -> list[str]:
    """``argv`` run so that the kernel kills it when the stack's process dies (``PR_SET_PDEATHSIG``).

    Set by util-linux's ``setpriv`` as it execs the command (same pid), not by a ``preexec_fn``: Python
    code between fork and exec runs gRPC's fork handlers in the child, and with the Monitoring
    emulator's threads busy in gRPC the child aborted before exec ("epoll_wait error: Bad file
    descriptor", 1 start in about 30 beside other stacks). Without ``setpriv`` the watchdog still
    answers for a killed stack.
    """
    if not _SETPRIV or not shutil.which(argv[0]):  # a command that cannot run fails in Popen, as before
        return list(argv)
    return [_SETPRIV, "--pdeathsig", "KILL", "--", *argv]


def stop_group(process: subprocess.Popen[bytes], grace: float) -> None:
    """As Cloud Run stops a container: SIGTERM to its whole process group, SIGKILL after ``grace``."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=grace)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=grace)


class RevisionInstance:
    """One instance (process) of a revision."""

    def __init__(
        self,
        command: str | Sequence[str],
        env: Mapping[str, str],
        on_line: LineSink,
        *,
        cwd: str | None = None,
        instance_id: str | None = None,
        tail_lines: int = 40,
        watchdog: Watchdog | None = None,
        on_exit: ExitSink | None = None,
        cpu_idle: bool = False,
    ) -> None:
        self.argv = parse_command(command)
        self.port = free_port()
        self.instance_id = instance_id or uuid.uuid4().hex
        self._env = {**os.environ, **env, "PORT": str(self.port), "PYTHONUNBUFFERED": "1"}
        self._on_line = on_line
        self._cwd = cwd
        self._tail: deque[str] = deque(maxlen=tail_lines)
        self._process: subprocess.Popen[bytes] | None = None
        self._pumps: list[threading.Thread] = []
        self._watchdog = watchdog
        self._on_exit = on_exit
        self._stopping = False
        self._retiring = False
        self.cpu_idle = cpu_idle
        self._in_flight = 0
        self._frozen = False
        self._cpu_lock = threading.Lock()
        self._last_active = time.monotonic()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    @property
    def returncode(self) -> int | None:
        """The exit status once ended (negative: the signal that ended it)."""
        return self._process.poll() if self._process else None

    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def stopping(self) -> bool:
        """Told to stop (SIGTERM sent or about to be): no request may be routed to it any more."""
        return self._stopping or self._retiring

    def mark_stopping(self) -> None:
        """About to be stopped: the front end routes nothing more to it (``stop`` sends the signals)."""
        self._retiring = True

    def idle_for(self) -> float:
        """Seconds since its last request ended; 0 while one is in flight."""
        with self._cpu_lock:
            return 0.0 if self._in_flight else time.monotonic() - self._last_active

    def tail(self) -> list[str]:
        return list(self._tail)

    def start(self, startup_timeout: float) -> None:
        try:
            self._process = subprocess.Popen(
                dying_with_parent(self.argv),
                env=self._env,
                cwd=self._cwd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
        except OSError as e:
            raise RevisionStartError(
                f"cannot start revision command {shlex.join(self.argv)!r}: {e}"
            ) from None
        for stream, pipe in (("stdout", self._process.stdout), ("stderr", self._process.stderr)):
            pump = threading.Thread(
                target=self._pump, args=(stream, pipe), daemon=True, name=f"pump-{stream}"
            )
            pump.start()
            self._pumps.append(pump)
        if self._watchdog is not None:
            self._watchdog.adopt(self._process.pid)
        threading.Thread(target=self._reap, daemon=True, name=f"reap-{self._process.pid}").start()
        self._wait_until_listening(startup_timeout)
        with self._cpu_lock:  # started: from now on CPU only while a request is served
            self._signal_cpu()

    # -- CPU only during requests (cpu_idle) -----------------------------------------------------------
    @property
    def frozen(self) -> bool:
        return self._frozen

    @contextlib.contextmanager
    def serving(self) -> Iterator[None]:
        """One request in flight: the instance has CPU from before it is forwarded until it is answered."""
        with self._cpu_lock:
            self._in_flight += 1
            self._signal_cpu()
        try:
            yield
        finally:
            with self._cpu_lock:
                self._in_flight -= 1
                self._last_active = time.monotonic()
                self._signal_cpu()

    def _signal_cpu(self) -> None:
        """Freeze or thaw the group to match the state (call with ``_cpu_lock`` held)."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        freeze = self.cpu_idle and self._in_flight == 0 and not self._stopping
        if freeze == self._frozen:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGSTOP if freeze else signal.SIGCONT)
        self._frozen = freeze

    def _reap(self) -> None:
        """When the process ends, nothing it started may outlive it: kill the rest of its group."""
        process = self._process
        assert process is not None
        code = process.wait()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        if self._watchdog is not None:
            self._watchdog.release(process.pid)
        if self._on_exit is not None and not self._stopping:
            with contextlib.suppress(Exception):
                self._on_exit(self, code)

    def _pump(self, stream: str, pipe: object) -> None:
        for raw in iter(pipe.readline, b""):  # type: ignore[attr-defined]
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            self._tail.append(f"[{stream}] {line}")
            with contextlib.suppress(Exception):
                self._on_line(stream, line)

    def _wait_until_listening(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        assert self._process is not None
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                self._join_pumps()
                raise RevisionStartError(
                    self._explain(f"exited with code {self._process.returncode} before listening")
                )
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RevisionStartError(self._explain(f"did not listen on port {self.port} within {timeout:g} s"))

    def _explain(self, what: str) -> str:
        tail = "\n".join(f"    {line}" for line in self.tail()[-15:]) or "    (no output)"
        return f"revision command {shlex.join(self.argv)!r} {what}. Last output:\n{tail}"

    def _join_pumps(self) -> None:
        for pump in self._pumps:
            pump.join(timeout=2)

    def stop(self, grace: float = 5.0) -> None:
        """SIGTERM to the whole process group (Cloud Run's shutdown signal), SIGKILL after the grace."""
        process = self._process
        if process is None:
            return
        with self._cpu_lock:
            already, self._stopping = self._stopping, True
            self._signal_cpu()  # a frozen group is thawed first: the grace period runs with CPU
        if already:  # a second SIGTERM would cut the first one's grace short (uvicorn exits at once)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=SHUTDOWN_GRACE_S + grace)
            return
        stop_group(process, grace)
        self._join_pumps()
