"""The part of Cloud Monitoring's filter language that time-series reads use, parsed into terms.

Supported: ``metric.type = "..."`` (required, exactly one), ``resource.type``, ``resource.label(s).K``
and ``metric.label(s).K`` compared with ``=`` or ``!=`` to a string, ``starts_with("...")`` or
``one_of("a", "b")``, terms joined by ``AND``. Anything else is refused with a message naming the
part, so that a query that would not mean the same thing on Google never quietly returns nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
      | (?P<op>!=|<=|>=|=~|!~|=|<|>|:)
      | (?P<punct>[(),])
      | (?P<word>[A-Za-z0-9_][A-Za-z0-9_.\-/]*)
      | (?P<other>\S)
    )""",
    re.VERBOSE,
)
_SELECTOR = re.compile(r"^(metric|resource)\.labels?\.([A-Za-z_][A-Za-z0-9_]*)$")
_FUNCTIONS = ("starts_with", "one_of")


class FilterError(ValueError):
    """The filter cannot be served; the message names the offending part."""


@dataclass(frozen=True)
class Token:
    kind: str
    text: str
    at: int

    @property
    def value(self) -> str:
        """A string literal without its quotes, escapes resolved."""
        return re.sub(r"\\(.)", r"\1", self.text[1:-1])


@dataclass(frozen=True)
class Term:
    """``target`` is ``resource.type``, ``metric.label`` or ``resource.label`` (``key`` names the label)."""

    target: str
    key: str
    negated: bool
    test: Callable[[str], bool]
    text: str
    literal: str | None = None  # the compared string of a plain ``=``/``!=``

    def matches(self, value: str) -> bool:
        return self.test(value) != self.negated


@dataclass(frozen=True)
class Filter:
    metric_type: str
    terms: tuple[Term, ...]


def _tokens(text: str) -> list[Token]:
    tokens = []
    for match in _TOKEN.finditer(text):
        kind = match.lastgroup
        if kind is None:
            continue
        tokens.append(Token(kind, match.group(kind), match.start(kind)))
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokens(text)
        self.pos = 0

    def peek(self) -> Token | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> Token | None:
        token = self.peek()
        self.pos += token is not None
        return token

    def fail(self, start: int, reason: str) -> FilterError:
        end = (
            self.tokens[self.pos - 1].at + len(self.tokens[self.pos - 1].text) if self.pos else len(self.text)
        )
        part = self.text[start : max(end, start + 1)].strip() or self.text.strip()
        return FilterError(f"unsupported filter part {part!r}: {reason}")

    def parse(self) -> Filter:
        if not self.tokens:
            raise FilterError('the filter is empty; it must name a metric: metric.type = "..."')
        terms: list[Term] = []
        metric_types: list[str] = []
        while True:
            term = self.term()
            if term.target == "metric.type":
                metric_types.append(term.literal or "")
            else:
                terms.append(term)
            joiner = self.take()
            if joiner is None:
                break
            if not (joiner.kind == "word" and joiner.text == "AND"):
                raise self.fail(joiner.at, "terms can only be joined by AND (no OR, NOT or parentheses)")
        if not metric_types:
            raise FilterError('the filter must name one metric: metric.type = "..."')
        if len(set(metric_types)) > 1:
            raise FilterError(f"the filter names several metric types ({', '.join(metric_types)}); one only")
        return Filter(metric_types[0], tuple(terms))

    def term(self) -> Term:
        first = self.take()
        if first is None:
            raise FilterError(f"the filter {self.text!r} ends where a term is expected")
        start = first.at
        if first.kind != "word" or first.text in ("AND", "OR", "NOT"):
            raise self.fail(start, "expected a selector such as metric.type or resource.labels.NAME")
        target, key = selector(first.text)
        if target is None:
            raise self.fail(
                start,
                "selectors are metric.type, resource.type, metric.labels.NAME and resource.labels.NAME",
            )
        op = self.take()
        if op is None or op.kind != "op" or op.text not in ("=", "!="):
            self.take()  # the compared value, so that the message shows the whole term
            raise self.fail(start, "the comparison must be = or !=")
        negated = op.text == "!="
        value = self.take()
        if value is None:
            raise self.fail(
                start, "a quoted string, starts_with(...) or one_of(...) must follow the comparison"
            )
        if value.kind == "string":
            literal = value.value
            term = Term(target, key, negated, literal.__eq__, self.text[start : self.end()], literal)
        elif value.kind == "word" and value.text in _FUNCTIONS:
            term = Term(target, key, negated, self.function(start, value.text), self.text[start : self.end()])
        else:
            raise self.fail(
                start, 'the value must be a quoted string, starts_with("...") or one_of("...", ...)'
            )
        if target == "metric.type" and (negated or term.literal is None):
            raise self.fail(start, 'the metric must be named exactly: metric.type = "..."')
        return term

    def function(self, start: int, name: str) -> Callable[[str], bool]:
        opening = self.take()
        if opening is None or opening.text != "(":
            raise self.fail(start, f"{name} needs its arguments in parentheses")
        args: list[str] = []
        while True:
            arg = self.take()
            if arg is None or arg.kind != "string":
                raise self.fail(start, f"{name} takes quoted strings")
            args.append(arg.value)
            after = self.take()
            if after is not None and after.text == ")":
                break
            if after is None or after.text != ",":
                raise self.fail(start, f"{name}'s arguments are separated by commas and closed by ')'")
        if name == "starts_with":
            if len(args) != 1:
                raise self.fail(start, "starts_with takes one string")
            prefix = args[0]
            return lambda value: value.startswith(prefix)
        choices = frozenset(args)
        return lambda value: value in choices

    def end(self) -> int:
        last = self.tokens[self.pos - 1]
        return last.at + len(last.text)


def selector(word: str) -> tuple[str | None, str]:
    """(target, label key) of ``metric.type``, ``resource.type`` or ``metric|resource.label(s).KEY``."""
    if word in ("metric.type", "resource.type"):
        return word, ""
    match = _SELECTOR.match(word)
    if match is None:
        return None, ""
    return f"{match.group(1)}.label", match.group(2)


def parse_filter(text: str) -> Filter:
    """The filter's metric type and its other terms; ``FilterError`` names the unsupported part."""
    return _Parser(text).parse()
