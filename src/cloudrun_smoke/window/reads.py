"""What the window checks read, once each, and what reading it cost (the cost is part of the answer)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from cloudrun_smoke.config.schema import Environment
from cloudrun_smoke.errors import SmokeError
from cloudrun_smoke.gcp.discovery import Target
from cloudrun_smoke.logs.patterns import catalogue_with
from cloudrun_smoke.timeutil import format_rfc3339
from cloudrun_smoke.window.consolidations import ConsolidationStats, consolidation_stats
from cloudrun_smoke.window.logs import Read, WindowLogReader
from cloudrun_smoke.window.monitoring import MetricReader
from cloudrun_smoke.window.period import Window


@dataclass
class WindowState:
    """What the window checks of this run read, for the summary: the cost is part of the answer."""

    window: Window
    metrics: MetricReader | None = None
    logs: WindowLogReader | None = None
    traffic: str = ""
    capped: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """For the JSON verdict: the window judged and what judging it cost in API reads."""
        return {
            "start": format_rfc3339(self.window.start),
            "end": format_rfc3339(self.window.end),
            "metrics_end": None if self.window.metrics_skipped else format_rfc3339(self.window.metrics_end),
            "metrics_skipped": self.window.metrics_skipped,
            "list_time_series_calls": self.metrics.calls if self.metrics else 0,
            "entries_list_pages": self.logs.pages if self.logs else 0,
            "capped": list(self.capped),
        }

    def describe(self) -> list[str]:
        cost = self.as_dict()
        lines = [f"window: {self.window.describe()}", f"  {self.window.describe_metrics()}"]
        lines.append(
            f"window reads: ListTimeSeries calls: {cost['list_time_series_calls']}; "
            f"entries:list pages: {cost['entries_list_pages']}"
        )
        lines += [f"window read capped: {what}" for what in self.capped]
        if self.traffic:
            lines += self.traffic.splitlines()
        return lines


def scope_revision(target: Target) -> str:
    """Only a targeted candidate narrows the scope to its revision; by default, the whole service."""
    return target.revision if target.is_candidate else ""


def still_serving(target: Target) -> frozenset[str]:
    """Revisions whose instances may still run: traffic or a tag."""
    return frozenset(t.revision for t in target.traffic if t.revision and (t.percent or t.tag))


class LogFigures:
    """The window's two log reads, each done once and shared by the checks that use it."""

    def __init__(
        self, reader: WindowLogReader, env: Environment, state: WindowState, still_serving: frozenset[str]
    ) -> None:
        self.reader = reader
        self._still_serving = still_serving  # revisions whose instances may still run: traffic or a tag
        self._env = env
        self._state = state
        self._catalogue = catalogue_with(env.patterns)
        self._archive: Read | None = None
        self._app: tuple[Read, ConsolidationStats] | None = None

    def archive_latencies(self) -> Read:
        if self._archive is None:
            self._archive = self._noted(self._call(self.reader.archive_latencies), "archive requests")
        return self._archive

    def consolidations(self) -> tuple[Read, ConsolidationStats]:
        if self._app is None:
            read = self._noted(self._call(lambda: self.reader.app_lines(self._catalogue)), "service lines")
            stats = consolidation_stats(
                read.items,
                self._catalogue,
                end=self.reader.window.end,
                grace=self._env.window.pending_grace_s,
                still_serving=self._still_serving,
            )
            self._app = (read, stats)
        return self._app

    def _noted(self, read: Read, what: str) -> Read:
        if read.capped:
            self._state.capped += (f"{what}: {read.pages} pages of 1000 entries (max_log_pages)",)
        return read

    @staticmethod
    def _call(read: Any) -> Read:
        try:
            result: Read = read()
        except SmokeError as e:
            pytest.fail(str(e), pytrace=False)
        return result
