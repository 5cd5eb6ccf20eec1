"""Resource usage of a process tree, read from Linux's /proc (no psutil).

A revision instance is a process group: the command, and whatever it starts. Cloud Run measures the
container, so the figures here cover the process and all its descendants.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def available() -> bool:
    return (PROC / "self" / "stat").is_file()


@dataclass(frozen=True)
class TreeUsage:
    """Resident memory and CPU time consumed so far by a process and its descendants."""

    rss_bytes: int
    cpu_seconds: float
    processes: int


@dataclass(frozen=True)
class _Stat:
    ppid: int
    cpu_ticks: int  # utime + stime + cutime + cstime: reaped children are counted once, by their reaper
    rss_pages: int


def _stat(pid: int) -> _Stat | None:
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces or ')': split after the last one.
    fields = text[text.rfind(")") + 2 :].split()
    try:
        # man 5 proc: ppid is field 4, utime..cstime fields 14-17, rss field 24 (fields[0] is field 3).
        ticks = sum(int(f) for f in fields[11:15])
        return _Stat(ppid=int(fields[1]), cpu_ticks=ticks, rss_pages=int(fields[21]))
    except (IndexError, ValueError):
        return None


def _has_children_files() -> bool:
    """/proc/PID/task/TID/children needs CONFIG_PROC_CHILDREN; without it the tree is found by a scan."""
    with contextlib.suppress(OSError):
        return any((task / "children").is_file() for task in (PROC / "self" / "task").iterdir())
    return False


def _children(pid: int) -> list[int]:
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in (PROC / str(pid) / "task").iterdir():
            with contextlib.suppress(OSError, ValueError):  # the thread ended meanwhile
                found += [int(c) for c in (task / "children").read_text().split()]
    return found


def _descendants_by_scan(root: int) -> list[int]:
    parents: dict[int, list[int]] = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            stat = _stat(int(entry.name))
            if stat is not None:
                parents.setdefault(stat.ppid, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        children = parents.get(todo.pop(), [])
        found += children
        todo += children
    return found


def descendants(root: int) -> list[int]:
    if not _HAS_CHILDREN:
        return _descendants_by_scan(root)
    found: list[int] = []
    todo = [root]
    while todo:
        children = _children(todo.pop())
        found += children
        todo += children
    return found


def tree_usage(root: int) -> TreeUsage | None:
    """Usage of ``root`` and its descendants; None when ``root`` is gone."""
    top = _stat(root)
    if top is None:
        return None
    rss, ticks, count = top.rss_pages, top.cpu_ticks, 1
    for stat in (_stat(pid) for pid in descendants(root)):
        if stat is not None:
            rss, ticks, count = rss + stat.rss_pages, ticks + stat.cpu_ticks, count + 1
    return TreeUsage(rss * _PAGE_SIZE, ticks / _TICKS_PER_SECOND, count)


_HAS_CHILDREN = _has_children_files()
