"""The time window the post-deploy checks judge: ``--window 24h``, or since the serving revision was
created (capped, so a revision that has served for weeks is judged on its recent behaviour).

The end is always *now* for the log figures: the window checks answer "has this deploy behaved since it
went out?". The Monitoring figures end ``metric_delay`` earlier: Cloud Run samples its metrics every 60 s
and a sampled point may stay invisible for up to 180 s (Google Cloud metrics, "Sampled every 60 seconds.
After sampling, data is not visible for up to 180 seconds."), so a read up to now judges its last minutes
as empty. When that end falls before the window's start (right after a deploy), they are skipped.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from cloudrun_smoke.timeutil import format_rfc3339, utcnow

_DURATION = re.compile(r"(\d+)([smhd])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
LONGEST = timedelta(days=30)  # Cloud Logging's default retention: nothing older can be read


def parse_duration(text: str) -> timedelta:
    """``90s``, ``30m``, ``6h``, ``24h``, ``2d``; ``ValueError`` with one clear line otherwise."""
    match = _DURATION.fullmatch(text.strip())
    if not match or int(match.group(1)) == 0:
        raise ValueError(
            f"expected a duration such as 90s, 30m, 6h, 24h or 2d (a whole positive number and one of "
            f"s, m, h, d), got {text!r}"
        )
    duration = timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])
    if duration > LONGEST:
        raise ValueError(f"{text!r} is longer than 30d, Cloud Logging's default retention")
    return duration


def format_duration(duration: timedelta) -> str:
    """``1d 2h``, ``3h 5m``, ``4m 10s``, ``42s``: two units at most, for messages."""
    seconds = round(duration.total_seconds())
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size or (unit == "s" and not parts):
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return " ".join(parts[:2])


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime
    basis: str  # why these bounds, for messages: "--window 24h", "since revision R was created", ...
    metric_delay: timedelta = timedelta(0)  # the Monitoring figures end this much before ``end`` ...
    metrics_skipped: str = ""  # ... unless this says why they cannot be read at all

    @property
    def metrics_end(self) -> datetime:
        return self.end - self.metric_delay

    def metrics(self) -> Window:
        """The interval the Monitoring figures read: [start, end − metric_delay]."""
        if not self.metric_delay:
            return self
        basis = f"{self.basis}; ends metric_delay {format_duration(self.metric_delay)} before now"
        return Window(self.start, self.metrics_end, basis)

    @property
    def duration(self) -> timedelta:
        return self.end - self.start

    @property
    def seconds(self) -> int:
        """Whole seconds, at least 1: Cloud Monitoring's alignment period is a whole number of seconds."""
        return max(1, math.ceil(self.duration.total_seconds()))

    def describe(self) -> str:
        return (
            f"{format_rfc3339(self.start)} to {format_rfc3339(self.end)} "
            f"({format_duration(self.duration)}, {self.basis})"
        )

    def describe_metrics(self) -> str:
        """The Monitoring interval beside the log one, or why there is none."""
        if self.metrics_skipped:
            return f"Monitoring figures skipped: {self.metrics_skipped}"
        if not self.metric_delay:
            return f"Monitoring figures: {self.describe()}"
        return (
            f"Monitoring figures: {format_rfc3339(self.start)} to {format_rfc3339(self.metrics_end)} "
            f"({format_duration(self.metrics_end - self.start)}: metric_delay "
            f"{format_duration(self.metric_delay)} before the end, Cloud Run's metrics are visible minutes "
            "after they are sampled)"
        )


def resolve_window(
    requested: timedelta | None,
    revision: str,
    revision_created: datetime | None,
    *,
    cap: timedelta,
    minimum: timedelta = timedelta(seconds=1),
    metric_delay: timedelta = timedelta(0),
    now: datetime | None = None,
) -> Window:
    """The window ending now: the requested length, or since ``revision_created`` capped at ``cap``.

    ``minimum`` widens a window too short for the backend (Cloud Monitoring aligns on 60 s at least);
    the Monitoring figures end ``metric_delay`` (whole seconds, rounded up) before now and are skipped
    when what is left is shorter than ``minimum``.
    """
    end = now or utcnow()
    if requested is not None:
        start, basis = end - requested, "as asked by --window"
    elif revision_created is None:
        start, basis = end - cap, f"the last {format_duration(cap)}: the revision's creation time is unknown"
    elif end - revision_created > cap:
        start = end - cap
        basis = f"the last {format_duration(cap)} of revision {revision} (capped by [window] max)"
    else:
        start, basis = revision_created, f"since revision {revision} was created"
    if end - start < minimum:
        start, basis = end - minimum, f"{basis}, widened to {format_duration(minimum)}"
    # Whole seconds: the alignment period (= the window) then covers exactly [start, end].
    start = end - timedelta(seconds=math.ceil((end - start).total_seconds()))
    delay = timedelta(seconds=math.ceil(metric_delay.total_seconds()))
    skipped = ""
    if end - delay < start + minimum:
        skipped = (
            f"now − metric_delay {format_duration(delay)} = {format_rfc3339(end - delay)} falls before the "
            f"window's start {format_rfc3339(start)}"
            + (f" + {format_duration(minimum)} (the shortest alignment period)" if minimum else "")
            + ": Cloud Run's metrics of this window are not visible yet; read them after "
            f"{format_rfc3339(start + minimum + delay)}"
        )
    return Window(start, end, basis, delay, skipped)
