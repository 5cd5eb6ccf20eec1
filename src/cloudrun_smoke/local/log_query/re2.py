"""RE2 on Python ``re``: translate the syntax Python spells differently, refuse what RE2 lacks.

Cloud Logging runs regular expressions with RE2; a pattern RE2 would reject raises
:class:`FilterError` instead of running with Python's different meaning.
"""

from __future__ import annotations

import re
import warnings

from cloudrun_smoke.local.log_query.errors import FilterError


class _NotRe2(Exception):
    """A construct Python's ``re`` has but RE2 (so Cloud Logging) rejects."""


_POSIX_CLASSES = {
    "alnum": "0-9A-Za-z",
    "alpha": "A-Za-z",
    "ascii": "\\x00-\\x7f",
    "blank": "\\t ",
    "cntrl": "\\x00-\\x1f\\x7f",
    "digit": "0-9",
    "graph": "!-~",
    "lower": "a-z",
    "print": " -~",
    "punct": "!-/:-@\\[-`{-~",
    "space": "\\t\\n\\v\\f\\r ",
    "upper": "A-Z",
    "word": "0-9A-Za-z_",
    "xdigit": "0-9A-Fa-f",
}
_UNSUPPORTED_GROUPS = (
    ("=", "a lookahead"),
    ("!", "a lookahead"),
    ("<=", "a lookbehind"),
    ("<!", "a lookbehind"),
    ("P=", "a named backreference"),
    (">", "an atomic group"),
    ("(", "a conditional group"),
    ("#", "a comment group"),
)


def compile_regex(pattern: str, where: str) -> re.Pattern[str]:
    # Known gaps against RE2: Python's '$' also matches before a final newline, and its \d, \w, \s
    # are Unicode-aware where RE2's are ASCII.
    try:
        translated = _re2_to_python(pattern)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # FutureWarnings about set syntax that RE2 reads plainly
            return re.compile(translated)
    except _NotRe2 as exc:
        raise FilterError(
            f"regular expression {pattern!r} at {where} uses {exc}, which RE2 (and so Cloud Logging) "
            "does not support"
        ) from None
    except re.error as exc:
        raise FilterError(f"invalid regular expression {pattern!r} at {where}: {exc.msg}") from None


def _re2_to_python(pattern: str) -> str:
    """Translate the RE2 syntax that Python spells differently; reject what RE2 doesn't have."""
    out: list[str] = []
    i, n = 0, len(pattern)
    in_class = False
    while i < n:
        c = pattern[i]
        if c == "\\":
            i = _translate_escape(pattern, i, in_class, out)
        elif in_class:
            if pattern.startswith("[:", i) and (end := pattern.find(":]", i)) > 0:
                name = pattern[i + 2 : end]
                if name.lstrip("^") not in _POSIX_CLASSES:
                    raise re.error(f"unknown character class [:{name}:]")
                if name.startswith("^"):
                    raise re.error(f"negated class [:{name}:] inside a set is not supported by the emulator")
                out.append(_POSIX_CLASSES[name])
                i = end + 2
                continue
            in_class = c != "]"
            out.append("\\[" if c == "[" else c)
            i += 1
        elif c == "[":
            in_class = True
            out.append(c)
            i += 1
            if pattern.startswith("^", i):
                out.append("^")
                i += 1
            if pattern.startswith("]", i):  # a leading ']' is a literal in RE2
                out.append("\\]")
                i += 1
        elif pattern.startswith("(?", i):
            rest = pattern[i + 2 :]
            for prefix, what in _UNSUPPORTED_GROUPS:
                if rest.startswith(prefix):
                    raise _NotRe2(what)
            if rest.startswith("<"):  # RE2's (?<name>re) is Python's (?P<name>re)
                out.append("(?P<")
                i += 3
                continue
            flags = re.match(r"[A-Za-z-]*[:)]", rest)
            if flags and any(flag not in "imsU-" for flag in flags.group()[:-1]):
                raise _NotRe2(f"the flags (?{flags.group()}")
            out.append("(?")
            i += 2
        else:
            if c in "*+?}" and pattern.startswith("+", i + 1) and _closes_quantifier(pattern, i):
                raise _NotRe2("a possessive quantifier")
            out.append(c)
            i += 1
    return "".join(out)


def _closes_quantifier(pattern: str, i: int) -> bool:
    return pattern[i] != "}" or re.search(r"\{\d+(?:,\d*)?$", pattern[:i]) is not None


def _translate_escape(pattern: str, i: int, in_class: bool, out: list[str]) -> int:
    nxt = pattern[i + 1 : i + 2]
    if nxt == "Q":  # \Q...\E quotes a literal run
        end = pattern.find("\\E", i + 2)
        out.append(re.escape(pattern[i + 2 :] if end < 0 else pattern[i + 2 : end]))
        return len(pattern) if end < 0 else end + 2
    if nxt == "z":
        out.append("\\Z")
        return i + 2
    if nxt == "Z":
        raise _NotRe2("\\Z (write \\z or $)")
    if nxt.isdigit() and nxt != "0" and not in_class:
        octal = re.match(r"[1-7][0-7]{1,2}", pattern[i + 1 :])
        if octal is None:
            raise _NotRe2("a backreference")
        out.append("\\" + octal.group().rjust(3, "0"))  # RE2 reads \12 as octal; Python wants \012
        return i + 1 + len(octal.group())
    out.append(pattern[i : i + 2])
    return i + 2
