"""Whether a process is still there, for the tests that prove no process outlives the stack."""

from __future__ import annotations

import os
from pathlib import Path


def alive(pid: int) -> bool:
    """Running (a zombie is dead for our purpose: it holds no resource but its exit status)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"
