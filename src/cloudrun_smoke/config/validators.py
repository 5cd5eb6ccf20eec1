"""The value rules of ``smoke.toml`` as pydantic annotated types.

Each rule is a plain function that returns the value or raises ``ValueError`` saying what was expected
and what was found; :mod:`cloudrun_smoke.config.problems` adds the file and the key. Rules are strict
(TOML has types: ``"5"`` is not a number, ``true`` is not 1), so pydantic's own coercion is replaced
by them (``PlainValidator``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any

from pydantic import PlainValidator

AUTH_MODES = ("none", "dev-bypass", "bearer", "login", "id-token")
BASELINE_MODES = (
    "",
    "split",
    "sequence",
)  # [env.NAME.stack] baseline: none, both at once, one then the other
IDLE_TIMEOUT_FLOOR_S = 300.0  # longer than any wait of a run between two requests (log_deadline, grace)


def string(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {value!r}")
    return value


def nonempty_string(value: Any) -> str:
    if not string(value).strip():
        raise ValueError("must not be empty")
    return value


def _number(value: Any, within: Callable[[float], bool], expected: str) -> float:
    """``value`` as a float when it is a TOML number (not a bool) that ``within`` accepts."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not within(value):
        raise ValueError(f"expected {expected}, got {value!r}")
    return float(value)


def _whole(value: Any, within: Callable[[int], bool], expected: str) -> int:
    """``value`` when it is a TOML integer (not a bool) that ``within`` accepts."""
    if isinstance(value, bool) or not isinstance(value, int) or not within(value):
        raise ValueError(f"expected {expected}, got {value!r}")
    return value


def positive_number(value: Any) -> float:
    return _number(value, lambda v: v > 0, "a positive number")


def non_negative_number(value: Any) -> float:
    return _number(value, lambda v: v >= 0, "a number >= 0")


def probability(value: Any) -> float:
    return _number(value, lambda v: 0 < v < 1, "a number between 0 and 1 (exclusive)")


def ratio(value: Any) -> float:
    return _number(value, lambda v: v >= 1, "a ratio >= 1 (1.2: 20 % worse)")


def positive_int(value: Any) -> int:
    return _whole(value, lambda v: v > 0, "a positive whole number")


def non_negative_int(value: Any) -> int:
    return _whole(value, lambda v: v >= 0, "a whole number >= 0")


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


def regex(value: Any) -> str:
    try:
        re.compile(string(value))
    except re.error as e:
        raise ValueError(f"not a valid regular expression {value!r}: {e}") from None
    return value


def url_path(value: Any) -> str:
    if string(value) != "" and not value.startswith("/"):
        raise ValueError(f"expected a path starting with '/', got {value!r}")
    return value


def auth_mode(value: Any) -> str:
    if value not in AUTH_MODES:
        raise ValueError(f"expected one of {', '.join(AUTH_MODES)}, got {value!r}")
    return str(value)


def invoker(value: Any) -> str:
    if value not in ("", "id-token"):
        raise ValueError(f'expected "id-token" or "", got {value!r}')
    return str(value)


def tag(value: Any) -> str:
    """A Cloud Run revision tag, or "" for none."""
    if string(value) and not re.fullmatch(r"[a-z]([-a-z0-9]{0,44}[a-z0-9])?", value):
        raise ValueError(f"expected a Cloud Run tag (lower-case letters, digits, '-'), got {value!r}")
    return value


def fault_names(value: Any) -> tuple[str, ...]:
    """A list (or a comma-separated string) of fault names; unknown ``stack:`` names are refused."""
    from cloudrun_smoke.local.faults import split_faults

    names = value.split(",") if isinstance(value, str) else value
    if not isinstance(names, list | tuple) or not all(isinstance(n, str) for n in names):
        raise ValueError(f"expected a list of fault names, got {value!r}")
    split_faults(names)
    return tuple(n.strip() for n in names if n.strip())


def canary_percent(value: Any) -> int:
    return _whole(value, lambda v: 0 <= v < 100, "a whole percent from 0 (no traffic) to 99")


def baseline_mode(value: Any) -> str:
    if value not in BASELINE_MODES:
        raise ValueError(f"expected one of {', '.join(repr(m) for m in BASELINE_MODES)}, got {value!r}")
    return str(value)


def service_fault_names(value: Any) -> tuple[str, ...]:
    names = fault_names(value)
    stack = [n for n in names if n.startswith("stack:")]
    if stack:
        raise ValueError(f"faults of the service only (the stack's go in faults), got {', '.join(stack)}")
    return names


def idle_timeout(value: Any) -> float:
    seconds = non_negative_number(value)
    if 0 < seconds < IDLE_TIMEOUT_FLOOR_S:
        raise ValueError(
            f"expected 0 (off) or at least {IDLE_TIMEOUT_FLOOR_S:g} s, got {value!r}: shorter, the stack "
            "would shut an instance down in the middle of a run"
        )
    return seconds


def window_length(value: Any) -> float:
    from cloudrun_smoke.window.period import parse_duration

    return parse_duration(string(value)).total_seconds()


def switch(value: str) -> bool:
    """An on/off environment variable: 1/0, true/false, yes/no, on/off."""
    lowered = value.strip().lower()
    if lowered not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
        raise ValueError(f"expected 1 or 0 (true/false), got {value!r}")
    return lowered in ("1", "true", "yes", "on")


def strings_of(item: Callable[[Any], str]) -> Callable[[Any], tuple[str, ...]]:
    def parse(value: Any) -> tuple[str, ...]:
        if not isinstance(value, list | tuple):
            raise ValueError(f"expected a list of strings, got {value!r}")
        return tuple(item(v) for v in value)

    return parse


Text = Annotated[str, PlainValidator(string)]
NonEmptyText = Annotated[str, PlainValidator(nonempty_string)]
PositiveNumber = Annotated[float, PlainValidator(positive_number)]
NonNegativeNumber = Annotated[float, PlainValidator(non_negative_number)]
PositiveInt = Annotated[int, PlainValidator(positive_int)]
Probability = Annotated[float, PlainValidator(probability)]
Ratio = Annotated[float, PlainValidator(ratio)]
Count = Annotated[int, PlainValidator(non_negative_int)]
AtLeastOne = Annotated[int, PlainValidator(lambda v: max(1, non_negative_int(v)))]
Flag = Annotated[bool, PlainValidator(boolean)]
Table = Annotated[dict[str, Any], PlainValidator(table)]
StringTable = Annotated[dict[str, str], PlainValidator(string_table)]
Regex = Annotated[str, PlainValidator(regex)]
Regexes = Annotated[tuple[str, ...], PlainValidator(strings_of(regex))]
Texts = Annotated[tuple[str, ...], PlainValidator(strings_of(string))]
UrlPath = Annotated[str, PlainValidator(url_path)]
AuthMode = Annotated[str, PlainValidator(auth_mode)]
Invoker = Annotated[str, PlainValidator(invoker)]
Tag = Annotated[str, PlainValidator(tag)]
FaultNames = Annotated[tuple[str, ...], PlainValidator(fault_names)]
ServiceFaultNames = Annotated[tuple[str, ...], PlainValidator(service_fault_names)]
CanaryPercent = Annotated[int, PlainValidator(canary_percent)]
BaselineMode = Annotated[str, PlainValidator(baseline_mode)]
WindowLength = Annotated[float, PlainValidator(window_length)]


class SubKeyError(ValueError):
    """A rule across keys refuses one key below the validated one: the problem names that key."""

    def __init__(self, keys: tuple[str, ...], message: str) -> None:
        super().__init__(message)
        self.keys = keys


def pattern_forms(value: Any) -> dict[str, list[str]]:
    """``"archive.enqueued" = ["regex", ...]`` (or one regex): the accepted forms of a catalogue pattern."""
    result = {}
    for name, forms in table(value).items():
        if isinstance(forms, str):
            forms = [forms]
        if not isinstance(forms, list) or not forms or not all(isinstance(f, str) for f in forms):
            raise SubKeyError((name,), "expected a regular expression or a list of them")
        result[name] = forms
    from cloudrun_smoke.logs.patterns import catalogue_with

    try:
        catalogue_with(result)
    except ValueError as e:
        name, _, problem = str(e).partition(": ")
        raise SubKeyError((name,), problem) from None
    return result


def known_failure(value: Any) -> Any:
    """``{reason = "...", link = "..."}``: the reason is required (the link is recommended)."""
    if not isinstance(value, dict) or not isinstance(value.get("reason"), str) or not value["reason"].strip():
        raise ValueError('expected { reason = "...", link = "..." }')
    return value


PatternForms = Annotated[dict[str, list[str]], PlainValidator(pattern_forms)]
