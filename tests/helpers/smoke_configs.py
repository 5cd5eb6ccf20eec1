"""smoke.toml as the end-to-end tests change it: the shipped file, one setting switched, written to a
temporary folder and passed with --smoke-config."""

from __future__ import annotations

import sys
from pathlib import Path

from helpers.paths import ROOT
from helpers.smoke_runs import SuiteRun

EMAIL = "smoke@example.com"
PASSWORD = "pw-Zq8-never-printed-7731"


def login_config(tmp_path: Path) -> Path:
    """The shipped local environment, switched to the app's own login, with the bypass forbidden."""
    text = (ROOT / "smoke.toml").read_text()
    text = text.replace('auth = "dev-bypass"\nsmoke_user_prefix', 'auth = "login"\nsmoke_user_prefix', 1)
    text = text.replace("[env.local.checks]\n", "[env.local.checks]\ndev_bypass_rejected = true\n", 1)
    text = text.replace(
        "[env.local.stack.env]\n",
        f'[env.local.stack.env]\nAUTH_DEV_BYPASS = "0"\nAUTH_ALLOWLIST = "{EMAIL}:{PASSWORD}"\n',
        1,
    )
    assert text.count('auth = "login"') == 1 and "AUTH_ALLOWLIST" in text
    path = tmp_path / "smoke.toml"
    path.write_text(text)
    return path


CREDENTIALS = {"SMOKE_LOGIN_EMAIL": EMAIL, "SMOKE_LOGIN_PASSWORD": PASSWORD}


def config_with_candidate(tmp_path: Path, percent: int = 0) -> Path:
    """A candidate tagged ``canary`` beside the serving revision, serving ``percent`` of the traffic."""
    text = (ROOT / "smoke.toml").read_text()
    assert "[env.local.stack]\n" in text
    text = text.replace(
        "[env.local.stack]\n",
        f'[env.local.stack]\ncandidate_cmd = "{sys.executable} -m emergence_reference"\ntag = "canary"\n'
        f"candidate_percent = {percent}\n",
        1,
    )
    path = tmp_path / "smoke.toml"
    path.write_text(text)
    return path


def assert_the_bypass_was_accepted(run: SuiteRun) -> None:
    """The run failed on the security check because the service answered the dev bypass with 200."""
    assert run.returncode == 1, run.output
    message = run.messages["test_security.py::test_dev_bypass_is_refused"]
    assert "x-dev-bypass: 1 and x-user-id but no token must be refused" in message
    assert "→ 200" in message
