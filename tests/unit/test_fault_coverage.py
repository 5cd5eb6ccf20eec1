"""Every smoke check is proven by a fault: against a service with that fault, the check fails.

A check that no fault makes fail may be unable to fail at all: the batch's log-line check passed against
a service whose line was off by one, until a fault asked it to fail. Each check of smoke/ must be the
`failing` check of a row of CATALOGUE (tests/helpers/catalogue.py, run by tests/e2e/test_fault_catalogue.py), or be proven by a test of its own
listed in PROVEN_ELSEWHERE. The window checks (smoke/test_window.py) have their own list, in
tests/e2e/test_window_e2e.py::test_every_window_check_is_proven_by_a_fault, and so do the regression
checks (smoke/test_regression.py), in tests/e2e/test_regression_e2e.py.
"""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

from helpers.catalogue import CATALOGUE
from helpers.paths import ROOT

SMOKE = ROOT / "smoke"
WINDOW = "test_window.py"
REGRESSION = "test_regression.py"

# Checks proven by a test of their own rather than by a row of CATALOGUE: check -> the test that proves it.
PROVEN_ELSEWHERE = {
    # needs dev_bypass_rejected = true and AUTH_DEV_BYPASS=0 in the stack's environment
    "test_security.py::test_dev_bypass_is_refused": (
        "tests/e2e/test_auth_modes.py::test_the_bypass_accepted_where_it_is_forbidden_fails_the_security_check"
    ),
    # needs a revision that sets DATABASE_URL without CHROMA_HOST
    "test_deployment.py::test_state_is_shared_when_several_instances_may_serve": (
        "tests/e2e/test_shared_state.py::test_half_shared_state_fails_the_deployment_check"
    ),
    # needs the preferences-in-stats variant and preferences_in_stats = true
    "test_preferences.py::test_preferences_are_visible_and_not_duplicated": (
        "tests/e2e/test_fault_catalogue.py::test_preference_faults_fail_where_stats_show_them"
    ),
}

_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)


def smoke_checks(folder: Path = SMOKE) -> list[str]:
    """``file.py::test_name`` of every check in ``folder`` but the window checks, as pytest collects
    them: module-level test functions and the test methods of ``Test`` classes."""
    checks = []
    for path in sorted(folder.glob("test_*.py")):
        if path.name in (WINDOW, REGRESSION):
            continue
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, _FUNCTIONS) and node.name.startswith("test"):
                checks.append(f"{path.name}::{node.name}")
            elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
                checks += [
                    f"{path.name}::{node.name}::{method.name}"
                    for method in node.body
                    if isinstance(method, _FUNCTIONS) and method.name.startswith("test")
                ]
    return checks


def unproven(checks: list[str]) -> list[str]:
    failing = {row.failing for row in CATALOGUE}
    return [check for check in checks if check not in failing and check not in PROVEN_ELSEWHERE]


def test_every_smoke_check_is_proven_by_a_fault() -> None:
    missing = unproven(smoke_checks())
    assert not missing, (
        f"{len(missing)} smoke check(s) that no fault makes fail:\n"
        + "\n".join(f"    {check}" for check in missing)
        + "\nGive each a fault (src/emergence_reference/faults.py and docs/faults.md) and a row of "
        "CATALOGUE in tests/helpers/catalogue.py with the check as `failing`; or, when a test of its "
        "own proves it, an entry of PROVEN_ELSEWHERE here."
    )


def test_a_new_check_without_a_fault_is_named(tmp_path: Path) -> None:
    for path in SMOKE.glob("test_*.py"):
        (tmp_path / path.name).write_text(path.read_text())
    (tmp_path / "test_new.py").write_text(
        "def test_something_new():\n    pass\n\n\nclass TestMore:\n    def test_more(self):\n        pass\n"
    )
    (tmp_path / WINDOW).write_text("def test_window_check():\n    pass\n")
    assert unproven(smoke_checks(tmp_path)) == [
        "test_new.py::test_something_new",
        "test_new.py::TestMore::test_more",
    ]


def test_the_catalogue_and_the_proofs_name_what_exists() -> None:
    checks = set(smoke_checks())
    named = [(row.name, check) for row in CATALOGUE for check in (row.failing, *row.passing)]
    assert [(row, check) for row, check in named if check not in checks] == [], "no such smoke check"
    assert [check for check in PROVEN_ELSEWHERE if check not in checks] == [], "no such smoke check"
    absent = []
    for test in PROVEN_ELSEWHERE.values():
        path, _, name = test.partition("::")
        tree = ast.parse((ROOT / path).read_text())
        if not any(isinstance(node, _FUNCTIONS) and node.name == name for node in tree.body):
            absent.append(test)
    assert absent == [], "PROVEN_ELSEWHERE names tests that do not exist"
    duplicated = [name for name, count in Counter(row.name for row in CATALOGUE).items() if count > 1]
    assert duplicated == [], "rows with the same test id: give one an explicit Row(id=...)"
