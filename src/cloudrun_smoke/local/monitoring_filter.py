"""The part of Cloud Monitoring's filter language that time-series reads use, parsed into terms.

Supported: ``metric.type = "..."`` (required, exactly one), ``resource.type``, ``resource.label(s).K``
and ``metric.label(s).K`` compared with ``=`` or ``!=`` to a string, ``starts_with("...")`` or
``one_of("a", "b")``, terms joined by ``AND``. Anything else is refused with a message naming the
part, so that a query that would not mean the same thing on Google never quietly returns nothing.
Tokens come from the Logging query lexer, so strings, comparators and their errors read the same in
both languages.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from cloudrun_smoke.local.log_query.errors import FilterError
from cloudrun_smoke.local.log_query.lexer import Token, TokenKind, tokenize

_SELECTOR = re.compile(r"^(metric|resource)\.labels?\.([A-Za-z_][A-Za-z0-9_]*)$")
_FUNCTIONS = ("starts_with", "one_of")


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


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text, monitoring=True)  # ends with an EOF token
        self.pos = 0

    def take(self) -> Token | None:
        """The next token, or None at the end of the filter."""
        token = self.tokens[self.pos]
        if token.kind is TokenKind.EOF:
            return None
        self.pos += 1
        return token

    def dotted(self, first: Token) -> str:
        """A word and the ``.word`` parts written right after it, such as ``metric.labels.code``."""
        last = first
        while (
            self.tokens[self.pos].kind is TokenKind.DOT
            and self.tokens[self.pos].start == last.end
            and self.tokens[self.pos + 1].kind is TokenKind.WORD
            and self.tokens[self.pos + 1].start == last.end + 1
        ):
            last = self.tokens[self.pos + 1]
            self.pos += 2
        return self.text[first.start : last.end]

    def fail(self, start: int, reason: str) -> FilterError:
        end = self.tokens[self.pos - 1].end if self.pos else len(self.text)
        part = self.text[start : max(end, start + 1)].strip() or self.text.strip()
        return FilterError(f"unsupported filter part {part!r}: {reason}")

    def parse(self) -> Filter:
        if self.tokens[0].kind is TokenKind.EOF:
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
            if not (joiner.kind is TokenKind.WORD and joiner.text == "AND"):
                raise self.fail(joiner.start, "terms can only be joined by AND (no OR, NOT or parentheses)")
        if not metric_types:
            raise FilterError('the filter must name one metric: metric.type = "..."')
        if len(set(metric_types)) > 1:
            raise FilterError(f"the filter names several metric types ({', '.join(metric_types)}); one only")
        return Filter(metric_types[0], tuple(terms))

    def term(self) -> Term:
        first = self.take()
        if first is None:
            raise FilterError(f"the filter {self.text!r} ends where a term is expected")
        start = first.start
        if first.kind is not TokenKind.WORD or first.text in ("AND", "OR", "NOT"):
            raise self.fail(start, "expected a selector such as metric.type or resource.labels.NAME")
        target, key = selector(self.dotted(first))
        if target is None:
            raise self.fail(
                start,
                "selectors are metric.type, resource.type, metric.labels.NAME and resource.labels.NAME",
            )
        op = self.take()
        if op is None or op.kind is not TokenKind.CMP or op.text not in ("=", "!="):
            self.value()  # the compared value, so that the message shows the whole term
            raise self.fail(start, "the comparison must be = or !=")
        negated = op.text == "!="
        value = self.value()
        if value is None:
            raise self.fail(
                start, "a quoted string, starts_with(...) or one_of(...) must follow the comparison"
            )
        if value.kind is TokenKind.STRING:
            literal = value.text
            term = Term(target, key, negated, literal.__eq__, self.text[start : self.end()], literal)
        elif value.kind is TokenKind.WORD and value.text in _FUNCTIONS:
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
            if arg is None or arg.kind is not TokenKind.STRING:
                raise self.fail(start, f"{name} takes quoted strings")
            args.append(arg.text)
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

    def value(self) -> Token | None:
        """The compared value: a string, or a word with its dotted parts (so a message shows them)."""
        token = self.take()
        if token is not None and token.kind is TokenKind.WORD:
            self.dotted(token)
        return token

    def end(self) -> int:
        return self.tokens[self.pos - 1].end


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
