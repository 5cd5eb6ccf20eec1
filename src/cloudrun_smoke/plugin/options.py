"""The smoke run's command line: its options, and the environment they select."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from cloudrun_smoke.config import base_url
from cloudrun_smoke.config import environment as config_environment
from cloudrun_smoke.config.environment import ENV_VAR
from cloudrun_smoke.config.schema import Environment
from cloudrun_smoke.plugin.state import state_of
from cloudrun_smoke.service import redaction
from cloudrun_smoke.window.period import parse_duration

OPTION_GROUP = "cloudrun-smoke"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup(OPTION_GROUP, "Cloud Run post-deploy smoke checks")
    group.addoption(
        "--env", dest="smoke_env", default=None, help=f"environment from smoke.toml (or {ENV_VAR})"
    )
    group.addoption(
        "--smoke-config",
        dest="smoke_config",
        default=None,
        help="path of smoke.toml (or SMOKE_CONFIG; default: rootdir)",
    )
    group.addoption(
        "--log-deadline",
        dest="smoke_log_deadline",
        type=float,
        default=None,
        help="seconds to wait for an expected log line (overrides the environment's log_deadline)",
    )
    group.addoption(
        "--local-service-cmd",
        dest="smoke_local_service_cmd",
        default=None,
        help="with --env local: the command run as the revision (or SMOKE_LOCAL_SERVICE_CMD)",
    )
    group.addoption(
        "--read-only",
        dest="smoke_read_only",
        action="store_true",
        default=False,
        help="run only the checks that change nothing on the service",
    )
    group.addoption(
        "--expect-revision",
        dest="smoke_expect_revision",
        default=None,
        help="the revision the deploy step produced: the serving revision must be exactly this one",
    )
    group.addoption(
        "--tag",
        dest="smoke_tag",
        default=None,
        help="test the no-traffic candidate deployed with this tag, through its tag URL (0 %% traffic expected)",
    )
    group.addoption(
        "--revision",
        dest="smoke_revision",
        default=None,
        help="test this tagged no-traffic revision through its tag URL",
    )
    group.addoption(
        "--canary",
        dest="smoke_canary",
        action="store_true",
        default=False,
        help="with --tag or --revision: the candidate serves a share of the traffic (a canary split, "
        "`gcloud run services update-traffic --to-tags NAME=10`): above 0 %% and below 100 %% expected",
    )
    base_url.add_options(group)
    group.addoption(
        "--rollback-on-failure",
        dest="smoke_rollback_on_failure",
        action="store_true",
        default=False,
        help="when checks fail, run them again once; if a failure persists, move 100%% of traffic back",
    )
    group.addoption(
        "--smoke-report",
        dest="smoke_report",
        default=None,
        help="write the run's verdict as JSON to this path",
    )
    group.addoption(
        "--window",
        dest="smoke_window",
        default=None,
        metavar="DURATION",
        help="window checks (-m window): judge the last DURATION (90s, 30m, 6h, 24h, 2d); default: since "
        "the serving revision was created, capped at [window] max",
    )


@pytest.hookimpl(wrapper=True)
def pytest_load_initial_conftests(parser: pytest.Parser) -> Iterator[None]:
    """``--base-url`` goes in last: any plugin or initial conftest that owns it keeps it."""
    result = yield
    base_url.add_alias(parser, OPTION_GROUP)
    return result


def pytest_configure(config: pytest.Config) -> None:
    redaction.install()  # before any library logs a header: --log-level=DEBUG must not print tokens
    _refuse_xdist(config)
    if config.getoption("smoke_canary", False) and not (
        config.getoption("smoke_tag", None) or config.getoption("smoke_revision", None)
    ):
        raise pytest.UsageError(
            "--canary needs --tag NAME or --revision NAME: the canary is a tagged revision"
        )


# Options only a smoke run carries: given with ``-n``, the run is a smoke run split between workers.
_SMOKE_RUN_OPTIONS = {
    "smoke_env": "--env",
    "smoke_report": "--smoke-report",
    "smoke_rollback_on_failure": "--rollback-on-failure",
}


def _refuse_xdist(config: pytest.Config) -> None:
    """A smoke run is one process. Under pytest-xdist each worker would start its own scenarios (and,
    locally, its own stack: another revision), and the verdict, the summary and the rollback, which
    judge the whole run, would silently not happen. Its scenarios already overlap their waits."""
    if hasattr(config, "workerinput") or not getattr(config.option, "numprocesses", None):
        return
    if getattr(config.option, "dist", "no") == "no":
        return
    given = [flag for dest, flag in _SMOKE_RUN_OPTIONS.items() if config.getoption(dest, None)]
    if given:
        raise pytest.UsageError(
            f"the smoke suite runs in one process; drop -n (pytest-xdist) from this run ({given[0]} "
            "given): each worker would start its own scenarios and stack, and the verdict, the summary "
            "and --rollback-on-failure need the whole run. Its log waits already overlap."
        )


def resolve_environment(config: pytest.Config) -> Environment:
    """The environment the options and variables select (precedence lives in
    ``config.environment.resolve_environment``). Raises SmokeError."""
    state = state_of(config)
    env = config_environment.resolve_environment(
        config_environment.Options(
            config=config.getoption("smoke_config"),
            env=config.getoption("smoke_env"),
            log_deadline=config.getoption("smoke_log_deadline"),
            local_service_cmd=config.getoption("smoke_local_service_cmd"),
            read_only=config.getoption("smoke_read_only"),
        ),
        config.rootpath,
    )
    state.config_path = Path(env.source)
    state.url_override = base_url.resolve(config)
    return env


def requested_window(config: pytest.Config) -> timedelta | None:
    """``--window``, parsed; a bad one is a usage error."""
    raw = config.getoption("smoke_window", None)
    if raw is None:
        return None
    try:
        return parse_duration(raw)
    except ValueError as e:
        raise pytest.UsageError(f"--window: {e}") from None


# Options that shape what a run tests (its target, its selection, its waits), by pytest dest.
SHAPING_OPTIONS = {
    "smoke_expect_revision": "--expect-revision",
    "smoke_tag": "--tag",
    "smoke_revision": "--revision",
    "smoke_canary": "--canary",
    "smoke_log_deadline": "--log-deadline",
    "smoke_read_only": "--read-only",
    "smoke_window": "--window",
}


def run_options(config: pytest.Config) -> dict[str, str]:
    """The options that shaped this run, as given: reported in the verdict, and carried whole by the
    re-run of ``--rollback-on-failure`` so that it tests the same thing."""
    options: dict[str, str] = {}
    for dest, flag in SHAPING_OPTIONS.items():
        value = config.getoption(dest, None)
        if value not in (None, False, ""):
            options[flag] = "" if value is True else str(value)
    override = state_of(config).url_override
    if override is not None and override.url:
        options["--service-url"] = override.url
    if config.option.markexpr:
        options["-m"] = config.option.markexpr
    if config.option.keyword:
        options["-k"] = config.option.keyword
    return options
