"""The tokenizer shared by the emulated filter languages (Cloud Logging queries, Monitoring filters).

Strings are double-quoted with C-style escapes (others are kept as written, so a regular expression
such as ``"\\d+"`` reaches RE2 intact); ``--`` starts a comment in a Logging query;
comparators are ``= != < <= > >= : =~ !~``. Positions are reported as "column N" (or "line L,
column N" in a multi-line filter).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from cloudrun_smoke.local.log_query.errors import FilterError

__all__ = ["Token", "TokenKind", "describe", "position", "tokenize"]


class TokenKind(Enum):
    WORD = "word"
    STRING = "string"
    DOT = "'.'"
    LPAREN = "'('"
    RPAREN = "')'"
    COMMA = "','"
    MINUS = "'-'"
    STAR = "'*'"
    CMP = "comparator"
    EOF = "the end of the filter"


@dataclass(frozen=True)
class Token:
    kind: TokenKind
    text: str  # a STRING's decoded value; otherwise the source text
    start: int
    end: int


_PUNCTUATION = {
    "(": TokenKind.LPAREN,
    ")": TokenKind.RPAREN,
    ",": TokenKind.COMMA,
    "*": TokenKind.STAR,
    ".": TokenKind.DOT,
    "-": TokenKind.MINUS,
}
_WORD_STOP = frozenset("()\":=<>!~,*.'")  # '-' and '+' may appear inside unquoted text
_COMPARATORS = ("<=", ">=", "!=", "=~", "!~", "=", "<", ">", ":")
_BAD_COMPARATORS = {"==": "'='", "<>": "'!='", "=>": "'>='", "=<": "'<='", "!:": "NOT FIELD:VALUE"}
_SIMPLE_ESCAPES = {'"': '"', "\\": "\\", "n": "\n", "t": "\t", "r": "\r"}
_HEX_ESCAPES = {"x": 2, "u": 4, "U": 8}
_HEX_RE = re.compile(r"[0-9A-Fa-f]+")


def tokenize(text: str, *, monitoring: bool = False) -> list[Token]:
    """The filter's tokens, ending with one EOF token; malformed strings or comparators raise.

    The Logging query language quotes strings with ``"`` and has ``--`` comments; a Monitoring filter
    (``monitoring=True``) also quotes with ``'`` and has no comments.
    """
    return _Lexer(text, monitoring).tokenize()


def position(text: str, pos: int) -> str:
    """Where ``pos`` is, as a reader counts: "column N", or "line L, column N" in a multi-line filter."""
    column = pos - (text.rfind("\n", 0, pos) + 1) + 1
    if "\n" not in text:
        return f"column {column}"
    return f"line {text.count(chr(10), 0, pos) + 1}, column {column}"


def describe(token: Token) -> str:
    """The token as an error message names it."""
    if token.kind is TokenKind.STRING:
        shown = token.text if len(token.text) <= 30 else token.text[:27] + "..."
        return f"the string {shown!r}"
    if token.kind in (TokenKind.WORD, TokenKind.CMP):
        return f"'{token.text}'"
    return token.kind.value


class _Lexer:
    def __init__(self, text: str, monitoring: bool) -> None:
        self.text = text
        self.quotes = "\"'" if monitoring else '"'
        self.comments = not monitoring

    def _at(self, pos: int) -> str:
        return position(self.text, pos)

    def tokenize(self) -> list[Token]:
        text, n, i = self.text, len(self.text), 0
        tokens: list[Token] = []
        while i < n:
            c = text[i]
            if c.isspace():
                i += 1
            elif self.comments and text.startswith("--", i):  # a comment runs to the end of the line
                end = text.find("\n", i)
                i = n if end < 0 else end
            elif c in self.quotes:
                tokens.append(self._string(i))
                i = tokens[-1].end
            elif c == "'":
                raise FilterError(f"single quote at {self._at(i)}: strings are written in double quotes")
            elif c in _PUNCTUATION:
                tokens.append(Token(_PUNCTUATION[c], c, i, i + 1))
                i += 1
            elif c in "=!<>~:":
                tokens.append(self._comparator(i))
                i = tokens[-1].end
            else:
                j = i
                while j < n and not text[j].isspace() and text[j] not in _WORD_STOP:
                    j += 1
                tokens.append(Token(TokenKind.WORD, text[i:j], i, j))
                i = j
        tokens.append(Token(TokenKind.EOF, "", n, n))
        return tokens

    def _comparator(self, i: int) -> Token:
        pair = self.text[i : i + 2]
        if pair in _BAD_COMPARATORS:
            raise FilterError(f"unknown comparator '{pair}' at {self._at(i)}; write {_BAD_COMPARATORS[pair]}")
        for op in _COMPARATORS:
            if self.text.startswith(op, i):
                return Token(TokenKind.CMP, op, i, i + len(op))
        if self.text[i] == "!":
            raise FilterError(
                f"'!' at {self._at(i)} is not an operator: negate with NOT or '-', compare with '!=' or '!~'"
            )
        raise FilterError(f"'~' at {self._at(i)} is only valid in the comparators '=~' and '!~'")

    def _string(self, start: int) -> Token:
        text, n = self.text, len(self.text)
        out: list[str] = []
        quote, i = text[start], start + 1
        while i < n:
            c = text[i]
            if c == quote:
                return Token(TokenKind.STRING, "".join(out), start, i + 1)
            if c != "\\":
                out.append(c)
                i += 1
                continue
            escape = text[i + 1 : i + 2]
            if escape in _SIMPLE_ESCAPES or escape == quote:
                out.append(_SIMPLE_ESCAPES.get(escape, escape))
                i += 2
            elif escape in _HEX_ESCAPES:
                width = _HEX_ESCAPES[escape]
                digits = text[i + 2 : i + 2 + width]
                if len(digits) != width or not _HEX_RE.fullmatch(digits) or int(digits, 16) > 0x10FFFF:
                    raise FilterError(
                        f"bad escape '\\{escape}' at {self._at(i)}: it takes {width} hexadecimal digits"
                    )
                out.append(chr(int(digits, 16)))
                i += 2 + width
            elif escape:
                # Other escapes stay as written, so a regular expression such as "\d+" reaches RE2 intact.
                out.append("\\" + escape)
                i += 2
            else:
                break
        raise FilterError(f"unterminated string starting at {self._at(start)}: no closing '{quote}'")
