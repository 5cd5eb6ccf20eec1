"""Bad input gets one clear line and a non-zero exit: never a traceback, never a hang."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from cloudrun_smoke.local.stack import LocalStack, LocalStackConfig

ROOT = Path(__file__).resolve().parents[1]


def smoke(
    tmp_path: Path, config_text: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "smoke.toml"
    config.write_text(config_text)
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("SMOKE_", "GOOGLE_"))}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "smoke/",
            "-p",
            "no:cacheprovider",
            "-q",
            f"--smoke-config={config}",
            *args,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**environ, **(env or {})},
    )


def assert_one_clear_line(proc: subprocess.CompletedProcess[str], expected: str) -> None:
    out = proc.stdout + proc.stderr
    assert proc.returncode == 4, out
    assert expected in out, out
    assert "Traceback" not in out and "raise " not in out, out


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_malformed_config(tmp_path: Path) -> None:
    proc = smoke(
        tmp_path,
        "[env.prod]\nproject = 'p'\nregion = 'r'\nservice = 's'\nlog_deadline = 'soon'\n",
        "--env",
        "prod",
    )
    assert_one_clear_line(proc, "[env.prod].log_deadline: expected a positive number, got 'soon'")


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
