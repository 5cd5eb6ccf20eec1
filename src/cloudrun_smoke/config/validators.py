"""Parsers of configuration values: each returns the value or raises ``ValueError`` saying what was
expected and what was found (the caller adds the file and the key)."""

from __future__ import annotations

from typing import Any


def string(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {value!r}")
    return value


def nonempty_string(value: Any) -> str:
    if not string(value).strip():
        raise ValueError("must not be empty")
    return value


def positive_number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ValueError(f"expected a positive number, got {value!r}")
    return float(value)


def non_negative_number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError(f"expected a number >= 0, got {value!r}")
    return float(value)


def positive_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"expected a positive whole number, got {value!r}")
    return value


def non_negative_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"expected a whole number >= 0, got {value!r}")
    return value


def boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {value!r}")
    return value


def table(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"expected a table, got {value!r}")
    return value


def string_table(value: Any) -> dict[str, str]:
    result = table(value)
    for k, v in result.items():
        if not isinstance(v, str):
            raise ValueError(f"{k}: expected a string value, got {v!r}")
    return result
