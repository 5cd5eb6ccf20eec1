"""The query parser: tokens to a syntax tree, checked against the LogEntry schema at compile time.

Follows Google's "Logging query language" reference: ``NOT`` binds tightest, then ``OR``, then
``AND`` (``a OR b AND c`` is ``(a OR b) AND c``); juxtaposition is ``AND`` and ``-`` is ``NOT``;
only upper-case ``AND``/``OR``/``NOT`` are operators (lower-case ``and`` is a search term).
Whatever the emulator does not implement raises :class:`FilterError` rather than matching everything.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from urllib.parse import unquote

from cloudrun_smoke.local.log_query.errors import FilterError
from cloudrun_smoke.local.log_query.lexer import Token, TokenKind, describe, position, tokenize
from cloudrun_smoke.local.log_query.re2 import compile_regex
from cloudrun_smoke.local.log_query.schema import LOG_ENTRY, proto_name
from cloudrun_smoke.local.log_query.syntax import (
    And,
    Check,
    Comparison,
    FieldRef,
    GlobalRestriction,
    IpInNet,
    LogFilter,
    LogId,
    MatchAll,
    Node,
    Not,
    Or,
    Presence,
    Value,
)
from cloudrun_smoke.local.log_query.values import CONTAINERS, CONVERTERS, Kind, Unconvertible, fold

MAX_FILTER_LENGTH = 20_000  # the documented limit; comments count towards it
MAX_NESTING = 100  # parentheses; the docs set no limit, Python's stack does

_KEYWORDS = frozenset({"AND", "OR", "NOT"})
_UNSUPPORTED_FUNCTIONS = frozenset({"sample", "search", "cast", "regexp_extract", "source"})


def compile_filter(text: str) -> LogFilter:
    """Parse once; an empty or whitespace-only filter matches everything."""
    if len(text) > MAX_FILTER_LENGTH:
        raise FilterError(f"the filter is {len(text)} characters long; the limit is {MAX_FILTER_LENGTH}")
    return LogFilter(text, _Parser(text).parse())


def _a(kind: Kind) -> str:
    return ("an " if kind.value[0] in "aeiouAEIOU" else "a ") + kind.value


def _is_keyword(token: Token, word: str) -> bool:
    return token.kind is TokenKind.WORD and token.text == word


def _path_name(path: list[Token]) -> str:
    return ".".join(
        '"' + s.text.replace("\\", "\\\\").replace('"', '\\"') + '"' if s.kind is TokenKind.STRING else s.text
        for s in path
    )


class _Parser:
    """Recursive descent over the documented grammar, with NOT > OR > AND:

    conjunction := disjunction { ["AND"] disjunction }     -- juxtaposition is AND
    disjunction := term { "OR" term }
    term        := ("NOT" | "-") term | group
    group       := "(" conjunction ")" | atom
    atom        := FIELD OP VALUE | FIELD OP "(" values ")" | FIELD ":*" | VALUE | function(...)

    The same boolean grammar parses a parenthesised right-hand side, whose atoms are values.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.index = 0
        self.depth = 0  # open parentheses, bounded so parsing and evaluation stay clear of the stack limit

    # -- positions and errors ---------------------------------------------------------------------------
    def _at(self, pos: int) -> str:
        return position(self.text, pos)

    def _unexpected(self, token: Token) -> FilterError:
        at = self._at(token.start)
        if token.kind is TokenKind.RPAREN:
            return FilterError(f"unbalanced ')' at {at}: no matching '('")
        if token.kind is TokenKind.CMP:
            return FilterError(
                f"unexpected comparator '{token.text}' at {at}: a comparison is FIELD {token.text} VALUE "
                "with a field path on the left (quote values that contain operator characters)"
            )
        if token.kind is TokenKind.STAR:
            return FilterError(f"'*' at {at} is only allowed in the presence test FIELD:*")
        if token.kind is TokenKind.COMMA:
            return FilterError(f"unexpected ',' at {at}: commas only separate function arguments")
        if token.kind is TokenKind.DOT:
            return FilterError(
                f"unexpected '.' at {at}: write field paths without spaces and quote values that start with '.'"
            )
        return FilterError(f"unexpected {describe(token)} at {at}")

    def _peek(self, ahead: int = 0) -> Token:
        return self.tokens[min(self.index + ahead, len(self.tokens) - 1)]

    def _advance(self) -> Token:
        token = self._peek()
        self.index = min(self.index + 1, len(self.tokens) - 1)
        return token

    def _adjacent(self, before: Token, after: Token) -> bool:
        return before.end == after.start

    # -- boolean structure ------------------------------------------------------------------------------
    def parse(self) -> Node:
        if self._peek().kind is TokenKind.EOF:
            return MatchAll()
        node = self._conjunction(self._restriction, values=False)
        token = self._peek()
        if token.kind is not TokenKind.EOF:
            raise self._unexpected(token)
        return node

    def _starts_operand(self, token: Token) -> bool:
        if token.kind is TokenKind.WORD:
            return token.text not in ("AND", "OR")
        return token.kind in (TokenKind.STRING, TokenKind.LPAREN, TokenKind.MINUS)

    def _need_operand(self, operator_token: Token) -> None:
        following = self._peek()
        if self._starts_operand(following):
            return
        at = self._at(operator_token.start)
        if following.kind is TokenKind.EOF:
            raise FilterError(f"'{operator_token.text}' at {at} has nothing after it")
        raise FilterError(f"'{operator_token.text}' at {at} is followed by {describe(following)}")

    def _conjunction(self, atom: Callable[[], Node], values: bool) -> Node:
        parts = [self._disjunction(atom, values)]
        while True:
            token = self._peek()
            if _is_keyword(token, "AND"):
                self._advance()
                self._need_operand(token)
            elif not self._starts_operand(token):
                break
            parts.append(self._disjunction(atom, values))
        return parts[0] if len(parts) == 1 else And(tuple(parts))

    def _disjunction(self, atom: Callable[[], Node], values: bool) -> Node:
        parts = [self._term(atom, values)]
        while _is_keyword(self._peek(), "OR"):
            token = self._advance()
            self._need_operand(token)
            parts.append(self._term(atom, values))
        return parts[0] if len(parts) == 1 else Or(tuple(parts))

    def _term(self, atom: Callable[[], Node], values: bool) -> Node:
        negations = 0
        while True:
            token = self._peek()
            minus = token.kind is TokenKind.MINUS and not (values and self._negative_number_ahead())
            if not (_is_keyword(token, "NOT") or minus):
                break
            self._advance()
            self._need_operand(token)
            negations += 1
        node = self._group(atom, values)
        return Not(node) if negations % 2 else node  # NOT NOT x is x; a loop keeps long chains shallow

    def _group(self, atom: Callable[[], Node], values: bool) -> Node:
        opening = self._peek()
        if opening.kind is not TokenKind.LPAREN:
            return atom()
        self._advance()
        if self._peek().kind is TokenKind.RPAREN:
            raise FilterError(f"empty parentheses at {self._at(opening.start)}")
        if self.depth == MAX_NESTING:
            raise FilterError(f"parentheses nest more than {MAX_NESTING} deep at {self._at(opening.start)}")
        self.depth += 1
        node = self._conjunction(atom, values)
        self.depth -= 1
        closing = self._peek()
        if closing.kind is TokenKind.RPAREN:
            self._advance()
            return node
        if closing.kind is TokenKind.EOF:
            raise FilterError(f"unbalanced '(' at {self._at(opening.start)}: no matching ')'")
        raise self._unexpected(closing)

    def _negative_number_ahead(self) -> bool:
        minus, number = self._peek(), self._peek(1)
        return number.kind is TokenKind.WORD and self._adjacent(minus, number) and number.text[:1].isdigit()

    # -- restrictions -----------------------------------------------------------------------------------
    def _restriction(self) -> Node:
        token = self._peek()
        at = self._at(token.start)
        if token.kind is TokenKind.WORD:
            if token.text in ("AND", "OR"):
                raise FilterError(f"'{token.text}' at {at} has nothing before it")
            if token.text in ("&&", "||"):
                raise FilterError(
                    f"'{token.text}' at {at} is not an operator; write {'AND' if token.text == '&&' else 'OR'}"
                )
            following = self._peek(1)
            if following.kind is TokenKind.LPAREN and self._adjacent(token, following):
                return self._function()
        elif token.kind is not TokenKind.STRING:
            raise self._unexpected(token)
        path = self._path()
        if self._peek().kind is TokenKind.CMP:
            return self._comparison(path)
        if len(path) > 1 and any(segment.kind is TokenKind.STRING for segment in path):
            name = _path_name(path)
            raise FilterError(f'field {name} at {at} needs a comparison, such as {name}:* or {name}="value"')
        value = self._value_of(path)
        if value.is_null:
            raise FilterError(f"NULL_VALUE at {at} needs a field, as in jsonPayload.field=NULL_VALUE")
        return GlobalRestriction(Check(":", value))

    def _path(self) -> list[Token]:
        """A dotted path of words and quoted strings, written without spaces."""
        segments = [self._advance()]
        while (dot := self._peek()).kind is TokenKind.DOT and self._adjacent(segments[-1], dot):
            self._advance()
            following = self._peek()
            if following.kind not in (TokenKind.WORD, TokenKind.STRING) or not self._adjacent(dot, following):
                raise FilterError(f"'.' at {self._at(dot.start)} must be followed by a field name")
            segments.append(self._advance())
        return segments

    def _value_of(self, path: list[Token]) -> Value:
        if len(path) == 1 and path[0].kind is TokenKind.STRING:
            return Value(path[0].text, quoted=True, pos=path[0].start)
        if any(segment.kind is TokenKind.STRING for segment in path):
            raise FilterError(
                f"the value at {self._at(path[0].start)} mixes quoted and unquoted text; quote all of it"
            )
        # The docs ask for quotes around text containing '.', but such text is unambiguous here.
        return Value(".".join(segment.text for segment in path), quoted=False, pos=path[0].start)

    def _comparison(self, path: list[Token]) -> Node:
        op = self._advance()
        if len(path) == 1 and path[0].kind is TokenKind.STRING:
            raise FilterError(
                f"the left side of '{op.text}' at {self._at(op.start)} is the string {path[0].text!r}; "
                "it must be a field path such as jsonPayload.message"
            )
        ref = self._field(path)
        if op.text == ":" and self._peek().kind is TokenKind.STAR:
            star = self._advance()
            following = self._peek()
            if following.kind in (TokenKind.WORD, TokenKind.STRING) and self._adjacent(star, following):
                raise FilterError(
                    f"wildcards are not supported: '*' at {self._at(star.start)} only tests presence, "
                    f"as in {ref.name}:*"
                )
            return Presence(ref)
        if self._peek().kind is TokenKind.LPAREN:
            # FIELD OP (a OR NOT b ...): the field and comparator apply to each value inside.
            return self._group(lambda: Comparison(ref, self._test(ref, op, self._value(op))), values=True)
        return Comparison(ref, self._test(ref, op, self._value(op)))

    def _value(self, op: Token) -> Value:
        token = self._peek()
        if token.kind is TokenKind.STRING:
            self._advance()
            return Value(token.text, quoted=True, pos=token.start)
        if token.kind in (TokenKind.STAR, TokenKind.DOT):
            raise self._unexpected(token)
        if token.kind is TokenKind.MINUS and self._negative_number_ahead():
            self._advance()
            number = self._value_of(self._path())
            return Value("-" + number.text, quoted=False, pos=token.start)
        if token.kind is TokenKind.WORD and token.text not in _KEYWORDS:
            following = self._peek(1)
            if following.kind is TokenKind.LPAREN and self._adjacent(token, following):
                raise FilterError(
                    f"the function call {token.text}() at {self._at(token.start)} can't be a comparison value"
                )
            return self._value_of(self._path())
        raise FilterError(
            f"expected a value after '{op.text}' at {self._at(op.start)}, found {describe(token)}"
        )

    def _field(self, path: list[Token]) -> FieldRef:
        """Resolve a path against the LogEntry schema; an undefined field is an error, as in the docs."""
        name, at = _path_name(path), self._at(path[0].start)
        spec = LOG_ENTRY.get(proto_name(path[0].text))
        if spec is None:
            raise FilterError(
                f"unknown field '{path[0].text}' at {at}: a field path starts with a LogEntry field such as "
                "logName, resource, severity, timestamp, textPayload, jsonPayload, labels or httpRequest"
            )
        keys = [spec.key]
        for index in range(1, len(path)):
            parent = _path_name(path[:index])
            if spec.kind is Kind.MESSAGE and spec.fields is not None:
                child = spec.fields.get(proto_name(path[index].text))
                if child is None:
                    known = ", ".join(s.key for s in spec.fields.values())
                    raise FilterError(f"unknown field {name} at {at}: {parent} has the fields {known}")
                spec = child
                keys.append(child.key)
                continue
            rest = tuple(segment.text for segment in path[index:])
            if spec.kind is Kind.MAP:
                if len(rest) > 1:
                    raise FilterError(
                        f"{name} at {at} reaches below a value of {parent}, whose values are strings; "
                        f'quote a key that contains dots: {parent}."{".".join(rest)}"'
                    )
                return FieldRef(name, tuple(keys), rest, Kind.STRING)
            if spec.kind is Kind.STRUCT:
                return FieldRef(name, tuple(keys), rest, Kind.DYNAMIC, fold_keys=spec.key == "protoPayload")
            raise FilterError(
                f"{parent} is {_a(spec.kind)} and has no field {path[index].text!r} ({name} at {at})"
            )
        return FieldRef(name, tuple(keys), (), spec.kind, spec.fields)

    def _test(self, ref: FieldRef, op: Token, value: Value) -> Check:
        """Check the comparison against the field's type now, so type errors surface at compile time."""
        at, kind = self._at(value.pos), ref.kind
        if value.is_null:
            if kind is not Kind.DYNAMIC:
                raise FilterError(
                    f"NULL_VALUE at {at} matches JSON nulls in jsonPayload or protoPayload; "
                    f"{ref.name} is {_a(kind)}"
                )
            if op.text not in ("=", "!="):
                raise FilterError(
                    f"NULL_VALUE at {at} can only be compared with '=' or '!=', not '{op.text}'"
                )
            return Check(op.text, value)
        if op.text in ("=~", "!~"):
            if kind not in (Kind.STRING, Kind.DYNAMIC):
                raise FilterError(
                    f"regular expressions only match string fields; {ref.name} is {_a(kind)} "
                    f"('{op.text}' at {self._at(op.start)})"
                )
            return Check(op.text, value, compile_regex(value.text, at))
        if kind in CONTAINERS and op.text != ":":
            raise FilterError(
                f"{ref.name} is {_a(kind)}: compare one of its fields, or search inside it with "
                f"{ref.name}:VALUE ('{op.text}' at {self._at(op.start)})"
            )
        if kind in CONVERTERS:
            # The docs say a failed conversion makes the comparison fail; for fields whose type is
            # fixed we reject it instead, so a typo such as severity>=EROR can't match nothing silently.
            try:
                CONVERTERS[kind](value.text)
            except Unconvertible as exc:
                raise FilterError(
                    f"{ref.name} is {_a(kind)}, but {value.text!r} at {at} is not {exc}"
                ) from None
        return Check(op.text, value)

    # -- functions --------------------------------------------------------------------------------------
    def _function(self) -> Node:
        name_token = self._advance()
        opening = self._advance()
        name, at = name_token.text, self._at(name_token.start)
        if name.lower() in _UNSUPPORTED_FUNCTIONS:
            raise FilterError(f"the function {name}() at {at} is not supported by the Logging emulator")
        if name.lower() not in ("log_id", "ip_in_net"):
            raise FilterError(
                f"unknown function {name}() at {at}; the emulator supports log_id() and ip_in_net()"
            )
        args: list[list[Token]] = []
        if self._peek().kind is TokenKind.RPAREN:
            self._advance()
        else:
            while True:
                token = self._peek()
                if token.kind not in (TokenKind.WORD, TokenKind.STRING) or token.text in _KEYWORDS:
                    raise FilterError(
                        f"expected an argument of {name}() at {self._at(token.start)}, found {describe(token)}"
                    )
                args.append(self._path())
                separator = self._advance()
                if separator.kind is TokenKind.RPAREN:
                    break
                if separator.kind is TokenKind.EOF:
                    raise FilterError(f"unbalanced '(' at {self._at(opening.start)}: no matching ')'")
                if separator.kind is not TokenKind.COMMA:
                    raise self._unexpected(separator)
        node = self._log_id(name, at, args) if name.lower() == "log_id" else self._ip_in_net(name, at, args)
        if self._peek().kind is TokenKind.CMP:
            raise FilterError(f"{name}() at {at} is a restriction on its own; it can't be compared")
        return node

    def _log_id(self, name: str, at: str, args: list[list[Token]]) -> Node:
        if len(args) != 1:
            raise FilterError(
                f'{name}() at {at} takes one argument, a log ID such as "run.googleapis.com/stdout"'
            )
        return LogId(fold(unquote(self._value_of(args[0]).text)))

    def _ip_in_net(self, name: str, at: str, args: list[list[Token]]) -> Node:
        if len(args) != 2:
            raise FilterError(
                f'{name}() at {at} takes two arguments: a field and a subnet such as "10.0.0.0/8"'
            )
        ref = self._field(args[0])
        if ref.kind not in (Kind.STRING, Kind.DYNAMIC):
            raise FilterError(f"{name}() at {at} needs a string field; {ref.name} is {_a(ref.kind)}")
        subnet = self._value_of(args[1]).text
        try:
            network = ipaddress.ip_network(subnet.strip(), strict=False)
        except ValueError:
            raise FilterError(f"{name}() at {at}: {subnet!r} is not a legal IP address or range") from None
        return IpInNet(ref, network)
