"""The public names: checks (``smoke/`` and users' own) import only ``from cloudrun_smoke import ...``,
every name in ``cloudrun_smoke.__all__`` resolves, and importing the package or the plugin stays cheap."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import cloudrun_smoke
from helpers.paths import ROOT

PACKAGE = ROOT / "src" / "cloudrun_smoke"
CHECKS = sorted((ROOT / "smoke").glob("*.py"))


def _imports(path: Path) -> list[tuple[int, str, list[str]]]:
    """(line, module, names) of every import of the package in ``path``, at any depth."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "cloudrun_smoke":
            found.append((node.lineno, node.module, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            found += [
                (node.lineno, a.name, []) for a in node.names if a.name.split(".")[0] == "cloudrun_smoke"
            ]
    return found


@pytest.mark.parametrize("path", CHECKS, ids=lambda p: p.name)
def test_checks_import_only_public_names(path: Path) -> None:
    imports = _imports(path)
    wrong = [f"{path.name}:{line} {module}" for line, module, _ in imports if module != "cloudrun_smoke"]
    assert not wrong, f"checks import only `from cloudrun_smoke import ...`: {wrong}"
    unlisted = {n for _, _, names in imports for n in names} - set(cloudrun_smoke.__all__)
    assert not unlisted, f"{path.name} imports names missing from cloudrun_smoke.__all__: {sorted(unlisted)}"


@pytest.mark.parametrize("name", cloudrun_smoke.__all__)
def test_every_public_name_resolves(name: str) -> None:
    assert getattr(cloudrun_smoke, name) is not None


def test_type_checkers_see_the_same_names() -> None:
    """The ``TYPE_CHECKING`` imports (for editors and type checkers) list exactly ``__all__``."""
    tree = ast.parse((PACKAGE / "__init__.py").read_text(encoding="utf-8"))
    block = next(n for n in tree.body if isinstance(n, ast.If) and ast.unparse(n.test) == "TYPE_CHECKING")
    seen = {a.asname or a.name for n in block.body if isinstance(n, ast.ImportFrom) for a in n.names}
    assert seen == set(cloudrun_smoke.__all__)


def test_importing_the_package_and_the_plugin_stays_cheap() -> None:
    """The package imports no layer until a name is used; the plugin none of the local stack."""
    code = (
        "import sys, cloudrun_smoke; before = {m for m in sys.modules if m.startswith('cloudrun_smoke.')}; "
        "import cloudrun_smoke.plugin; "
        "print(sorted(before)); print(sorted(m for m in sys.modules if m.startswith('cloudrun_smoke.local')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == ["[]", "[]"], out


def test_the_top_of_the_package_stays_small() -> None:
    entries = [p.name for p in PACKAGE.iterdir() if p.name != "__pycache__"]
    assert len(entries) <= 16, sorted(entries)
