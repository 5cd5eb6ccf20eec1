"""Every repository path the README and the docs cite exists, so a reader who follows one lands somewhere.

A citation is a word in backticks or in parentheses (a Markdown link's target included) whose first
segment is an entry at the top of the repository: ``tests/e2e/test_smoke_suite.py``, ``smoke/``,
``docs/faults.md#local-stack``. A ``::name`` after a Python file names a function or class in it, which
must exist too. API paths (``/api/health``), metric types and IAM roles start otherwise, and words
with a placeholder (``smoke/...::test_x``) stand for a family of paths: neither is a citation.
"""

from __future__ import annotations

import ast
import re

import pytest

from helpers.paths import ROOT

DOCS = ("README.md", "docs/faults.md", "docs/architecture.md")
TOP = frozenset(entry.name for entry in ROOT.iterdir() if entry.name != ".git")
SPANS = re.compile(r"`([^`\n]+)`|\(([^()\n]+)\)")
TRIM = ".,;:!?'\"*`"
PLACEHOLDER = re.compile(r"\.\.\.|…|[<>{}*]")  # `smoke/...::test_x`, `bench/results/<date>.json`


def cited(text: str) -> list[str]:
    """The words of ``text`` that name a repository path, as written (anchor and ``::`` part kept)."""
    words = (word for match in SPANS.finditer(text) for word in re.split(r"[\s,]+", match[1] or match[2]))
    paths = []
    for word in words:
        word = word.strip(TRIM)
        if PLACEHOLDER.search(word):
            continue
        first = word.split("/", 1)[0].split("::", 1)[0].split("#", 1)[0]
        if first in TOP and ("/" in word or "." in first):
            paths.append(word)
    return paths


def missing(citation: str) -> str | None:
    """Why ``citation`` leads nowhere, or None when it exists."""
    path, _, name = citation.split("#", 1)[0].partition("::")
    target = ROOT / path
    if not target.exists():
        return "no such file or folder"
    if name:
        defined = {
            node.name
            for node in ast.walk(ast.parse(target.read_text()))
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        }
        if not set(name.split("::")) <= defined:
            return f"no {name} in {path}"
    return None


@pytest.mark.parametrize("doc", DOCS)
def test_every_cited_path_exists(doc: str) -> None:
    citations = cited((ROOT / doc).read_text())
    broken = {c: why for c in citations if (why := missing(c))}
    assert broken == {}, f"{doc} cites paths that do not exist: {broken}"


def test_citations_are_recognised_and_other_slashes_are_not() -> None:
    text = (
        "run `pytest smoke/ --env prod` (see [faults](docs/faults.md#local-stack), "
        "`tests/e2e/test_smoke_suite.py::test_x`); `/api/health`, `roles/run.invoker`, "
        "`container/cpu/utilizations`, `smoke/...::test_x`, (`README.md`)"
    )
    assert cited(text) == [
        "smoke/",
        "docs/faults.md#local-stack",
        "tests/e2e/test_smoke_suite.py::test_x",
        "README.md",
    ]
    assert missing("tests/e2e/test_smoke_suite.py::test_x") == "no test_x in tests/e2e/test_smoke_suite.py"
    assert missing("tests/nowhere.py") == "no such file or folder"
    assert missing("docs/faults.md#local-stack") is None
