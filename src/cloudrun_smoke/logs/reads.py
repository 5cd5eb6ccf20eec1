"""What the watcher's reads have done: the run's counts (for the summary and the verdict) and the
search in progress (a poll paged until Cloud Logging answers no ``nextPageToken``)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from cloudrun_smoke.logs.ingestion_lag import line_lag
from cloudrun_smoke.logs.lines import LogLine


@dataclass
class WatcherStats:
    reads: int = 0  # entries:list requests sent (one per page), failed ones included
    throttled: int = 0
    polls: int = 0  # searches read to their last page, plus pages that failed (what refresh() waits on)
    read_times: list[float] = field(default_factory=list)  # wall clock of each request, when sent
    empty_pages: int = 0  # pages with no entries but a nextPageToken: the search asked to continue
    max_lag_seconds: float = 0.0
    lags: list[float] = field(default_factory=list)  # of every line read, as far as measured

    def count_lags(self, fresh: Iterable[LogLine], last: Search | None) -> None:
        """Measure the ingestion lag of lines read for the first time; ``last``: the last search read
        to its end, which did not return them."""
        for line in fresh:
            covered = last is not None and last.since <= line.timestamp
            lag = line_lag(line, last.started_at if last is not None and covered else None)
            if lag is not None:
                self.max_lag_seconds = max(self.max_lag_seconds, lag)
                self.lags.append(lag)


@dataclass
class Search:
    """A poll in progress: one filter, paged until Cloud Logging answers no ``nextPageToken``."""

    filter: str
    started: float  # watcher clock, when its first page was paid for
    since: datetime  # the filter's lower bound on timestamps
    started_at: datetime  # wall clock of ``started``: a line it did not return was not readable then
    token: str | None = None
    pages: int = 0
    empty_in_a_row: int = 0  # the last pages came back empty but with a token

    def unfinished(self) -> str:
        """What the failure of a wait must say when this search had not ended."""
        if not self.empty_in_a_row:
            return f"the read in progress had {self.pages} page(s) and more to come"
        return (
            f"the read in progress got {self.empty_in_a_row} empty page(s) in a row, each with a "
            "nextPageToken: Cloud Logging had not finished searching and asked to continue the search "
            "(ListLogEntriesResponse), so lines beyond them were not seen yet. A shorter time range "
            "searches faster (log_lookback), or allow more time (log_deadline)"
        )
