"""helpers.ahead.MachineShare: a run that measures the machine runs with no other run beside it, and
is not starved by runs that ask after it."""

from __future__ import annotations

import fcntl
import threading
from pathlib import Path

from cloudrun_smoke.waiting import wait_until
from helpers.ahead import MachineShare


class Holder(threading.Thread):
    """Holds the machine (alone or shared) from start until ``release`` is set."""

    def __init__(self, share: MachineShare, alone: bool) -> None:
        super().__init__(daemon=True)
        self.share, self.alone = share, alone
        self.inside, self.release = threading.Event(), threading.Event()

    def run(self) -> None:
        with self.share.hold(self.alone):
            self.inside.set()
            self.release.wait(30)


def turnstile_taken(folder: Path) -> bool | None:
    with (folder / "turnstile.lock").open("a") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        return None  # closing the file releases it


def test_a_lone_run_waits_for_the_runs_in_flight_and_the_next_ones_wait_for_it(tmp_path: Path) -> None:
    share = MachineShare(tmp_path)
    first, second = Holder(share, alone=False), Holder(share, alone=False)
    first.start()
    second.start()
    for holder in (first, second):  # shared: both at once
        assert holder.inside.wait(10), "two shared runs did not run side by side"

    lone = Holder(share, alone=True)
    lone.start()
    wait_until(
        lambda: turnstile_taken(tmp_path), timeout=10, what="the lone run at the turnstile", interval=0.05
    )
    assert not lone.inside.is_set(), "the lone run started beside two runs in flight"
    later = Holder(share, alone=False)
    later.start()  # asks after the lone run: must not slip in before it

    first.release.set()
    first.join(10)
    assert not lone.inside.is_set(), "the lone run started beside a run in flight"
    second.release.set()
    assert lone.inside.wait(10), "the lone run never started once the others ended"
    assert not later.inside.is_set(), "a run started beside the lone one"
    lone.release.set()
    assert later.inside.wait(10), "the run after the lone one never started"
    later.release.set()
    for holder in (lone, later):
        holder.join(10)
