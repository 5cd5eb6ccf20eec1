"""smoke.toml validation: every problem is one line naming the file and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloudrun_smoke.config.environment import load_config
from cloudrun_smoke.errors import ConfigError
from helpers.paths import ROOT

MINIMAL = """
[env.prod]
project = "p"
region = "us-central1"
service = "s"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "smoke.toml"
    path.write_text(text)
    return path


def test_the_shipped_smoke_toml_is_valid_for_every_environment() -> None:
    config = load_config(ROOT / "smoke.toml")
    assert config.names() == ["local", "prod", "staging"]
    for name in config.names():
        env = config.environment(name, environ={})
        assert env.project and env.region and env.service
    local = config.environment("local", environ={})
    assert local.is_local and local.stack is not None
    assert local.stack.service_cmd == "python -m emergence_reference"
    assert not config.environment("prod", environ={}).is_local


def test_defaults_apply_to_a_minimal_environment(tmp_path: Path) -> None:
    env = load_config(write(tmp_path, MINIMAL)).environment("prod", environ={})
    assert (env.auth, env.log_deadline, env.read_budget_per_minute, env.health_path) == (
        "dev-bypass",
        60.0,
        30,
        "/api/health",
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[env.prod]\nproject = 'p'\nregion = 'r'\n", "[env.prod]: missing required key 'service'"),
        (
            MINIMAL + "log_deadline = 'soon'\n",
            "[env.prod].log_deadline: expected a positive number, got 'soon'",
        ),
        (MINIMAL + "log_dedline = 3\n", "[env.prod]: unknown key 'log_dedline'"),
        (
            MINIMAL + "auth = 'magic'\n",
            "[env.prod].auth: expected one of none, dev-bypass, bearer, login, id-token, got 'magic'",
        ),
        (MINIMAL + "health_path = 'health'\n", "[env.prod].health_path: expected a path starting with '/'"),
        (
            MINIMAL + "[env.prod.stack]\nstartup_timeout = -1\n",
            "[env.prod.stack].startup_timeout: expected a positive",
        ),
        (MINIMAL + "[env.prod.expect]\nmemory = 2\n", "env.prod.expect.memory: expected a string, got 2"),
        (MINIMAL + "[env.prod.expect]\nimage = '(unclosed'\n", "env.prod.expect.image: not a valid regular"),
        (MINIMAL + "[env.prod.slo]\nqueue_p95 = 5\n", "env.prod.slo: unknown key 'queue_p95'"),
        (
            MINIMAL + "[env.prod.checks]\nstrict_errors = true\n",
            "env.prod.checks.strict_errors: no longer exists: a failure line that names no thread",
        ),
        (
            MINIMAL + "[env.prod.checks]\nexpect_recall = 'yes'\n",
            "env.prod.checks.expect_recall: expected true",
        ),
        (
            MINIMAL + "[env.prod.patterns]\n'archive.enqueued' = 'enqueued for thread (.*)'\n",
            "archive.enqueued: form 'enqueued for thread (.*)' must capture (?P<thread_id>...)",
        ),
        (
            MINIMAL + "[env.prod.patterns]\n'no.such' = 'x'\n",
            "env.prod.patterns.no.such: no log pattern of that name",
        ),
        (
            MINIMAL + "[env.prod.known_failures]\ntest_x = { link = 'https://x' }\n",
            "env.prod.known_failures.test_x: expected { reason",
        ),
        (
            MINIMAL + "[env.prod.regression]\nalpha = 5\n",
            "env.prod.regression.alpha: expected a number between 0 and 1 (exclusive), got 5",
        ),
        (
            MINIMAL + "[env.prod.regression]\nlatency_ratio = 0.8\n",
            "env.prod.regression.latency_ratio: expected a ratio >= 1 (1.2: 20 % worse), got 0.8",
        ),
        (MINIMAL + "[env.prod.regression]\nmargin = 1\n", "env.prod.regression: unknown key 'margin'"),
        ("[env.prod\nproject = 1", "not valid TOML"),
        ("[other]\nx = 1\n", "no [env.NAME] tables"),
    ],
)
def test_malformed_config_is_one_line_naming_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path).environment("prod", environ={})
    assert message in str(info.value)
    assert str(path) in str(info.value)
    assert "\n" not in str(info.value)


def test_unknown_environment_lists_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown environment 'prdo' in .*smoke.toml; known: prod"):
        load_config(write(tmp_path, MINIMAL)).environment("prdo", environ={})


def test_missing_file_says_how_to_point_at_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no such file .*--smoke-config"):
        load_config(tmp_path / "absent.toml")


def test_smoke_variables_override_and_are_validated(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, MINIMAL + "[env.prod.stack]\n"))
    env = config.environment(
        "prod",
        environ={"SMOKE_LOG_DEADLINE": "7.5", "SMOKE_CLEANUP_GRACE": "4", "SMOKE_LOCAL_SERVICE_CMD": "./svc"},
    )
    assert (env.log_deadline, env.cleanup_grace) == (7.5, 4.0)
    assert env.stack is not None and env.stack.service_cmd == "./svc"
    with pytest.raises(ConfigError, match="SMOKE_LOG_DEADLINE"):
        config.environment("prod", environ={"SMOKE_LOG_DEADLINE": "-1"})
    with pytest.raises(ConfigError, match="SMOKE_CLEANUP_GRACE"):
        config.environment("prod", environ={"SMOKE_CLEANUP_GRACE": "0"})


def test_sections_parse_into_typed_settings(tmp_path: Path) -> None:
    text = MINIMAL + (
        "[env.prod.expect]\nimage = 'gcr.io/p/app:.*'\nmemory = '2Gi'\nmin_instances = 1\n"
        "env_names = ['ENVIRONMENT']\n"
        "[env.prod.slo]\narchive_p50_ms = 150\n"
        "[env.prod.checks]\npreferences_in_stats = true\nallow_errors = ['known noise']\n"
        "[env.prod.patterns]\n'archive.enqueued' = ['queued (?P<thread_id>[^ ]+)']\n"
        "[env.prod.known_failures]\ntest_tenant_isolation = { reason = 'search not scoped', link = 'https://x' }\n"
    )
    env = load_config(write(tmp_path, text)).environment("prod", environ={})
    assert env.expect.image == "gcr.io/p/app:.*" and env.expect.min_instances == 1
    assert env.expect.env_names == ("ENVIRONMENT",)
    assert env.slo.archive_p50_ms == 150.0 and env.slo.queue_p95_s == 5.0
    assert env.checks.preferences_in_stats is True and env.checks.allow_errors == ("known noise",)
    assert env.patterns == {"archive.enqueued": ["queued (?P<thread_id>[^ ]+)"]}
    assert env.known_failures["test_tenant_isolation"].reason == "search not scoped"


# -- Cloud Monitoring's alignment period and metric delay ----------------------------------------------
LOCAL = (
    MINIMAL.replace("env.prod", "env.dev")
    + "[env.dev.window]\ngauge_period_s = 1\n[env.dev.stack]\nservice_cmd = 'python -m x'\n"
)


@pytest.mark.parametrize("period", [1, 30, 59])
def test_a_gauge_period_under_60_s_is_refused_outside_the_stack(tmp_path: Path, period: int) -> None:
    """monitoring_v3 Aggregation.alignment_period: "The value must be at least 60 seconds"."""
    text = MINIMAL + f"[env.prod.window]\ngauge_period_s = {period}\n"
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text)).environment("prod", environ={})
    message = str(caught.value)
    assert "env.prod.window.gauge_period_s" in message and "60 s" in message and "\n" not in message
    ok = MINIMAL + "[env.prod.window]\ngauge_period_s = 60\n"
    assert load_config(write(tmp_path, ok)).environment("prod", environ={}).window.gauge_period_s == 60


def test_the_stack_takes_a_short_gauge_period_only_when_it_allows_short_alignments(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"env\.dev\.window\.gauge_period_s: 1 s is shorter than 60 s"):
        load_config(write(tmp_path, LOCAL)).environment("dev", environ={})
    allowed = LOCAL + "min_alignment_period = 1\n"
    env = load_config(write(tmp_path, allowed)).environment("dev", environ={})
    assert (env.min_alignment_period, env.window.gauge_period_s) == (1.0, 1)


def test_metric_delay_defaults_to_cloud_runs_sampling_period_plus_its_visibility_delay(
    tmp_path: Path,
) -> None:
    """Google Cloud metrics, Cloud Run: "Sampled every 60 seconds. After sampling, data is not visible
    for up to 180 seconds." The local stack samples every second and delays by its own metric_delay."""
    assert load_config(write(tmp_path, MINIMAL)).environment("prod", environ={}).metric_delay == 240.0
    shipped = load_config(ROOT / "smoke.toml")
    assert shipped.environment("prod", environ={}).metric_delay == 240.0
    local = shipped.environment("local", environ={})
    assert local.stack is not None and local.metric_delay == 1.0 + local.stack.metric_delay <= 5
    explicit = MINIMAL + "[env.prod.window]\nmetric_delay = 600\n"
    assert load_config(write(tmp_path, explicit)).environment("prod", environ={}).metric_delay == 600.0
    with pytest.raises(ConfigError, match=r"env\.prod\.window\.metric_delay: expected a number >= 0"):
        load_config(write(tmp_path, MINIMAL + "[env.prod.window]\nmetric_delay = -1\n")).environment(
            "prod", environ={}
        )
