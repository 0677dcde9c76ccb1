"""The search grammar of both services: MLflow's filter and order_by syntax, parsed into a flat AST.

    filter   := clause ( AND clause )*            an empty or blank filter has no clauses
    clause   := field op value
    field    := entity "." key | attribute        entity: metrics | params | tags | attributes
                                                  (and the aliases of ENTITY_ALIASES)
    key      := word | `quoted` | "quoted" | 'quoted'   (a quoted key follows "entity." only)
    attribute:= word | `quoted` | "quoted"
    op       := = | == | != | <> | < | <= | > | >= | LIKE | ILIKE | IN | NOT IN
    value    := 'string' | "string" | number | ( value, ... )   ( ) only after IN / NOT IN
    order_by := field [ ASC | DESC ]              one clause per order_by string

Keywords (AND, LIKE, ILIKE, IN, NOT, ASC, DESC), entity names and attribute names are
case-insensitive; keys and values are not. OR and parentheses are refused, as in MLflow.

What a search accepts is DECLARED by its :class:`SearchSpec`: the entities (metric, param, tag)
with their operators, the attributes with canonical name, value kind and operators, and the
orderable fields. The stores turn the :class:`Comparison` / :class:`OrderBy` values into
SQLAlchemy expressions (modelreg_server.sqlfilter), so no SQL is ever built from the text.

Strings, one rule for both services:
- A string is in single or double quotes. In key position a double-quoted or backticked word is
  a key (``tags."my key"``, ``tags.`my key```), as in MLflow.
- Inside quotes, the quote character is written doubled (``'it''s'``) or backslash-escaped
  (``'it\\'s'``); ``\\\\`` is one backslash; a backslash before ', " or ` is that character.
  Any other backslash stays as written, so LIKE patterns keep their escapes: ``'100\\%'`` is the
  pattern ``100\\%``. :func:`quote` writes any string so that it parses back to itself.
- LIKE / ILIKE patterns: ``%`` is any run of characters, ``_`` one character, and a backslash
  makes the next ``%``, ``_`` or ``\\`` literal; any other backslash (a trailing one included) is
  a literal backslash. Nothing else is special, on every backend (see modelreg_server.sqlfilter).
- Numbers: ASCII digits with optional sign, fraction and exponent (``-1.5e-3``, ``.5``).

Limits. A filter is a request anyone can send: parsing it must cost bounded, linear work, and
what it parses to must run on every backend without exhausting it. Refused, before any query:
- a filter longer than MAX_FILTER_LENGTH = 65,536 characters, before it is read;
- a number literal or quoted integer longer than MAX_NUMBER_LENGTH = 64 characters;
- more than MAX_CLAUSES = 20 clauses. Compiled to a subquery each, metric, param and tag
  clauses cost PostgreSQL's planner super-linearly (20 took 0.8 to 1.6 s and up to 740 MB to
  plan, 50 ran a 3 GB server out of memory); both stores now make a few subqueries of them,
  planned in milliseconds however many clauses. Running them still costs in proportion: over
  5,000 runs, 100 clauses that each keep nearly every run took 0.2 to 0.8 s on PostgreSQL (0.8 s
  and 120 MB when its JIT compiles them) and about 0.2 s on SQLite and MariaDB, against 0.1 to
  0.4 s for 20, so the limit stays; with one selective clause, 100 take 5 to 20 ms. (1,001
  clauses exceeded SQLite's expression depth: INTERNAL.)
- an IN / NOT IN list of more than MAX_IN_VALUES = 1,000 values, or more than
  MAX_FILTER_VALUES = 5,000 values in all lists: each value is a bound parameter, and backends
  cap those per statement (SQLite at 32,766);
- an integer field compared to a value outside int64, a number field to a non-finite one;
- a LIKE / ILIKE pattern longer than MAX_PATTERN_LENGTH = 10,000 characters. SQLite refuses a
  pattern over 50,000 bytes ("pattern too complex", which was INTERNAL), and a pattern grows as
  sqlfilter writes it for a backend (up to 4 bytes a character in UTF-8, ``*`` as ``[*]``), so the
  limit holds on every backend whatever the pattern holds;
- a NUL character anywhere (PostgreSQL cannot hold one in text: it would fail the query);
- more than MAX_ORDER_BY_CLAUSES = 3 order_by clauses, or one longer than
  MAX_ORDER_BY_LENGTH = 1,024 characters.
Every malformed or over-limit input raises InvalidFilter (INVALID_ARGUMENT, reason
INVALID_FILTER, metadata field "filter") or InvalidOrderBy (INVALID_ORDER_BY, field "order_by"),
never anything else, and the message quotes at most 40 characters of what was sent.

Speed: one left-to-right pass, scanned as the parser asks, so a refusal costs only the text read
up to it. Each token is one match of one compiled pattern at the current position (no slicing of
the rest of the text); its alternatives are possessive or start on distinct characters, so no
character is scanned twice, and a malformed number fails on the character after it instead of
backtracking through its digits (the old tracking tokenizer spent 5 s on 12,000 digits and an
"x", holding the GIL). An IN list of plain values is matched whole by a second pattern and
converted in bulk. The parser is a loop, never recursive.
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, cast

from modelreg_server.errors import InvalidFilter, InvalidOrderBy

# Re-exported: the grammar's integer range is the one every caller-sent integer keeps to.
from modelreg_server.validation import INT64_MAX as INT64_MAX
from modelreg_server.validation import INT64_MIN as INT64_MIN

MAX_FILTER_LENGTH = 65_536  # characters
MAX_NUMBER_LENGTH = 64  # characters of one number literal or quoted integer
MAX_CLAUSES = 20  # AND-ed clauses; bounds the work of running a search (see above)
MAX_IN_VALUES = 1_000  # values of one IN / NOT IN list
MAX_FILTER_VALUES = 5_000  # values of all IN / NOT IN lists of one filter
MAX_ORDER_BY_CLAUSES = 3
MAX_ORDER_BY_LENGTH = 1_024  # characters of one order_by clause
MAX_PATTERN_LENGTH = 10_000  # characters of one LIKE / ILIKE pattern


class Entity(enum.StrEnum):
    METRIC = "metric"
    PARAM = "param"
    TAG = "tag"
    VERSION_TAG = "version_tag"  # a model version's own tags (promotion gate conditions only)
    ATTRIBUTE = "attribute"


ENTITY_ALIASES: Mapping[str, Entity] = {
    "metric": Entity.METRIC,
    "metrics": Entity.METRIC,
    "param": Entity.PARAM,
    "params": Entity.PARAM,
    "parameter": Entity.PARAM,
    "parameters": Entity.PARAM,
    "tag": Entity.TAG,
    "tags": Entity.TAG,
    "version_tag": Entity.VERSION_TAG,
    "version_tags": Entity.VERSION_TAG,
    "attribute": Entity.ATTRIBUTE,
    "attributes": Entity.ATTRIBUTE,
    "attr": Entity.ATTRIBUTE,
    "run": Entity.ATTRIBUTE,
}

NUMERIC_OPS = frozenset({"=", "!=", "<", "<=", ">", ">="})
STRING_OPS = frozenset({"=", "!=", "LIKE", "ILIKE", "IN", "NOT IN"})
_LIST_OPS = frozenset({"IN", "NOT IN"})

Scalar = str | float | int
Value = Scalar | tuple[Scalar, ...]


class Kind(enum.Enum):
    """What an attribute's values are."""

    STRING = "string"  # a quoted string
    NUMBER = "number"  # a number literal, compared as a finite float
    INT = "int"  # an integer literal or quoted integer, within int64
    ENUM = "enum"  # a quoted string mapped to its canonical spelling by the attribute's normaliser


# The value kind of each entity's values (attributes declare theirs).
ENTITY_KINDS: Mapping[Entity, Kind] = {
    Entity.METRIC: Kind.NUMBER,
    Entity.PARAM: Kind.STRING,
    Entity.TAG: Kind.STRING,
    Entity.VERSION_TAG: Kind.STRING,
}


@dataclass(frozen=True)
class Attribute:
    """A searchable attribute: its canonical name (what Comparison.key holds), the other names it
    answers to, its value kind and operators. ``normalise`` (ENUM only) returns the canonical
    value of a string, or None when the string names no value."""

    name: str
    kind: Kind
    ops: frozenset[str]
    aliases: tuple[str, ...] = ()
    normalise: Callable[[str], str | None] | None = None

    def __post_init__(self) -> None:
        if (self.kind is Kind.ENUM) != (self.normalise is not None):
            raise ValueError(f"attribute {self.name}: a normaliser goes with Kind.ENUM, and only with it")


@dataclass(frozen=True, eq=False)  # compared and hashed by identity: it holds mappings
class SearchSpec:
    """What one search accepts.

    ``entity_ops``: the searchable entities (metric, param, tag) and their operators.
    ``attributes``: the searchable attributes. ``orderable``: order_by names (aliases included) to
    canonical attribute names. ``order_entities``: entities whose keys order_by accepts.
    """

    entity_ops: Mapping[Entity, frozenset[str]]
    attributes: Sequence[Attribute]
    orderable: Mapping[str, str] = field(default_factory=dict)
    order_entities: frozenset[Entity] = frozenset()
    # Lower-cased name or alias -> attribute, derived from ``attributes``.
    _by_name: Mapping[str, Attribute] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_name = {name.lower(): a for a in self.attributes for name in (a.name, *a.aliases)}
        object.__setattr__(self, "_by_name", by_name)
        object.__setattr__(self, "orderable", {k.lower(): v for k, v in self.orderable.items()})
        if Entity.ATTRIBUTE in self.entity_ops or Entity.ATTRIBUTE in self.order_entities:
            raise ValueError("attributes are declared in SearchSpec.attributes")

    def attribute(self, name: str) -> Attribute | None:
        return self._by_name.get(name.lower())


@dataclass(frozen=True)
class Comparison:
    """One clause: ``<entity>.<key> <op> <value>``. For an attribute, key is its canonical name.
    The value is a str, float or int by the field's kind, a tuple of them for IN / NOT IN."""

    entity: Entity
    key: str
    op: str
    value: Value


@dataclass(frozen=True)
class Relative:
    """A clause of a condition (:func:`parse_condition`) whose right side is another subject's
    field: ``<entity>.<key> <op> <prefix>.<entity>.<key> [* factor]``."""

    entity: Entity
    key: str
    op: str
    other_entity: Entity
    other_key: str
    factor: float = 1.0


@dataclass(frozen=True)
class OrderBy:
    entity: Entity
    key: str
    ascending: bool


# --- tokens ------------------------------------------------------------------------------------

# Token kinds, the names of the pattern's groups.
_WORD, _NUMBER, _SQUOTED, _DQUOTED, _BACKTICK = "word", "number", "squoted", "dquoted", "backtick"
_OP, _PUNCT, _END, _BAD = "op", "punct", "end", "bad"
_QUOTED = (_SQUOTED, _DQUOTED, _BACKTICK)
_STRINGS = (_SQUOTED, _DQUOTED)  # what a string value may be written as
_KIND_OF_MARK = {"'": _SQUOTED, '"': _DQUOTED, "`": _BACKTICK}


def _quoted(mark: str) -> str:
    # Unrolled and possessive: runs of plain characters, then a doubled mark or a backslash pair.
    # Each character is looked at once; an unterminated string fails once, at the end of the text.
    return rf"{mark}[^{mark}\\]*+(?:(?:{mark}{mark}|\\.)[^{mark}\\]*+)*+{mark}"


_SQUOTED_PATTERN, _DQUOTED_PATTERN, _BACKTICK_PATTERN = _quoted("'"), _quoted('"'), _quoted("`")
_NUMBER_PATTERN = r"[-+]?+(?:[0-9]++(?:\.[0-9]*+)?+|\.[0-9]++)(?:[eE][-+]?+[0-9]++)?+"
_TOKEN = re.compile(
    rf"""\s*+(?:
        (?P<word>[A-Za-z_][\w.\-/:]*+)
      | (?P<number>{_NUMBER_PATTERN})
      | (?P<squoted>{_SQUOTED_PATTERN})
      | (?P<dquoted>{_DQUOTED_PATTERN})
      | (?P<backtick>{_BACKTICK_PATTERN})
      | (?P<op>!=|<>|<=|>=|==|=|<|>)
      | (?P<punct>[(),*])
      | (?P<end>\Z)
      | (?P<bad>.)
    )""",
    re.VERBOSE | re.DOTALL,
)
# The rest of an IN list after its "(": values and commas up to the ")". Matched in one call, then
# its values picked out by _LIST_VALUES, so a long list costs no per-token Python work; a list this
# does not match is read token by token, which then names what is wrong.
_LIST_VALUE = rf"(?:{_SQUOTED_PATTERN}|{_DQUOTED_PATTERN}|{_NUMBER_PATTERN}(?![\w.]))"
_LIST_REST = re.compile(rf"(?:\s*+{_LIST_VALUE}\s*+,)*+\s*+{_LIST_VALUE}\s*+\)", re.DOTALL)
_LIST_VALUES = re.compile(_LIST_VALUE, re.DOTALL)
# A number must not run into a word or another dot ("1e", "1..2", "2x").
_NUMBER_TAIL = re.compile(r"[\w.]")
_INTEGER = re.compile(r"[-+]?[0-9]+")
_PLAIN_NUMBER = re.compile(_NUMBER_PATTERN)
# Escapes inside quotes: a backslash before a quote character or a backslash, or the enclosing
# quote character doubled; the group is the character the escape stands for.
_UNESCAPE = {mark: re.compile(rf"\\([\\'\"`])|({mark}){mark}", re.DOTALL) for mark in _KIND_OF_MARK}
_OP_SPELLINGS = {"==": "=", "<>": "!="}


class _Token(NamedTuple):
    kind: str
    text: str  # unquoted and unescaped for quoted kinds
    position: int


def _show(text: str) -> str:
    """A token for an error message: the message must stay small whatever was sent."""
    return repr(text if len(text) <= 40 else f"{text[:40]}...")


def _unquote(quoted: str) -> str:
    mark, body = quoted[0], quoted[1:-1]
    if "\\" not in body and mark * 2 not in body:
        return body
    # split() keeps the groups of each escape, None for the one that did not match: joining the
    # pieces is the unescaped text, all in C.
    return "".join(filter(None, _UNESCAPE[mark].split(body)))


class _Cursor:
    """The tokens of one filter or order_by clause, scanned one at a time as the parser asks, so
    a refusal (an unknown field, one clause too many) costs only the text read so far."""

    def __init__(self, text: str, error: type[InvalidFilter] | type[InvalidOrderBy]) -> None:
        self.error = error
        self._text = text
        self._position = 0
        self._peeked: _Token | None = None
        self._at_end = False
        self.last_position = 0  # where the token scanned last starts (for error positions)

    def peek(self) -> _Token | None:
        if self._peeked is None and not self._at_end:
            self._peeked = self._scan()
            self._at_end = self._peeked is None
        return self._peeked

    def next(self, expected: str) -> _Token:
        token = self.peek()
        if token is None:
            raise self.error(f"expected {expected} but the text ended")
        self._peeked = None
        return token

    def keyword(self) -> str:
        """The upper-cased bare word at the cursor, or "" when the cursor is not on one."""
        token = self.peek()
        return token.text.upper() if token is not None and token.kind == _WORD else ""

    def list_rest(self) -> tuple[int, list[str]] | None:
        """After an IN list's "(": its values as written, all at once, and where the list starts;
        None when the list is not a plain run of values (read it token by token then)."""
        assert self._peeked is None, "called right after next() returned the '('"
        start = self._position
        match = _LIST_REST.match(self._text, start)
        if match is None:
            return None
        self._position = match.end()
        return start, _LIST_VALUES.findall(self._text, start, match.end())

    def list_token(self, raw: str, position: int) -> _Token:
        """A value of list_rest() as the token _scan() would have made of it."""
        if raw[0] in _KIND_OF_MARK:
            return _Token(_KIND_OF_MARK[raw[0]], _unquote(raw), position)
        if len(raw) > MAX_NUMBER_LENGTH:
            raise self.error(f"a number longer than {MAX_NUMBER_LENGTH} characters in the list at {position}")
        return _Token(_NUMBER, raw, position)

    def _scan(self) -> _Token | None:
        text = self._text
        match = _TOKEN.match(text, self._position)
        assert match is not None, "the token pattern matches at every position"
        kind = match.lastgroup
        assert kind is not None
        self._position = match.end()
        start = match.start(kind)
        self.last_position = start
        if kind == _END:
            return None
        if kind == _BAD:
            what = "an unterminated string" if text[start] in _KIND_OF_MARK else "unexpected character"
            raise self.error(f"{what} {_show(text[start])} at position {start}")
        token = match.group(kind)
        if kind == _NUMBER:
            if len(token) > MAX_NUMBER_LENGTH:
                raise self.error(f"a number longer than {MAX_NUMBER_LENGTH} characters at position {start}")
            if _NUMBER_TAIL.match(text, self._position):
                raise self.error(f"malformed number at position {start}")
        elif kind in _QUOTED:
            token = _unquote(token)
        return _Token(kind, token, start)


# --- filters -----------------------------------------------------------------------------------


def parse_filter(text: str, spec: SearchSpec) -> list[Comparison]:
    """The clauses of a filter, in order; an empty or blank filter has none."""
    if len(text) > MAX_FILTER_LENGTH:
        raise InvalidFilter(f"the filter has {len(text)} characters, the limit is {MAX_FILTER_LENGTH}")
    if "\x00" in text:
        raise InvalidFilter("the filter contains a NUL character")
    return cast(list[Comparison], _FilterParser(text, spec).parse())


def parse_condition(
    text: str,
    spec: SearchSpec,
    reference: str,
    check: Callable[[Comparison | Relative], str | None] | None = None,
) -> list[Comparison | Relative]:
    """A filter whose clauses may also compare to another subject's field: a value written
    ``<reference>.<entity>.<key>``, optionally ``* <number>`` (one factor, no other arithmetic),
    is a :class:`Relative`. Errors are InvalidFilter with ``position`` set to where the parser
    stood (the start of the token it read last). ``check`` returns why a parsed clause is refused
    (None: accepted); its refusal is placed at the clause's start."""
    if len(text) > MAX_FILTER_LENGTH:
        raise InvalidFilter(f"the filter has {len(text)} characters, the limit is {MAX_FILTER_LENGTH}")
    if "\x00" in text:
        raise InvalidFilter("the filter contains a NUL character")
    parser = _FilterParser(text, spec, reference, check)
    try:
        return parser.parse()
    except InvalidFilter as error:
        if error.position is None:
            error.position = parser.position
        raise


class _FilterParser:
    def __init__(
        self,
        text: str,
        spec: SearchSpec,
        reference: str = "",
        check: Callable[[Comparison | Relative], str | None] | None = None,
    ) -> None:
        self._tokens = _Cursor(text, InvalidFilter)
        self._check = check
        self._spec = spec
        self._values = 0  # IN / NOT IN values so far, against MAX_FILTER_VALUES
        self._reference = f"{reference.lower()}." if reference else ""

    @property
    def position(self) -> int:
        return self._tokens.last_position

    def parse(self) -> list[Comparison | Relative]:
        if self._tokens.peek() is None:
            return []
        clauses: list[Comparison | Relative] = [self._clause()]
        while (token := self._tokens.peek()) is not None:
            keyword = self._tokens.keyword()
            if keyword == "OR":
                raise InvalidFilter("OR is not supported; join clauses with AND")
            if keyword != "AND":
                raise InvalidFilter(f"expected AND at position {token.position}, got {_show(token.text)}")
            self._tokens.next("AND")
            if len(clauses) == MAX_CLAUSES:
                raise InvalidFilter(f"more than {MAX_CLAUSES} clauses")
            clauses.append(self._clause())
        return clauses

    def _clause(self) -> Comparison | Relative:
        token = self._tokens.peek()
        start = self._tokens.last_position if token is None else token.position
        clause = self._parsed_clause()
        if self._check is not None and (why := self._check(clause)) is not None:
            error = InvalidFilter(why)
            error.position = start
            raise error
        return clause

    def _parsed_clause(self) -> Comparison | Relative:
        entity, key = _field(self._tokens, self._spec)
        op = self._comparator()
        if entity is Entity.ATTRIBUTE:
            attribute = self._spec.attribute(key)
            assert attribute is not None  # _field checked it
            key, kind, allowed = attribute.name, attribute.kind, attribute.ops
        else:
            attribute, kind, allowed = None, ENTITY_KINDS[entity], self._spec.entity_ops[entity]
        if op not in allowed:
            raise InvalidFilter(
                f"operator {op} is not allowed on {entity} {_show(key)}; use {sorted(allowed)}"
            )
        if self._reference and (relative := self._relative(entity, key, op)) is not None:
            return relative
        if op not in _LIST_OPS:
            value = self._scalar(kind, attribute, key)
            if op in ("LIKE", "ILIKE") and isinstance(value, str) and len(value) > MAX_PATTERN_LENGTH:
                raise InvalidFilter(f"a {op} pattern longer than {MAX_PATTERN_LENGTH} characters")
            return Comparison(entity, key, op, value)
        return Comparison(entity, key, op, self._list(kind, attribute, key))

    def _relative(self, entity: Entity, key: str, op: str) -> Relative | None:
        """``<reference>.<entity>.<key> [* number]`` at the cursor, or None when the value is not one."""
        token = self._tokens.peek()
        if token is None or token.kind != _WORD or not token.text.lower().startswith(self._reference):
            return None
        self._tokens.next("a field")
        if entity is Entity.ATTRIBUTE or op not in NUMERIC_OPS:
            raise InvalidFilter(
                f"{_show(token.text)} at position {token.position} compares metrics, params or tags "
                f"with {sorted(NUMERIC_OPS)} only"
            )
        entity_name, dot, other_key = token.text[len(self._reference) :].partition(".")
        other = ENTITY_ALIASES.get(entity_name.lower())
        if other is None or not (dot and other_key and other in self._spec.entity_ops):
            raise InvalidFilter(
                f"expected {self._reference}metrics.<key>, {self._reference}params.<key> or "
                f"{self._reference}tags.<key> at position {token.position}, got {_show(token.text)}"
            )
        factor = 1.0
        if (star := self._tokens.peek()) is not None and star[:2] == (_PUNCT, "*"):
            self._tokens.next("*")
            number = self._tokens.next("a number")
            if number.kind != _NUMBER:
                raise InvalidFilter(f"expected a number after '*' at position {number.position}")
            factor = float(number.text)
            if not math.isfinite(factor):
                raise InvalidFilter(f"number {number.text} at position {number.position} is out of range")
            if ENTITY_KINDS[other] is not Kind.NUMBER or ENTITY_KINDS[entity] is not Kind.NUMBER:
                raise InvalidFilter(f"'*' at position {star.position} multiplies metrics only")
        if op not in self._spec.entity_ops[entity]:
            raise InvalidFilter(f"operator {op} is not allowed on {entity} {_show(key)}")
        return Relative(entity, key, op, other, other_key, factor)

    def _comparator(self) -> str:
        keyword = self._tokens.keyword()
        token = self._tokens.next("an operator")
        if token.kind == _OP:
            return _OP_SPELLINGS.get(token.text, token.text)
        if keyword in ("LIKE", "ILIKE", "IN"):
            return keyword
        if keyword == "NOT" and self._tokens.keyword() == "IN":
            self._tokens.next("IN")
            return "NOT IN"
        raise InvalidFilter(f"expected an operator at position {token.position}, got {_show(token.text)}")

    def _list(self, kind: Kind, attribute: Attribute | None, key: str) -> tuple[Scalar, ...]:
        if self._tokens.next("'('")[:2] != (_PUNCT, "("):
            raise InvalidFilter(f"IN on {_show(key)} takes a parenthesised list of values")
        rest = self._tokens.list_rest()
        if rest is not None:
            start, raws = rest
            self._count(len(raws))
            self._values += len(raws)
            plain = _plain_values(raws, kind, attribute)
            if plain is not None:
                return plain
            return tuple(
                self._value(self._tokens.list_token(raw, start), kind, attribute, key) for raw in raws
            )
        values: list[Scalar] = []
        while True:
            self._count(len(values) + 1)
            values.append(self._scalar(kind, attribute, key))
            separator = self._tokens.next("',' or ')'")
            if separator[:2] == (_PUNCT, ")"):
                self._values += len(values)
                return tuple(values)
            if separator[:2] != (_PUNCT, ","):
                raise InvalidFilter(f"expected ',' or ')' at position {separator.position}")

    def _count(self, in_list: int) -> None:
        """Checks a list of ``in_list`` values so far against the limits (before they are read)."""
        if in_list > MAX_IN_VALUES:
            raise InvalidFilter(f"an IN list holds more than {MAX_IN_VALUES} values")
        if self._values + in_list > MAX_FILTER_VALUES:
            raise InvalidFilter(f"IN lists hold more than {MAX_FILTER_VALUES} values in all")

    def _scalar(self, kind: Kind, attribute: Attribute | None, key: str) -> Scalar:
        return self._value(self._tokens.next("a value"), kind, attribute, key)

    def _value(self, token: _Token, kind: Kind, attribute: Attribute | None, key: str) -> Scalar:
        if kind is Kind.NUMBER:
            if token.kind != _NUMBER:
                raise InvalidFilter(f"{_show(key)} compares to a number, got {_show(token.text)}")
            number = float(token.text)
            if not math.isfinite(number):
                raise InvalidFilter(f"number {token.text} at position {token.position} is out of range")
            return number
        if kind is Kind.INT:
            return _integer(token, key)
        if token.kind not in _STRINGS:
            raise InvalidFilter(f"{_show(key)} compares to a quoted string, got {_show(token.text)}")
        if attribute is not None and attribute.normalise is not None:
            normalised = attribute.normalise(token.text)
            if normalised is None:
                raise InvalidFilter(f"{_show(token.text)} is not a valid {key}")
            return normalised
        return token.text


def _plain_values(raws: list[str], kind: Kind, attribute: Attribute | None) -> tuple[Scalar, ...] | None:
    """The values of an IN list as written, converted in bulk when all are of the usual form for
    ``kind``; None otherwise, and the caller converts them one by one (and words any error).
    Long lists then cost no Python work per value beyond the conversion."""
    if kind is Kind.STRING:
        return tuple(map(_unquote, raws)) if all(raw[0] in "'\"" for raw in raws) else None
    if (
        kind is Kind.NUMBER
        and max(map(len, raws)) <= MAX_NUMBER_LENGTH
        and all(map(_PLAIN_NUMBER.fullmatch, raws))
    ):
        numbers = tuple(map(float, raws))
        return numbers if all(map(math.isfinite, numbers)) else None
    if kind is Kind.INT and max(map(len, raws)) <= MAX_NUMBER_LENGTH and all(map(_INTEGER.fullmatch, raws)):
        integers = tuple(map(int, raws))
        return integers if min(integers) >= INT64_MIN and max(integers) <= INT64_MAX else None
    return None


def _integer(token: _Token, key: str) -> int:
    """An integer value: a number literal without fraction or exponent, or a quoted one (MLflow
    clients send ``version_number = '3'``), within int64."""
    text = token.text.strip() if token.kind in _STRINGS else token.text
    if token.kind not in (_NUMBER, *_STRINGS) or not _INTEGER.fullmatch(text):
        raise InvalidFilter(f"{_show(key)} compares to an integer, got {_show(token.text)}")
    if len(text) > MAX_NUMBER_LENGTH:
        raise InvalidFilter(
            f"an integer longer than {MAX_NUMBER_LENGTH} characters at position {token.position}"
        )
    number = int(text)
    if not INT64_MIN <= number <= INT64_MAX:
        raise InvalidFilter(f"{_show(key)} compares to a 64-bit integer, got {_show(text)}")
    return number


def _read_field(tokens: _Cursor) -> tuple[Entity, str]:
    """``entity.key``, ``entity.`quoted key```, or a bare or quoted attribute name, as written."""
    error = tokens.error
    token = tokens.next("a field")
    if token.kind in (_BACKTICK, _DQUOTED):
        entity_name, key = "attribute", token.text
    elif token.kind == _WORD:
        entity_name, dot, key = token.text.partition(".")
        if not dot:
            entity_name, key = "attribute", token.text
        elif not key:
            quoted = tokens.next("a quoted key")
            if quoted.kind not in _QUOTED:
                raise error(f"expected a key after {_show(token.text)}")
            key = quoted.text
    else:
        raise error(f"expected a field at position {token.position}, got {_show(token.text)}")
    entity = ENTITY_ALIASES.get(entity_name.lower())
    if entity is None:
        raise error(f"unknown entity {_show(entity_name)}; use metrics., params., tags. or attributes.")
    if not key:
        raise error("empty key")
    return entity, key


def _field(tokens: _Cursor, spec: SearchSpec) -> tuple[Entity, str]:
    """A field of a filter clause, checked against ``spec``; an attribute comes back under the
    name it was written with."""
    entity, key = _read_field(tokens)
    if entity is Entity.ATTRIBUTE:
        if spec.attribute(key) is None:
            names = sorted(name for a in spec.attributes for name in (a.name, *a.aliases))
            raise InvalidFilter(f"unknown attribute {_show(key)}; valid: {', '.join(names)}")
    elif entity not in spec.entity_ops:
        raise InvalidFilter(f"{entity}s cannot be searched here")
    return entity, key


# --- order_by ----------------------------------------------------------------------------------


def parse_order_by(clauses: Sequence[str], spec: SearchSpec) -> list[OrderBy]:
    """Parses ``<field> [ASC|DESC]`` clauses; attributes are looked up in ``spec.orderable``."""
    if len(clauses) > MAX_ORDER_BY_CLAUSES:
        raise InvalidOrderBy(f"at most {MAX_ORDER_BY_CLAUSES} clauses, got {len(clauses)}")
    return [_order_clause(clause, spec) for clause in clauses]


def _order_clause(clause: str, spec: SearchSpec) -> OrderBy:
    if len(clause) > MAX_ORDER_BY_LENGTH:
        raise InvalidOrderBy(f"a clause has {len(clause)} characters, the limit is {MAX_ORDER_BY_LENGTH}")
    if "\x00" in clause:
        raise InvalidOrderBy("an order_by clause contains a NUL character")
    tokens = _Cursor(clause, InvalidOrderBy)
    entity, key = _order_field(tokens, spec)
    ascending = True
    if (direction := tokens.peek()) is not None:
        word = tokens.keyword()
        tokens.next("ASC or DESC")
        if word not in ("ASC", "DESC"):
            raise InvalidOrderBy(f"expected ASC or DESC, got {_show(direction.text)}")
        ascending = word == "ASC"
    if tokens.peek() is not None:
        raise InvalidOrderBy(f"unexpected text after the direction in {_show(clause)}")
    return OrderBy(entity, key, ascending)


def _order_field(tokens: _Cursor, spec: SearchSpec) -> tuple[Entity, str]:
    entity, key = _read_field(tokens)
    if entity is not Entity.ATTRIBUTE:
        if entity not in spec.order_entities:
            raise InvalidOrderBy(f"cannot order by {entity}s here")
        return entity, key
    canonical = spec.orderable.get(key.lower())
    if canonical is None:
        valid = sorted(spec.orderable)
        raise InvalidOrderBy(f"cannot order by {_show(key)}; valid: {', '.join(valid)}")
    return entity, canonical
