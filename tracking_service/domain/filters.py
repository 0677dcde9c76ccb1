"""MLflow's search grammar: filters (``metrics.rmse < 5 AND params.alpha = '0.5'``) and order_by.

The text is tokenized (quoted strings with doubled-quote escapes, backtick- or double-quoted keys,
numbers with sign and exponent, ``IN ('a', 'b')`` lists), then parsed into a flat list of
:class:`Comparison` clauses joined by AND, checked against a :class:`SearchSpec` that says which
entities, attributes and comparators a search accepts (MLflow's rules). The store turns the clauses
into SQLAlchemy expressions. Any malformed input raises InvalidFilter / InvalidOrderBy, never
anything else. Like MLflow, OR and parenthesised groups are not supported.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass

from tracking_service.domain.errors import InvalidFilter, InvalidOrderBy


class Entity(enum.StrEnum):
    METRIC = "metric"
    PARAM = "param"
    TAG = "tag"
    ATTRIBUTE = "attribute"


_ENTITY_ALIASES: dict[str, Entity] = {
    "metric": Entity.METRIC,
    "metrics": Entity.METRIC,
    "param": Entity.PARAM,
    "params": Entity.PARAM,
    "parameter": Entity.PARAM,
    "parameters": Entity.PARAM,
    "tag": Entity.TAG,
    "tags": Entity.TAG,
    "attribute": Entity.ATTRIBUTE,
    "attributes": Entity.ATTRIBUTE,
    "attr": Entity.ATTRIBUTE,
    "run": Entity.ATTRIBUTE,
}

NUMERIC_OPS = frozenset({"=", "!=", "<", "<=", ">", ">="})
STRING_OPS = frozenset({"=", "!=", "LIKE", "ILIKE", "IN", "NOT IN"})

Value = str | float | tuple[str, ...]


@dataclass(frozen=True)
class Comparison:
    """One clause: ``<entity>.<key> <op> <value>``; value is a float for numeric comparisons,
    a str for string ones and a tuple of str for IN / NOT IN."""

    entity: Entity
    key: str
    op: str
    value: Value


@dataclass(frozen=True)
class OrderBy:
    entity: Entity
    key: str
    ascending: bool


@dataclass(frozen=True)
class SearchSpec:
    """What one search accepts: entities with their comparators, and attribute names.

    ``attributes`` maps each accepted attribute name (aliases included) to (canonical name, numeric?).
    """

    entity_ops: Mapping[Entity, frozenset[str]]
    attributes: Mapping[str, tuple[str, bool]]
    string_attribute_ops: frozenset[str] = STRING_OPS


RUN_SEARCH = SearchSpec(
    entity_ops={Entity.METRIC: NUMERIC_OPS, Entity.PARAM: STRING_OPS, Entity.TAG: STRING_OPS},
    attributes={
        "run_id": ("run_id", False),
        "run_name": ("run_name", False),
        "status": ("status", False),
        "artifact_uri": ("artifact_uri", False),
        "start_time": ("start_time", True),
        "created": ("start_time", True),
        "end_time": ("end_time", True),
    },
)
EXPERIMENT_SEARCH = SearchSpec(
    entity_ops={Entity.TAG: frozenset({"=", "!=", "LIKE", "ILIKE"})},
    attributes={
        "name": ("name", False),
        "experiment_id": ("experiment_id", True),
        "creation_time": ("creation_time", True),
        "last_update_time": ("last_update_time", True),
    },
    string_attribute_ops=frozenset({"=", "!=", "LIKE", "ILIKE"}),
)


class _Kind(enum.Enum):
    WORD = "word"  # bare identifier or keyword; may contain dots
    KEY = "key"  # backtick-quoted
    DQUOTED = "dquoted"  # a key in identifier position, a string in value position
    STRING = "string"  # single-quoted
    NUMBER = "number"
    OP = "op"
    LPAREN = "("
    RPAREN = ")"
    COMMA = ","


@dataclass(frozen=True)
class _Token:
    kind: _Kind
    text: str
    position: int


_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
    | (?P<string>'(?:[^']|'')*')
    | (?P<dquoted>"(?:[^"]|"")*")
    | (?P<key>`(?:[^`]|``)*`)
    | (?P<number>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?(?![\w.]))
    | (?P<op>!=|<>|<=|>=|==|=|<|>)
    | (?P<word>[A-Za-z_][\w.\-/:]*)
    | (?P<lparen>\()
    | (?P<rparen>\))
    | (?P<comma>,)
    """,
    re.VERBOSE,
)
_KINDS = {
    "string": _Kind.STRING,
    "dquoted": _Kind.DQUOTED,
    "key": _Kind.KEY,
    "number": _Kind.NUMBER,
    "op": _Kind.OP,
    "word": _Kind.WORD,
    "lparen": _Kind.LPAREN,
    "rparen": _Kind.RPAREN,
    "comma": _Kind.COMMA,
}


def _tokenize(text: str, error: type[InvalidFilter] | type[InvalidOrderBy]) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise error(f"unexpected character {text[position]!r} at position {position}")
        group = match.lastgroup
        assert group is not None
        raw = match.group()
        if group != "space":
            kind = _KINDS[group]
            if kind in (_Kind.STRING, _Kind.DQUOTED, _Kind.KEY):
                quote = raw[0]
                raw = raw[1:-1].replace(quote * 2, quote)
            tokens.append(_Token(kind, raw, position))
        position = match.end()
    return tokens


class _Tokens:
    """A cursor over the tokens of one filter or order_by clause."""

    def __init__(self, text: str, error: type[InvalidFilter] | type[InvalidOrderBy]) -> None:
        self.error = error
        self._tokens = _tokenize(text, error)
        self._index = 0

    def peek(self) -> _Token | None:
        return self._tokens[self._index] if self._index < len(self._tokens) else None

    def next(self, expected: str) -> _Token:
        token = self.peek()
        if token is None:
            raise self.error(f"expected {expected} but the text ended")
        self._index += 1
        return token

    def keyword(self) -> str:
        """The upper-cased bare word at the cursor, or "" when the cursor is not on one."""
        token = self.peek()
        return token.text.upper() if token is not None and token.kind is _Kind.WORD else ""


class _Parser:
    def __init__(self, text: str, spec: SearchSpec) -> None:
        self._tokens = _Tokens(text, InvalidFilter)
        self._spec = spec

    def parse(self) -> list[Comparison]:
        if self._tokens.peek() is None:
            return []
        clauses = [self._clause()]
        while (token := self._tokens.peek()) is not None:
            keyword = self._tokens.keyword()
            if keyword == "OR":
                raise InvalidFilter("OR is not supported; join clauses with AND")
            if keyword != "AND":
                raise InvalidFilter(f"expected AND at position {token.position}, got '{token.text}'")
            self._tokens.next("AND")
            clauses.append(self._clause())
        return clauses

    def _clause(self) -> Comparison:
        entity, key = _identifier(self._tokens, self._spec)
        op = self._comparator()
        numeric = _is_numeric(entity, key, self._spec)
        if entity is Entity.ATTRIBUTE:
            allowed = NUMERIC_OPS if numeric else self._spec.string_attribute_ops
            key = self._spec.attributes[key][0]
        else:
            allowed = self._spec.entity_ops[entity]
        if op not in allowed:
            raise InvalidFilter(
                f"comparator '{op}' is not allowed on {entity}s ({key}); use {sorted(allowed)}"
            )
        return Comparison(entity, key, op, self._value(op, numeric, key))

    def _comparator(self) -> str:
        keyword = self._tokens.keyword()
        token = self._tokens.next("a comparator")
        if token.kind is _Kind.OP:
            return {"==": "=", "<>": "!="}.get(token.text, token.text)
        if keyword in ("LIKE", "ILIKE", "IN"):
            return keyword
        if keyword == "NOT" and self._tokens.keyword() == "IN":
            self._tokens.next("IN")
            return "NOT IN"
        raise InvalidFilter(f"expected a comparator at position {token.position}, got '{token.text}'")

    def _value(self, op: str, numeric: bool, key: str) -> Value:
        if op in ("IN", "NOT IN"):
            return self._string_list(key)
        token = self._tokens.next("a value")
        if numeric:
            if token.kind is not _Kind.NUMBER:
                raise InvalidFilter(f"'{key}' compares to a number, got '{token.text}'")
            return float(token.text)
        if token.kind not in (_Kind.STRING, _Kind.DQUOTED):
            raise InvalidFilter(f"'{key}' compares to a quoted string, got '{token.text}'")
        return token.text

    def _string_list(self, key: str) -> tuple[str, ...]:
        if self._tokens.next("'('").kind is not _Kind.LPAREN:
            raise InvalidFilter(f"IN on '{key}' needs a parenthesised list of quoted strings")
        values: list[str] = []
        while True:
            token = self._tokens.next("a quoted string")
            if token.kind not in (_Kind.STRING, _Kind.DQUOTED):
                raise InvalidFilter(f"IN list of '{key}' holds '{token.text}', not a quoted string")
            values.append(token.text)
            separator = self._tokens.next("',' or ')'")
            if separator.kind is _Kind.RPAREN:
                return tuple(values)
            if separator.kind is not _Kind.COMMA:
                raise InvalidFilter(f"expected ',' or ')' at position {separator.position}")


def _is_numeric(entity: Entity, key: str, spec: SearchSpec) -> bool:
    if entity is Entity.METRIC:
        return True
    return entity is Entity.ATTRIBUTE and spec.attributes[key][1]


def _identifier(tokens: _Tokens, spec: SearchSpec) -> tuple[Entity, str]:
    """``entity.key``, ``entity.`quoted key```, ``entity."quoted key"``, or a bare attribute."""
    error = tokens.error
    token = tokens.next("an identifier")
    if token.kind in (_Kind.KEY, _Kind.DQUOTED):
        entity_name, key = "attribute", token.text
    elif token.kind is _Kind.WORD:
        entity_name, dot, key = token.text.partition(".")
        if not dot:
            entity_name, key = "attribute", token.text
        elif not key:
            quoted = tokens.next("a quoted key")
            if quoted.kind not in (_Kind.KEY, _Kind.DQUOTED):
                raise error(f"expected a key after '{token.text}'")
            key = quoted.text
    else:
        raise error(f"expected an identifier at position {token.position}, got '{token.text}'")
    entity = _ENTITY_ALIASES.get(entity_name.lower())
    if entity is None:
        raise error(f"unknown entity type '{entity_name}'; use metrics., params., tags. or attributes.")
    if entity is not Entity.ATTRIBUTE and entity not in spec.entity_ops:
        raise error(f"{entity}s cannot be searched here")
    if not key:
        raise error("empty key")
    if entity is Entity.ATTRIBUTE and key not in spec.attributes:
        raise error(f"unknown attribute '{key}'; valid: {sorted(spec.attributes)}")
    return entity, key


def parse_filter(text: str, spec: SearchSpec) -> list[Comparison]:
    """Parses a filter; an empty or blank filter matches everything."""
    return _Parser(text, spec).parse()


MAX_ORDER_BY_CLAUSES = 3


def parse_order_by(clauses: list[str], spec: SearchSpec, orderable: frozenset[str]) -> list[OrderBy]:
    """Parses ``<identifier> [ASC|DESC]`` clauses; ``orderable`` lists the canonical attributes."""
    if len(clauses) > MAX_ORDER_BY_CLAUSES:
        raise InvalidOrderBy(f"at most {MAX_ORDER_BY_CLAUSES} clauses, got {len(clauses)}")
    result: list[OrderBy] = []
    for clause in clauses:
        tokens = _Tokens(clause, InvalidOrderBy)
        entity, key = _identifier(tokens, spec)
        if entity is Entity.ATTRIBUTE:
            key = spec.attributes[key][0]
            if key not in orderable:
                raise InvalidOrderBy(f"cannot order by '{key}'; valid: {sorted(orderable)}")
        ascending = True
        if (direction := tokens.peek()) is not None:
            word = tokens.keyword()
            tokens.next("ASC or DESC")
            if word not in ("ASC", "DESC"):
                raise InvalidOrderBy(f"expected ASC or DESC, got '{direction.text}'")
            ascending = word == "ASC"
        if tokens.peek() is not None:
            raise InvalidOrderBy(f"unexpected text after the direction in '{clause}'")
        result.append(OrderBy(entity, key, ascending))
    return result


RUN_ORDERABLE = frozenset({"start_time", "end_time", "run_name", "status", "run_id", "artifact_uri"})
EXPERIMENT_ORDERABLE = frozenset({"name", "experiment_id", "creation_time", "last_update_time"})
