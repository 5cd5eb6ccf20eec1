"""``cloudrun-smoke local up`` in a subprocess, read until its banner says ``ready:``."""

from __future__ import annotations

import queue
import re
import subprocess
import sys
import threading
from dataclasses import dataclass

from cloudrun_smoke.waiting import wait_until
from helpers.paths import ROOT

CLI = [sys.executable, "-m", "cloudrun_smoke.cli"]


@dataclass
class Up:
    process: subprocess.Popen[str]
    banner: str
    lines: queue.Queue[str]

    def field(self, label: str) -> str:
        match = re.search(rf"^\s+{re.escape(label)}\s+(\S+)$", self.banner, re.M)
        assert match, f"{label!r} not in:\n{self.banner}"
        return match.group(1)

    @property
    def pids(self) -> list[int]:
        return [int(p) for p in re.findall(r"^\s+instance \w+ pid (\d+)$", self.banner, re.M)]


def local_up(*args: str) -> Up:
    process = subprocess.Popen(
        [*CLI, "local", "up", "--ingestion-delay", "0.05", "--ingestion-jitter", "0", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)
        lines.put("")

    threading.Thread(target=pump, daemon=True).start()
    banner: list[str] = []

    def ready() -> bool | None:
        while True:
            try:
                line = lines.get_nowait()
            except queue.Empty:
                return None
            banner.append(line)
            if line == "" or line.startswith("ready:"):
                return True

    wait_until(ready, timeout=30, what="`local up` to print its endpoints", interval=0.05)
    assert banner[-1].startswith("ready:"), "".join(banner)
    return Up(process, "".join(banner), lines)
