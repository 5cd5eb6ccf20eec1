"""Suite runs started ahead of the tests that judge them, shared out between the xdist workers.

A run of the suite on the local stack spends about half its wall time waiting (log lines surfacing,
the service's queue, deadlines that must pass): two workers running one such test each leave the
machine half idle (the fault catalogue at ``-n 2``: 47 % of two cores busy; at four runs at once,
75 % and 0.67 x the time). A test marked ``@pytest.mark.suite_run(plan=...)`` gets its run from
:class:`RunsAhead`: each worker keeps :data:`AT_ONCE` runs of the marked tests in flight, taken in
collection order, each claimed once across the workers (a file created exclusively in the session's
shared temporary folder) and its result left there for whichever worker judges it. Each run is still
its own stack, service and folder: nothing is shared between runs but the machine.

``plan(folder, **params)`` makes the run from the test's parameters alone (its ``callspec``), so that
it can start before the test does, on any worker. ``alone(**params)`` (or ``alone=True``) names the runs
that measure the machine itself (a CPU burn judged against a CPU limit): such a run waits until no other
run is in flight on any worker, and none starts beside it (:class:`MachineShare`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from cloudrun_smoke.waiting import wait_until
from helpers.smoke_runs import SuiteRun, run_smoke

AT_ONCE = 2  # runs in flight per worker: with `-n 2`, four at most
MARK = "suite_run"
WAIT_S = 900.0  # a run claimed by another worker: its longest run (run_smoke's 300 s) and a margin
Plan = Callable[..., SuiteRun]
RESULT, FAILED = "result.json", "failed.txt"  # in a run's folder, for the worker that judges it


def smoke(*args: str, env: dict[str, str] | None = None) -> Plan:
    """The plan of a test without parameters: ``pytest smoke/ ARGS`` with ``env`` (helpers.smoke_runs)."""
    return lambda folder: run_smoke(folder, *args, env=env)


class MachineShare:
    """Runs share the machine (a shared lock on ``machine.lock``) but for one that takes it alone (the
    exclusive lock). A run about to start first passes ``turnstile.lock``, which the lone run holds while
    it waits for the runs in flight to end: no new run slips in meanwhile and starves it. Locks of
    ``flock(2)``, so that they hold across the workers' processes and go with a worker that dies; each
    taken on a file opened for it, since two threads of one process holding one descriptor share its lock."""

    def __init__(self, folder: Path) -> None:
        self._machine, self._turnstile = folder / "machine.lock", folder / "turnstile.lock"

    @contextlib.contextmanager
    def hold(self, alone: bool) -> Iterator[None]:
        with self._locked(self._turnstile, fcntl.LOCK_EX):
            machine = self._take(self._machine, fcntl.LOCK_EX if alone else fcntl.LOCK_SH)
        try:
            yield
        finally:
            machine.close()  # releases the lock

    @contextlib.contextmanager
    def _locked(self, path: Path, mode: int) -> Iterator[None]:
        handle = self._take(path, mode)
        try:
            yield
        finally:
            handle.close()

    @staticmethod
    def _take(path: Path, mode: int) -> Any:
        handle = path.open("a")
        try:
            fcntl.flock(handle.fileno(), mode)
        except BaseException:
            handle.close()
            raise
        return handle


@dataclass(frozen=True)
class AheadRun:
    run: SuiteRun
    folder: Path  # the run's own folder (its reports, and any file its plan wrote)


def session_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The temporary folder of this test session that every xdist worker sees (the workers' own are
    ``popen-gwN`` in it); without xdist, the session's own."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


class RunsAhead:
    """One worker's share of the marked tests' runs. ``shared``: :func:`session_folder`."""

    def __init__(self, items: list[pytest.Item], shared: Path) -> None:
        self._items = [item for item in items if item.get_closest_marker(MARK)]
        self._shared = shared / "suite-runs-ahead"
        self._shared.mkdir(exist_ok=True)
        self._machine = MachineShare(self._shared)
        self._pool = ThreadPoolExecutor(AT_ONCE, thread_name_prefix="suite-run-ahead")
        self._mine: dict[str, Future[SuiteRun]] = {}  # claimed by this worker
        self._lock = threading.Lock()
        self._closed = False

    def result(self, item: pytest.Item) -> AheadRun:
        """This test's run: started now if nobody has, waited for wherever it runs."""
        with self._lock:
            self._claim(item)
            self._top_up()
        folder = self._folder(item)
        future = self._mine.get(item.nodeid)
        if future is not None:
            return AheadRun(future.result(), folder)
        done, failed = folder / RESULT, folder / FAILED
        what = f"the run of {item.nodeid} by another worker"
        wait_until(lambda: done.exists() or failed.exists() or None, timeout=WAIT_S, what=what)
        if not done.exists():
            raise RuntimeError(f"{what} failed: {failed.read_text()}")
        return AheadRun(SuiteRun(**json.loads(done.read_text())), folder)

    def close(self) -> None:
        """Runs not begun are dropped (a session stopped by -x): their tests will not ask."""
        with self._lock:
            self._closed = True
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _top_up(self) -> None:
        """Claims the next unclaimed runs, in collection order, until AT_ONCE of this worker's run."""
        for other in self._items:
            if sum(not f.done() for f in self._mine.values()) >= AT_ONCE:
                return
            self._claim(other)

    def _claim(self, item: pytest.Item) -> None:
        if self._closed or item.nodeid in self._mine:
            return
        folder = self._folder(item)
        try:
            folder.mkdir()  # atomic: exactly one worker creates it
        except FileExistsError:
            return
        marker = item.get_closest_marker(MARK)
        assert marker is not None
        plan: Plan = marker.kwargs["plan"]
        params: dict[str, Any] = dict(item.callspec.params) if hasattr(item, "callspec") else {}
        alone = marker.kwargs.get("alone", False)
        alone = bool(alone(**params) if callable(alone) else alone)
        future = self._pool.submit(self._run, plan, folder, params, alone)
        self._mine[item.nodeid] = future
        future.add_done_callback(lambda _: self._next())

    def _run(self, plan: Plan, folder: Path, params: dict[str, Any], alone: bool) -> SuiteRun:
        try:
            with self._machine.hold(alone):
                run = plan(folder, **params)
        except BaseException as e:
            (folder / FAILED).write_text(repr(e))
            raise
        partial = folder / f"{RESULT}.partial"
        partial.write_text(json.dumps(dataclasses.asdict(run)))
        os.replace(partial, folder / RESULT)  # whole or absent, for the worker that judges it
        return run

    def _next(self) -> None:
        with self._lock:
            self._top_up()

    def _folder(self, item: pytest.Item) -> Path:
        return self._shared / hashlib.sha1(item.nodeid.encode()).hexdigest()[:16]
