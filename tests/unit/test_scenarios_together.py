"""Scenarios start together, one thread each: two that each need the other to be under way both
finish (started one after the other, the first would wait for the second forever)."""

from __future__ import annotations

import threading

import pytest

from cloudrun_smoke.service import scenarios


def test_scenarios_run_at_once_with_their_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    both = threading.Barrier(2, timeout=10)

    def archive(smoke_run: str) -> str:
        both.wait()
        return f"archive of {smoke_run}"

    def batch(smoke_run: str, smoke_env: str) -> str:
        both.wait()
        return f"batch of {smoke_run} in {smoke_env}"

    monkeypatch.setitem(scenarios.SCENARIO_FIXTURES, "archive", archive)
    monkeypatch.setitem(scenarios.SCENARIO_FIXTURES, "batch", batch)
    asked: list[str] = []

    def value_of(name: str) -> str:
        asked.append(name)
        return name.removeprefix("smoke_")

    scenarios.start_together(["archive", "batch"], value_of)
    started = scenarios._started
    assert started.pop("archive").result(timeout=15) == "archive of run"
    assert started.pop("batch").result(timeout=15) == "batch of run in env"
    assert sorted(asked) == ["smoke_env", "smoke_run", "smoke_run"]


def test_a_scenario_whose_arguments_fail_is_left_to_its_fixture(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(scenarios.SCENARIO_FIXTURES, "needs_users", lambda smoke_users: smoke_users)

    def value_of(name: str) -> object:
        raise RuntimeError("no URL yet")

    scenarios.start_together(["needs_users"], value_of)
    assert "needs_users" not in scenarios._started
