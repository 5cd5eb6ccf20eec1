"""The project's own promises: the README's commands are the ones CI runs, the plugin loads once."""

from __future__ import annotations

import re
import subprocess
import sys

from helpers.paths import ROOT


def readme_commands() -> list[str]:
    block = re.search(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert block, "README.md has no bash block on its first screen"
    return [line for line in block.group(1).splitlines() if line and not line.startswith("#")]


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    test_command = next(c for c in readme_commands() if "pytest tests/" in c)
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert test_command in ci_lines


def test_readme_first_screen_has_both_commands() -> None:
    first_screen = "\n".join((ROOT / "README.md").read_text().splitlines()[:25])
    assert "pytest smoke/ --env local" in first_screen
    assert "pytest tests/" in first_screen


def test_plugin_is_registered_once_and_loads_for_smoke_and_tests() -> None:
    for target in ("smoke/", "tests/"):
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                target,
                "--co",
                "-q",
                "-p",
                "no:cacheprovider",
                "--env",
                "local",
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        out = proc.stdout + proc.stderr
        assert "already registered" not in out, out
        assert proc.returncode in (0, 5), out
        plugins = subprocess.run(
            [sys.executable, "-m", "pytest", target, "--co", "-q", "--trace-config", "--env", "local"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        ).stdout
        assert len(re.findall(r"cloudrun_smoke[/\\]plugin[/\\]__init__\.py", plugins)) == 1, plugins
