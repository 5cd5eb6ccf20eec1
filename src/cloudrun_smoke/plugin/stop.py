"""Stopping a run whose environment is unusable (credentials, API, stack): one plain line, exit 4.

Failing each check with the same message would bury it; the run stops like a usage error, and the
line reads as one plain ``ERROR:`` line on stderr instead of pytest's ``! _pytest.outcomes.Exit !``
banner.
"""

from __future__ import annotations

import sys
from typing import NoReturn

import pytest

EXIT_PREFIX = "cloudrun-smoke: "
EXIT_STATUS = 4  # like a usage error


def stop(error: Exception | str) -> NoReturn:
    """Stop the run: the environment itself is unusable."""
    pytest.exit(f"{EXIT_PREFIX}{error}", returncode=EXIT_STATUS)


class _PlainExit:
    """Replaces the terminal reporter's banner for a run that :func:`stop` ended with the plain line."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.message = ""

    @pytest.hookimpl(trylast=True)  # after the terminal reporter kept the exception to print it
    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
        if not excinfo.errisinstance(pytest.exit.Exception) or not str(excinfo.value).startswith(EXIT_PREFIX):
            return
        terminal = self.config.pluginmanager.get_plugin("terminalreporter")
        if terminal is not None and hasattr(terminal, "_keyboardinterrupt_memo"):
            terminal._keyboardinterrupt_memo = None
            self.message = str(excinfo.value)

    def pytest_unconfigure(self) -> None:
        if self.message:
            sys.stderr.write(f"ERROR: {self.message}\n")


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(_PlainExit(config), "cloudrun-smoke-plain-exit")
