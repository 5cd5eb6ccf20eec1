"""How a failing check reads when the harness has already diagnosed the failure.

A check that fails because the service answered badly, an expected log line never came or a wait ran
out carries the whole diagnosis in its message. Pytest's default report would add every frame down
into the harness, the HTTP client and the log watcher, with their arguments: for those failures the
report keeps only the project's own frames (the checks and scenarios), in pytest's short style, then
the message. ``--tb`` other than the default, and ``--fulltrace``, still show everything.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from cloudrun_smoke.logs.expectations import LogExpectationFailed
from cloudrun_smoke.service.http import ServiceResponseError
from cloudrun_smoke.waiting import WaitTimeout

DIAGNOSED = (ServiceResponseError, LogExpectationFailed, WaitTimeout)
HARNESS = Path(__file__).resolve().parent
INSTALLED = (Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve())  # libraries, stdlib, pytest


def compact(item: pytest.Item, excinfo: pytest.ExceptionInfo[BaseException]) -> Any | None:
    """The short report of a diagnosed failure, or None to keep pytest's own."""
    if not excinfo.errisinstance(DIAGNOSED):
        return None
    config = item.config
    if config.getoption("tbstyle", "auto") != "auto" or config.getoption("fulltrace", False):
        return None
    root = Path(str(config.rootpath)).resolve()

    def project_frames(info: pytest.ExceptionInfo[BaseException]) -> Any:
        shown = info.traceback.filter(info)  # honours __tracebackhide__
        ours = shown.filter(lambda entry: _in_project(Path(str(entry.path)), root))
        return ours if len(ours) else shown

    return excinfo.getrepr(style="short", tbfilter=project_frames, chain=False)


def _in_project(path: Path, root: Path) -> bool:
    try:
        resolved = path.resolve()
    except (OSError, ValueError):
        return False
    if resolved.is_relative_to(HARNESS) or any(resolved.is_relative_to(p) for p in INSTALLED):
        return False
    return resolved.is_relative_to(root)
