"""The search grammar: a subset of MLflow's filter and order_by syntax, parsed into a small AST.

    filter  := clause ( AND clause )*
    clause  := field op value
    field   := name | run_id | version | version_number | source | current_stage
             | tags.<key>          (key bare, or quoted with `backticks` or "double quotes")
    op      := = | != | < | <= | > | >= | LIKE | ILIKE | IN
    value   := 'string' | "string" | number | ( value, ... )

Which fields and operators a search accepts is given by its ``FieldSpec`` table; anything else is
INVALID_ARGUMENT (INVALID_FILTER). The store turns the AST into SQLAlchemy expressions, so no
SQL is ever built from the text. Keywords (AND, LIKE, ILIKE, IN) are case-insensitive.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from modelreg_server.errors import InvalidArgumentError
from registry_service.domain import errors, rules

Scalar = str | int
Value = Scalar | tuple[Scalar, ...]

MAX_ORDER_BY_CLAUSES = 3


class ValueKind(enum.Enum):
    STRING = "string"
    INT = "int"
    STAGE = "stage"  # parsed case-insensitively into the stage's display name


@dataclass(frozen=True)
class FieldSpec:
    column: str  # the logical column the store maps ("tags" means a tag key lookup)
    ops: frozenset[str]
    kind: ValueKind = ValueKind.STRING


@dataclass(frozen=True)
class Comparison:
    column: str
    op: str
    value: Value
    tag_key: str | None = None


@dataclass(frozen=True)
class OrderKey:
    column: str
    ascending: bool


_TEXT_OPS = frozenset({"=", "!=", "LIKE", "ILIKE"})
_ID_OPS = frozenset({"=", "!=", "IN"})
_NUMBER_OPS = frozenset({"=", "!=", "<", "<=", ">", ">=", "IN"})

MODEL_FIELDS: Mapping[str, FieldSpec] = {
    "name": FieldSpec("name", _TEXT_OPS),
    "tags": FieldSpec("tags", _TEXT_OPS),
}
VERSION_FIELDS: Mapping[str, FieldSpec] = {
    "name": FieldSpec("name", _TEXT_OPS),
    "run_id": FieldSpec("run_id", _ID_OPS),
    "version": FieldSpec("version", _NUMBER_OPS, ValueKind.INT),
    "version_number": FieldSpec("version", _NUMBER_OPS, ValueKind.INT),
    "source": FieldSpec("source", frozenset({"=", "LIKE"})),
    "current_stage": FieldSpec("current_stage", _ID_OPS, ValueKind.STAGE),
    "tags": FieldSpec("tags", _TEXT_OPS),
}

# order_by names (MLflow's and ours) -> logical column
MODEL_ORDER_FIELDS: Mapping[str, str] = {
    "name": "name",
    "creation_timestamp": "creation_time",
    "creation_time": "creation_time",
    "last_updated_timestamp": "last_updated_time",
    "last_updated_time": "last_updated_time",
}
VERSION_ORDER_FIELDS: Mapping[str, str] = {
    **MODEL_ORDER_FIELDS,
    "version": "version",
    "version_number": "version",
}

_TOKEN_RE = re.compile(
    r"""\s*(?:
        (?P<backtick>`[^`]*`)
      | (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
      | (?P<number>-?\d+(?:\.\d+)?)
      | (?P<op>!=|<=|>=|=|<|>)
      | (?P<punct>[(),])
      | (?P<word>[A-Za-z_][A-Za-z0-9_.]*)
    )""",
    re.VERBOSE,
)


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str


def _bad(message: str) -> Exception:
    return errors.InvalidFilter(message, "filter")


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = _TOKEN_RE.match(text, position)
        if match is None or match.lastgroup is None:
            raise _bad(f"unexpected character at position {position}: {text[position : position + 20]!r}")
        tokens.append(_Token(match.lastgroup, match.group(match.lastgroup)))
        position = match.end()
    return tokens


def _unquote(token: _Token) -> str:
    body = token.text[1:-1]
    return re.sub(r"\\(.)", r"\1", body) if token.kind == "string" else body


class _Parser:
    def __init__(self, tokens: list[_Token], fields: Mapping[str, FieldSpec]) -> None:
        self._tokens = tokens
        self._fields = fields
        self._index = 0

    def _peek(self) -> _Token | None:
        return self._tokens[self._index] if self._index < len(self._tokens) else None

    def _next(self, expected: str) -> _Token:
        token = self._peek()
        if token is None:
            raise _bad(f"unexpected end of filter, expected {expected}")
        self._index += 1
        return token

    def parse(self) -> tuple[Comparison, ...]:
        clauses = [self._clause()]
        while (token := self._peek()) is not None:
            if token.kind != "word" or token.text.upper() != "AND":
                raise _bad(f"expected AND, got {token.text!r} (only AND joins clauses)")
            self._index += 1
            clauses.append(self._clause())
        return tuple(clauses)

    def _field(self) -> tuple[FieldSpec, str | None]:
        token = self._next("a field")
        if token.kind == "backtick":
            raise _bad("a quoted key must follow 'tags.'")
        if token.kind != "word":
            raise _bad(f"expected a field, got {token.text!r}")
        head, dot, key = token.text.partition(".")
        spec = self._fields.get(head.lower())
        if spec is None or (spec.column == "tags") != bool(dot):
            raise _bad(f"unknown field {token.text!r}; valid: {', '.join(sorted(self._fields))}")
        if spec.column != "tags":
            return spec, None
        if not key:
            quoted = self._next("a tag key")
            if quoted.kind not in ("backtick", "string"):
                raise _bad("expected a tag key after 'tags.'")
            key = _unquote(quoted)
        if not key:
            raise _bad("empty tag key")
        return spec, key

    def _op(self) -> str:
        token = self._next("an operator")
        if token.kind == "op":
            return token.text
        if token.kind == "word" and token.text.upper() in ("LIKE", "ILIKE", "IN"):
            return token.text.upper()
        raise _bad(f"expected an operator, got {token.text!r}")

    def _scalar(self, spec: FieldSpec) -> Scalar:
        token = self._next("a value")
        if token.kind == "number":
            raw = token.text
        elif token.kind == "string":
            raw = _unquote(token)
        else:
            raise _bad(f"expected a quoted string or a number, got {token.text!r}")
        if spec.kind is ValueKind.INT:
            if not re.fullmatch(r"-?\d+", raw.strip()):
                raise _bad(f"{spec.column} takes an integer, got {raw!r}")
            return int(raw)
        if token.kind == "number":
            raise _bad(f"{spec.column} takes a quoted string, got {raw}")
        if spec.kind is ValueKind.STAGE:
            try:
                return rules.stage(raw).value
            except InvalidArgumentError as exc:
                raise _bad(f"'{raw}' is not a stage") from exc
        return raw

    def _clause(self) -> Comparison:
        spec, key = self._field()
        op = self._op()
        if op not in spec.ops:
            raise _bad(f"operator {op} is not supported for {spec.column}")
        if op != "IN":
            return Comparison(spec.column, op, self._scalar(spec), key)
        if self._next("'('").text != "(":
            raise _bad("IN takes a parenthesised list")
        values = [self._scalar(spec)]
        while (token := self._next("',' or ')'")).text == ",":
            values.append(self._scalar(spec))
        if token.text != ")":
            raise _bad(f"expected ',' or ')', got {token.text!r}")
        return Comparison(spec.column, op, tuple(values), key)


def parse_filter(text: str, fields: Mapping[str, FieldSpec]) -> tuple[Comparison, ...]:
    """Parses a filter string; an empty or blank filter matches everything."""
    tokens = _tokenize(text)
    if not tokens:
        return ()
    return _Parser(tokens, fields).parse()


def parse_order_by(clauses: Sequence[str], fields: Mapping[str, str]) -> tuple[OrderKey, ...]:
    """Parses up to three "field [ASC|DESC]" clauses into logical columns."""
    if len(clauses) > MAX_ORDER_BY_CLAUSES:
        raise errors.InvalidOrderBy(f"at most {MAX_ORDER_BY_CLAUSES} order_by clauses", "order_by")
    keys: list[OrderKey] = []
    for clause in clauses:
        parts = clause.split()
        column = fields.get(parts[0].lower()) if parts else None
        direction = parts[1].upper() if len(parts) == 2 else "ASC"
        if column is None or len(parts) > 2 or direction not in ("ASC", "DESC"):
            raise errors.InvalidOrderBy(
                f"order_by '{clause}' is not '<field> [ASC|DESC]' with field in {', '.join(sorted(fields))}",
                "order_by",
            )
        keys.append(OrderKey(column, direction == "ASC"))
    return tuple(keys)
