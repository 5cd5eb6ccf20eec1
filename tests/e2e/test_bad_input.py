"""Bad input gets one clear line and a non-zero exit: never a traceback, never a hang."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from cloudrun_smoke.local.stack import LocalStack, LocalStackConfig
from cloudrun_smoke.waiting import wait_until
from helpers.ahead import AheadRun
from helpers.paths import ROOT, SERVICES
from helpers.smoke_runs import (
    SuiteRun,
    clean_environ,
    everything_written,
    processes_with_marker,
    run_smoke,
    smoke_argv,
)


def smoke(
    tmp_path: Path, config_text: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "smoke.toml"
    config.write_text(config_text)
    environ = clean_environ("GOOGLE_")
    return subprocess.run(
        smoke_argv("-q", f"--smoke-config={config}", *args),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**environ, **(env or {})},
    )


def assert_one_clear_line(proc: subprocess.CompletedProcess[str], expected: str) -> None:
    """Exit 4 and the message on one plain ``ERROR: ...`` line of stderr, like a usage error: not
    pytest's ``! _pytest.outcomes.Exit: ... !`` banner, nor a traceback."""
    out = proc.stdout + proc.stderr
    assert proc.returncode == 4, out
    [line] = [line for line in proc.stderr.splitlines() if expected in line] or [out]
    assert line.startswith("ERROR: "), out
    assert "_pytest" not in out and "Exit:" not in out and "!" * 3 not in out, out
    assert "Traceback" not in out and "raise " not in out, out


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def nothing_listening() -> Iterator[str]:
    """A loopback URL whose port stays bound (never listening) while in use: connections are refused,
    and no other process, such as another run's stack started beside it, can take the port meanwhile."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{held.getsockname()[1]}"


def test_malformed_config(tmp_path: Path) -> None:
    proc = smoke(
        tmp_path,
        "[env.prod]\nproject = 'p'\nregion = 'r'\nservice = 's'\nlog_deadline = 'soon'\n",
        "--env",
        "prod",
    )
    assert_one_clear_line(proc, "[env.prod].log_deadline: expected a positive number, got 'soon'")


@pytest.mark.parametrize("option", ["--env=local", "--smoke-report=verdict.json", "--rollback-on-failure"])
def test_a_smoke_run_split_between_xdist_workers_is_refused(option: str, tmp_path: Path) -> None:
    """Under -n each worker started its own stack and scenarios, and no verdict, summary or rollback
    happened, without a word. Refused before anything starts."""
    config = (ROOT / "smoke.toml").read_text()
    started = time.monotonic()
    proc = smoke(tmp_path, config, "-n", "2", option, env={"SMOKE_ENV": "local"})
    assert_one_clear_line(proc, "the smoke suite runs in one process; drop -n (pytest-xdist)")
    assert option.split("=")[0] in proc.stdout + proc.stderr
    assert time.monotonic() - started < 30, "it started something before refusing"


def test_a_real_environment_without_credentials(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    proc = smoke(
        tmp_path,
        "[env.prod]\nproject = 'p'\nregion = 'r'\nservice = 's'\n",
        "--env",
        "prod",
        env={"HOME": str(home), "CLOUDSDK_CONFIG": str(home), "NO_GCE_CHECK": "True"},
    )
    assert_one_clear_line(
        proc, "no Google credentials for environment 'prod': run `gcloud auth application-default login`"
    )


def test_an_unreachable_admin_api(tmp_path: Path) -> None:
    port = closed_port()
    text = (
        "[env.emu]\nproject = 'p'\nregion = 'r'\nservice = 's'\n"
        f"run_api_endpoint = 'http://127.0.0.1:{port}'\nlogging_api_endpoint = 'http://127.0.0.1:{port}'\n"
    )
    proc = smoke(tmp_path, text, "--env", "emu")
    assert_one_clear_line(
        proc, f"cannot read the service through the Cloud Run Admin API at http://127.0.0.1:{port}"
    )


def test_a_service_that_does_not_exist(tmp_path: Path) -> None:
    with LocalStack(LocalStackConfig(project="p", region="r", service="real")) as stack:
        text = (
            "[env.emu]\nproject = 'p'\nregion = 'r'\nservice = 'missing'\n"
            f"run_api_endpoint = '{stack.run_api_endpoint}'\nlogging_api_endpoint = '{stack.logging_api_endpoint}'\n"
        )
        proc = smoke(tmp_path, text, "--env", "emu")
    assert_one_clear_line(proc, "Cloud Run service 'missing' not found in project 'p', region 'r'")
    assert "gcloud run services list --project p --region r" in proc.stdout + proc.stderr


# -- what a tired on-call engineer reads --------------------------------------------------------------
LIBRARY_MARKERS = ("site-packages", "httpx.", "httpcore", "tenacity", "urllib3", "/lib/python3")


def failed_checks(run: SuiteRun) -> dict[str, str]:
    """nodeid -> the one-line message the verdict gives each failed check."""
    return {c["nodeid"]: c["message"] for c in run.verdict["checks"] if c["outcome"] in ("failed", "error")}


def assert_readable(run: SuiteRun, longest: int = 1000) -> None:
    """No traceback, no frame or message of a library, no overlong line, no raw control character."""
    out = run.output
    assert "Traceback (most recent call last)" not in out, out
    library = [line for line in out.splitlines() if any(m in line for m in LIBRARY_MARKERS)]
    assert not library, "\n".join(library)
    assert max(len(line) for line in out.splitlines()) <= longest, "an overlong line in the output"
    assert not any(c in out for c in "\x1b\x00\x07\x08\r"), "a raw control character in the output"


def local_config(tmp_path: Path, *lines: str) -> Path:
    """The shipped smoke.toml with extra keys in ``[env.local]``."""
    text = (
        (ROOT / "smoke.toml")
        .read_text()
        .replace("[env.local]\n", "[env.local]\n" + "".join(f"{x}\n" for x in lines), 1)
    )
    path = tmp_path / "smoke.toml"
    path.write_text(text)
    return path


def timed(tmp_path: Path, *args: str, env: dict[str, str] | None = None, bound: float) -> SuiteRun:
    """A run of the suite that must end within ``bound`` seconds, and leave no process behind."""
    started = time.monotonic()
    run = run_smoke(tmp_path, *args, env=env, timeout=bound + 60)
    took = time.monotonic() - started
    assert took < bound, f"the run took {took:.1f} s (bound {bound:g} s)\n{run.output}"
    assert processes_with_marker(run.marker) == []
    return run


def against_url(folder: Path, url: str, *args: str, env: dict[str, str] | None = None) -> SuiteRun:
    """``timed`` with ``url`` kept in the run's folder, for the test that judges it (helpers.ahead)."""
    (folder / "url").write_text(url)
    return timed(folder, *args, env=env, bound=60)


def url_of(run: AheadRun) -> str:
    return (run.folder / "url").read_text()


# -- a wrong --service-url -----------------------------------------------------------------------------
def nothing_listens_run(folder: Path, option: str) -> SuiteRun:
    with nothing_listening() as url:
        return against_url(folder, url, "--env", "local", "-k", "health or tenant", option, url)


@pytest.mark.slow
@pytest.mark.suite_run(plan=nothing_listens_run)
@pytest.mark.parametrize("option", ["--service-url", "--base-url"])
def test_a_service_url_where_nothing_listens(option: str, suite_run: AheadRun) -> None:
    run, url = suite_run.run, url_of(suite_run)
    assert run.returncode == 1, run.output
    failed = failed_checks(run)
    assert set(failed) >= {"smoke/test_health.py::test_health_endpoint_answers_as_configured"}, failed
    for message in failed.values():
        assert f"{url}/" in message and "cannot connect" in message, message
        assert "is anything listening there?" in message and "\n" not in message, message
    assert f"checks called {url} ({option}), not the service's URL http://127.0.0.1:" in run.output
    assert_readable(run)


@contextlib.contextmanager
def something_else() -> Iterator[str]:
    """A live HTTP service that is not the one under test."""
    port = closed_port()
    process = subprocess.Popen(
        [sys.executable, str(SERVICES / "tiny_service.py")],
        env={**os.environ, "PORT": str(port)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:

        def listening() -> bool | None:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
            return None

        wait_until(listening, timeout=20, what="the other service to listen", interval=0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.kill()
        process.wait(timeout=10)


def something_else_run(folder: Path) -> SuiteRun:
    with something_else() as url:
        return against_url(folder, url, "--env", "local", "-k", "health or tenant", "--service-url", url)


@pytest.mark.slow
@pytest.mark.suite_run(plan=something_else_run)
def test_a_service_url_of_something_that_is_not_the_service(suite_run: AheadRun) -> None:
    run, url = suite_run.run, url_of(suite_run)
    assert run.returncode == 1, run.output
    failed = failed_checks(run)
    health = failed["smoke/test_health.py::test_health_endpoint_answers_as_configured"]
    assert "GET /api/health: expected fields {'status': 'ok'}, got {'path': '/api/health'" in health
    isolation = failed["smoke/test_security.py::test_tenant_isolation"]
    assert f"got POST {url}/api/threads/ → 404 Not Found (application/json): " in isolation, isolation
    assert_readable(run)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--service-url", "localhost:8080"], "--service-url 'localhost:8080': expected an http(s) URL"),
        (["--base-url", "ftp://example.com"], "--base-url 'ftp://example.com': expected an http(s) URL"),
        (["--service-url", "http://127.0.0.1:99999"], "expected an http(s) URL"),
        (
            ["--service-url", "http://127.0.0.1:1", "--base-url", "http://127.0.0.1:2"],
            "--service-url http://127.0.0.1:1 and --base-url http://127.0.0.1:2 disagree: give one of them",
        ),
    ],
)
def test_a_malformed_service_url_is_one_line(args: list[str], expected: str, tmp_path: Path) -> None:
    proc = smoke(tmp_path, (ROOT / "smoke.toml").read_text(), "--env", "local", *args)
    assert_one_clear_line(proc, expected)


# pytest-base-url registers --base-url itself: the alias must step aside, in either loading order.
STAND_INS = SERVICES / "stand_ins"
PLUGIN_LOADING = {
    "pytest-base-url loaded first": (["-p", "pytest_base_url.plugin"], {"PYTHONPATH": str(STAND_INS)}),
    "pytest-base-url loaded last": (
        [],
        {"PYTHONPATH": str(STAND_INS), "PYTEST_PLUGINS": "pytest_base_url.plugin"},
    ),
    "another plugin owns --base-url": (["-p", "base_url_elsewhere"], {"PYTHONPATH": str(SERVICES)}),
}


def plugin_loading_run(folder: Path, loading: str) -> SuiteRun:
    args, env = PLUGIN_LOADING[loading]
    with nothing_listening() as url:
        return against_url(
            folder, url, *args, "--env", "local", "-k", "health_endpoint", "--base-url", url, env=env
        )


@pytest.mark.slow
@pytest.mark.suite_run(plan=plugin_loading_run)
@pytest.mark.parametrize("loading", list(PLUGIN_LOADING))
def test_base_url_beside_a_plugin_that_registers_it(loading: str, suite_run: AheadRun) -> None:
    run, url = suite_run.run, url_of(suite_run)
    assert run.returncode == 1, run.output  # not 3 or 4: pytest started, and the alias was honoured
    (message,) = failed_checks(run).values()
    assert f"GET {url}/api/health: cannot connect" in message, message
    assert f"checks called {url} (--base-url)" in run.output
    assert_readable(run)


def inherited_base_url_run(folder: Path) -> SuiteRun:
    args, env = PLUGIN_LOADING["pytest-base-url loaded first"]
    with nothing_listening() as url:
        return against_url(
            folder, url, *args, "--env", "local", "-k", "health_endpoint", env={**env, "PYTEST_BASE_URL": url}
        )


@pytest.mark.slow
@pytest.mark.suite_run(plan=inherited_base_url_run)
def test_an_inherited_pytest_base_url_is_not_the_url_under_test(suite_run: AheadRun) -> None:
    run, url = suite_run.run, url_of(suite_run)
    assert run.returncode == 0, run.output
    assert f"--base-url {url} ignored: it comes from PYTEST_BASE_URL or a base_url ini key" in run.output


# -- a service that answers badly, or not at all, as the stack's revision -------------------------------
MISBEHAVIOURS = {
    "--unauthorized": '→ 401 Unauthorized (application/json): {"detail": "Not authenticated"}',
    "--html": "expected JSON, got text/html: ",
    "--truncated": "response truncated: the connection closed after 20 of 1053 bytes",
    "--hang": "no answer within 3 s (http_timeout)",
}
GAVE_UP = "not sent: the service left its last 2 requests without an answer within 3 s"


def misbehaving_run(folder: Path, mode: str) -> SuiteRun:
    config = local_config(folder, "http_timeout = 3")
    service = f"python {SERVICES / 'misbehaving_service.py'} {mode}"
    return timed(
        folder,
        "--env",
        "local",
        f"--smoke-config={config}",
        "--local-service-cmd",
        service,
        "--log-deadline",
        "5",
        bound=60,
    )


@pytest.mark.slow
@pytest.mark.suite_run(plan=misbehaving_run)
@pytest.mark.parametrize("mode", list(MISBEHAVIOURS))
def test_a_misbehaving_service_fails_each_check_with_its_cause_in_one_line(
    mode: str, suite_run: AheadRun
) -> None:
    run = suite_run.run
    assert run.returncode == 1, run.output
    failed = failed_checks(run)
    assert "smoke/test_health.py::test_health_endpoint_answers_as_configured" in failed, run.output
    url = run.verdict["target"]["url"]
    cause = MISBEHAVIOURS[mode]
    for check, message in failed.items():
        assert "\n" not in message and f" {url}/" in message, f"{check}: {message}"
        assert cause in message or (mode == "--hang" and GAVE_UP in message), f"{check}: {message}"
    assert any(cause in m for m in failed.values())
    assert_readable(run)


# -- hostile log lines ------------------------------------------------------------------------------------
def noisy_run(folder: Path) -> SuiteRun:
    service = f"python {SERVICES / 'noisy_reference.py'}"
    return timed(folder, "--env", "local", "--local-service-cmd", service, "-vv", bound=120)


@pytest.mark.slow
@pytest.mark.suite_run(plan=noisy_run)
def test_huge_and_garbled_log_lines_neither_crash_nor_hide_the_runs_lines(suite_run: AheadRun) -> None:
    """2 MB and 200 KB entries, invalid UTF-8, escape sequences, JSON that is not an object: every
    expected line is still found; only the check of ERROR lines naming the run fails, with excerpts."""
    run = suite_run.run
    assert run.returncode == 1, run.output
    failed = failed_checks(run)
    assert set(failed) == {"smoke/test_no_unexpected_errors.py::test_no_unexpected_errors"}, failed
    (message,) = failed.values()
    assert message.count("ERROR [noisy] dump for thread ") == 2, message  # the 2 MB lines, cut short
    assert "\\x1b[31m ERROR \\x1b[0m garbled" in message, message  # escaped, not sent to the terminal
    assert len(message) < 2000
    assert_readable(run)
    for text in everything_written(run, suite_run.folder):
        assert len(text) < 200_000 and "x" * 1000 not in text


# -- env var values returned by the Admin API -------------------------------------------------------------
@pytest.mark.slow
def test_env_var_values_appear_nowhere(tmp_path: Path) -> None:
    secret = f"value-{uuid.uuid4().hex}"
    text = (ROOT / "smoke.toml").read_text()
    text = text.replace(
        "[env.local.stack.env]\n", f'[env.local.stack.env]\nSMOKE_PROBE_TOKEN = "{secret}"\n', 1
    )
    config = tmp_path / "smoke.toml"
    config.write_text(text)
    summary = tmp_path / "step-summary.md"
    env = {"GITHUB_STEP_SUMMARY": str(summary)}
    healthy = timed(tmp_path, "--env", "local", f"--smoke-config={config}", env=env, bound=120)
    assert healthy.returncode == 0, healthy.output
    # A failing run, as verbose as an engineer makes it: local variables, DEBUG logs of every library.
    expecting_more = tmp_path / "expecting-more.toml"
    expecting_more.write_text(text.replace("env_names = [", 'env_names = ["NOT_SET_ANYWHERE", ', 1))
    failing = timed(
        tmp_path,
        "--env",
        "local",
        f"--smoke-config={expecting_more}",
        "-k",
        "deployment",
        "-l",
        "-vv",
        "--log-level=DEBUG",
        env=env,
        bound=60,
    )
    assert failing.returncode == 1, failing.output
    assert "lacks env var(s) NOT_SET_ANYWHERE" in failing.output and "SMOKE_PROBE_TOKEN" in failing.output
    written = [*everything_written(healthy, tmp_path), failing.output, summary.read_text()]
    assert len(written) >= 6  # both outputs, two JUnit files, two verdicts, the summary
    for text in written:
        assert secret not in text


@pytest.mark.parametrize("marks", ["window", "oncall", "not window"])
def test_a_gauge_period_under_60_s_stops_the_run_before_credentials(tmp_path: Path, marks: str) -> None:
    """Cloud Monitoring refuses an alignment period under 60 s (monitoring_v3 Aggregation.alignment_period:
    "The value must be at least 60 seconds"): refused when smoke.toml is read, whatever -m selects, before
    any credential is looked for (there are none here) or the service discovered."""
    config = (
        "[env.prod]\nproject = 'p'\nregion = 'r'\nservice = 's'\n[env.prod.window]\ngauge_period_s = 10\n"
    )
    proc = smoke(tmp_path, config, "--env", "prod", "-m", marks)
    assert_one_clear_line(proc, "env.prod.window.gauge_period_s: 10 s is shorter than 60 s")
    out = proc.stdout + proc.stderr
    assert "credentials" not in out.lower() and "discover" not in out.lower(), out
