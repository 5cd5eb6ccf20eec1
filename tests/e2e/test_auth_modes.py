"""Auth modes end to end on the local stack, and secrets that must appear nowhere.

`login` signs in through the service's own `POST /api/auth/login` with credentials from the
environment; the service forbids the dev bypass there, which the security check verifies.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers.smoke_configs import CREDENTIALS, PASSWORD, assert_the_bypass_was_accepted, login_config
from helpers.smoke_runs import ROOT, everything_written, run_local

# Every library's logging at DEBUG, printed live: what an engineer turns on when a run misbehaves.
DEBUG_LOGS = ("-o", "log_cli=true", "--log-cli-level=DEBUG", "--log-level=DEBUG")


@pytest.mark.slow
def test_login_mode_runs_the_suite_and_no_secret_appears(tmp_path: Path) -> None:
    config = login_config(tmp_path)
    run = run_local(tmp_path, config, *DEBUG_LOGS, env=CREDENTIALS)
    assert run.returncode == 0, run.output
    assert "DEBUG" in run.output, "the run did not log at debug level"
    assert run.outcomes["test_security.py::test_dev_bypass_is_refused"] == "passed"
    assert (
        run.outcomes["test_thread_archiving.py::test_archive_enqueues_a_consolidation_that_completes"]
        == "passed"
    )
    assert "cannot act as two users" in run.messages["test_security.py::test_tenant_isolation"]
    written = everything_written(run, tmp_path)
    for text in written:
        assert PASSWORD not in text
        assert "eyJ" not in text, "a JWT (or part of one) was printed"


@pytest.mark.slow
def test_the_bypass_accepted_where_it_is_forbidden_fails_the_security_check(tmp_path: Path) -> None:
    config = login_config(tmp_path)
    env = {**CREDENTIALS, "SMOKE_LOCAL_FAULTS": "dev-bypass-accepted"}
    run = run_local(tmp_path, config, "-k", "bypass", env=env)
    assert_the_bypass_was_accepted(run)


@pytest.mark.slow
def test_login_without_credentials_is_one_line_naming_the_variable(tmp_path: Path) -> None:
    run = run_local(tmp_path, login_config(tmp_path), "-k", "health")
    assert run.returncode == 4, run.output
    assert "needs the smoke account's e-mail in $SMOKE_LOGIN_EMAIL" in run.output
    assert "Traceback" not in run.output


@pytest.mark.slow
def test_bearer_mode_takes_the_token_from_the_environment_and_never_prints_it(tmp_path: Path) -> None:
    """The token a CI auth step would hand over: here signed with the reference service's dev key."""
    import time as _time

    from emergence_reference import jwt_hs256
    from emergence_reference.config import DEFAULT_JWT_SECRET

    now = int(_time.time())
    token = jwt_hs256.encode(
        {"sub": "smoke-bearer", "role": "user", "iat": now, "exp": now + 600}, DEFAULT_JWT_SECRET
    )
    config = login_config(tmp_path)
    config.write_text(config.read_text().replace('auth = "login"', 'auth = "bearer"', 1))
    run = run_local(
        tmp_path,
        config,
        "-k",
        "health or archive_enqueues or bypass",
        *DEBUG_LOGS,
        env={"SMOKE_BEARER_TOKEN": token},
    )
    assert run.returncode == 0, run.output
    assert "DEBUG" in run.output, "the run did not log at debug level"
    assert (
        run.outcomes["test_thread_archiving.py::test_archive_enqueues_a_consolidation_that_completes"]
        == "passed"
    )
    written = everything_written(run, tmp_path)
    assert not any(token in text or token.split(".")[2] in text for text in written)


RECORDING_SERVICE = f"python {ROOT / 'tests' / 'services' / 'recording_reference.py'}"


@pytest.mark.slow
def test_a_fixed_identity_run_marks_every_request_and_never_clears_the_accounts_memory(
    tmp_path: Path,
) -> None:
    """The whole suite as the app's own login (one account for every run): what the service received.

    Every request, the login included, carries the run's ``X-Smoke-Run-Id`` and the suite's
    User-Agent, so that production's request logs tell the smoke run apart. The account's memory is
    the account's, not the run's: the run deletes its own threads and never clears that memory."""
    from cloudrun_smoke.service.http import USER_AGENT

    recorded = tmp_path / "requests.jsonl"
    config = login_config(tmp_path)
    run = run_local(
        tmp_path,
        config,
        "--local-service-cmd",
        RECORDING_SERVICE,
        env={**CREDENTIALS, "RECORD_REQUESTS_TO": str(recorded)},
    )
    assert run.returncode == 0, run.output
    run_id = run.verdict["run"]["run_id"]
    requests = [json.loads(line) for line in recorded.read_text().splitlines()]
    sent = {(r["method"], r["path"].rstrip("/")) for r in requests}
    for expected in (("POST", "/api/auth/login"), ("POST", "/api/threads")):
        assert expected in sent, f"the service never received {expected}: {sorted(sent)}"
    unmarked = [r for r in requests if r["x-smoke-run-id"] != run_id or r["user-agent"] != USER_AGENT]
    assert not unmarked, (
        f"{len(unmarked)} of {len(requests)} requests lack X-Smoke-Run-Id: {run_id} or User-Agent: "
        f"{USER_AGENT}; first: {unmarked[:3]}"
    )
    cleared = [r for r in requests if r["path"].startswith("/api/memory/clear")]
    assert not cleared, f"the run cleared the fixed account's memory: {cleared}"
    created = sum(1 for r in requests if (r["method"], r["path"].rstrip("/")) == ("POST", "/api/threads"))
    deleted = {
        r["path"] for r in requests if r["method"] == "DELETE" and r["path"].startswith("/api/threads/")
    }
    assert created and len(deleted) == created, f"created {created} threads, deleted {len(deleted)}"
