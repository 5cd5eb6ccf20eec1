"""The ``cloudrun-smoke`` command."""

from __future__ import annotations


def main(argv: list[str] | None = None) -> int:
    print("cloudrun-smoke: use `pytest smoke/ --env NAME`")
    return 0
