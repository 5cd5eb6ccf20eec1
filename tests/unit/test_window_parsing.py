"""The window: ``--window`` durations, the default (since the revision was created, capped), the
``[env.NAME.window]`` settings, and which runs include the window checks at all."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cloudrun_smoke.config.environment import load_config
from cloudrun_smoke.errors import ConfigError
from cloudrun_smoke.window.period import format_duration, parse_duration, resolve_window
from helpers.paths import ROOT

NOW = datetime(2026, 11, 25, 12, 0, 0, 250000, tzinfo=UTC)
CREATED = NOW - timedelta(hours=2, minutes=3)


@pytest.mark.parametrize(
    ("text", "seconds"), [("90s", 90), ("30m", 1800), ("6h", 21600), ("24h", 86400), ("2d", 172800)]
)
def test_durations_the_runbook_uses(text: str, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "24", "h", "1.5h", "0h", "-1h", "24 hours", "24H", "1w", "2d3h"])
def test_anything_else_is_one_clear_error(text: str) -> None:
    with pytest.raises(ValueError, match=r"expected a duration such as 90s, 30m, 6h, 24h or 2d"):
        parse_duration(text)


def test_longer_than_logging_retention_is_refused() -> None:
    with pytest.raises(ValueError, match="longer than 30d"):
        parse_duration("31d")


def test_an_explicit_window_ends_now() -> None:
    window = resolve_window(timedelta(hours=6), "rev-1", CREATED, cap=timedelta(hours=24), now=NOW)
    assert (window.start, window.end) == (NOW - timedelta(hours=6), NOW)
    assert window.describe().endswith("(6h, as asked by --window)")


def test_by_default_the_window_starts_when_the_revision_was_created() -> None:
    window = resolve_window(None, "rev-1", CREATED, cap=timedelta(hours=24), now=NOW)
    assert window.start == CREATED and window.end == NOW
    assert "since revision rev-1 was created" in window.describe()
    assert "(2h 3m, since" in window.describe()


def test_an_old_revision_is_judged_on_the_capped_window() -> None:
    window = resolve_window(None, "rev-1", NOW - timedelta(days=9), cap=timedelta(hours=24), now=NOW)
    assert window.start == NOW - timedelta(hours=24)
    assert "capped by [window] max" in window.basis


def test_an_unknown_creation_time_falls_back_to_the_cap() -> None:
    window = resolve_window(None, "rev-1", None, cap=timedelta(hours=6), now=NOW)
    assert window.start == NOW - timedelta(hours=6) and "creation time is unknown" in window.basis


def test_a_window_too_short_for_the_backend_is_widened_and_says_so() -> None:
    young = NOW - timedelta(seconds=12)
    window = resolve_window(
        None, "rev-1", young, cap=timedelta(hours=24), minimum=timedelta(seconds=60), now=NOW
    )
    assert window.start == NOW - timedelta(seconds=60) and "widened to 1m" in window.basis


def test_the_window_is_whole_seconds_so_one_alignment_period_covers_it() -> None:
    created = NOW - timedelta(seconds=41, microseconds=300000)
    window = resolve_window(None, "rev-1", created, cap=timedelta(hours=24), now=NOW)
    assert window.duration == timedelta(seconds=42) and window.seconds == 42


def test_monitoring_figures_end_metric_delay_before_the_log_figures() -> None:
    """Google Cloud metrics, Cloud Run: "Sampled every 60 seconds. After sampling, data is not visible
    for up to 180 seconds": a read that ends now would judge the last minutes as empty."""
    delay = timedelta(seconds=240)
    window = resolve_window(
        None,
        "rev-1",
        CREATED,
        cap=timedelta(hours=24),
        minimum=timedelta(seconds=60),
        metric_delay=delay,
        now=NOW,
    )
    assert (window.start, window.end, window.metrics_end) == (CREATED, NOW, NOW - delay)
    metrics = window.metrics()
    assert (metrics.start, metrics.end) == (CREATED, NOW - delay) and metrics.seconds == window.seconds - 240
    assert "metric_delay 4m before now" in metrics.describe()
    assert not window.metrics_skipped
    assert window.describe_metrics().startswith("Monitoring figures: 2026-11-25T09:57:00.250000Z to ")
    assert "(1h 59m: metric_delay 4m before the end" in window.describe_metrics()


def test_right_after_a_deploy_the_monitoring_figures_are_skipped_saying_why() -> None:
    young = NOW - timedelta(seconds=200)  # 240 s of delay + 60 s of alignment: not before 300 s
    window = resolve_window(
        None,
        "rev-1",
        young,
        cap=timedelta(hours=24),
        minimum=timedelta(seconds=60),
        metric_delay=timedelta(seconds=240),
        now=NOW,
    )
    assert window.start == young and window.end == NOW  # the log figures keep their window
    assert "now − metric_delay 4m = 2026-11-25T11:56:00.250000Z falls before the window's start" in (
        window.metrics_skipped
    )
    assert "read them after 2026-11-25T12:01:40.250000Z" in window.metrics_skipped
    assert window.describe_metrics().startswith("Monitoring figures skipped: now − metric_delay 4m")
    assert not resolve_window(
        None,
        "rev-1",
        NOW - timedelta(seconds=300),
        cap=timedelta(hours=24),
        minimum=timedelta(seconds=60),
        metric_delay=timedelta(seconds=240),
        now=NOW,
    ).metrics_skipped


def test_durations_read_well_in_messages() -> None:
    assert [format_duration(timedelta(seconds=s)) for s in (5, 65, 3700, 90000)] == [
        "5s",
        "1m 5s",
        "1h 1m",
        "1d 1h",
    ]


# -- [env.NAME.window] -----------------------------------------------------------------------------------
MINIMAL = '[env.prod]\nproject = "p"\nregion = "us-central1"\nservice = "s"\n'


def test_window_settings_default_to_the_runbook(tmp_path: Path) -> None:
    path = tmp_path / "smoke.toml"
    path.write_text(MINIMAL)
    settings = load_config(path).environment("prod", environ={}).window
    assert (settings.max, settings.error_share_pct, settings.memory_max_pct, settings.cpu_p95_pct) == (
        86400.0,
        1.0,
        80.0,
        70.0,
    )
    assert settings.latency_p95_ms == 10000.0 and settings.archive_p50_ms is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('max = "6 hours"', "env.prod.window.max: expected a duration such as 90s"),
        ("cpu_p95_pct = -3", "env.prod.window.cpu_p95_pct: expected a positive number, got -3"),
        ("min_request = 3", "env.prod.window: unknown key 'min_request'"),
        ("max_log_pages = 0", "env.prod.window.max_log_pages: expected a positive whole number, got 0"),
    ],
)
def test_window_settings_are_validated(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "smoke.toml"
    path.write_text(MINIMAL + "[env.prod.window]\n" + text + "\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path).environment("prod", environ={})
    assert message in str(caught.value)


def test_the_monitoring_endpoint_follows_the_logging_one(tmp_path: Path) -> None:
    path = tmp_path / "smoke.toml"
    path.write_text(MINIMAL + 'monitoring_api_endpoint = "127.0.0.1:9"\n')
    config = load_config(path)
    assert config.environment("prod", environ={}).monitoring_api_endpoint == "127.0.0.1:9"
    overridden = config.environment("prod", environ={"SMOKE_MONITORING_API_ENDPOINT": "127.0.0.1:7"})
    assert overridden.monitoring_api_endpoint == "127.0.0.1:7"


# -- which runs include the window checks ------------------------------------------------------------------
def collect(*args: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SMOKE_")}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "smoke/", "-p", "no:cacheprovider", "--collect-only", "-q", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env=environ,
    )


def test_window_checks_run_only_when_the_marker_expression_names_them() -> None:
    """The regression checks are window checks too: `-m window` selects both, `-m regression` only them."""
    default, oncall, window, regression = (
        collect("--env", "local"),
        collect("--env", "local", "-m", "oncall"),
        collect("--env", "local", "-m", "window"),
        collect("--env", "local", "-m", "regression"),
    )
    for run in (default, oncall):
        assert "test_window.py" not in run.stdout and "test_regression.py" not in run.stdout, run.stdout
    assert "test_deployment.py" in default.stdout, default.stdout
    selected = [line for line in window.stdout.splitlines() if "::" in line]
    files = sorted({line.split("::")[0].rsplit("/", 1)[-1] for line in selected})
    assert files == ["test_regression.py", "test_window.py"], window.stdout
    assert len(selected) == 10 + 7
    chosen = [line for line in regression.stdout.splitlines() if "::" in line]
    assert len(chosen) == 7 and all("test_regression.py::" in line for line in chosen), regression.stdout


def test_a_bad_window_is_one_line_and_exit_4() -> None:
    proc = collect("--env", "local", "-m", "window", "--window", "24hours")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 4, out
    assert "--window: expected a duration such as 90s, 30m, 6h, 24h or 2d" in out
    assert "Traceback" not in out
