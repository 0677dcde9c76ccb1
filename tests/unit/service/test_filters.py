"""The one filter grammar of both services (modelreg_server.filters): what parses to what, the
escape rules, the limits, the time it takes, and properties over generated text."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelreg.wire import quote
from modelreg_server import filters as f
from modelreg_server.errors import InvalidArgumentError
from modelreg_server.filters import Comparison, Entity, OrderBy, parse_filter, parse_order_by
from registry_service.domain.filters import MODEL_SEARCH, VERSION_SEARCH
from tracking_service.domain.filters import EXPERIMENT_SEARCH, RUN_SEARCH

SPECS = [RUN_SEARCH, EXPERIMENT_SEARCH, MODEL_SEARCH, VERSION_SEARCH]
A, T, P, M = Entity.ATTRIBUTE, Entity.TAG, Entity.PARAM, Entity.METRIC


def refused(call: Callable[[], object], reason: str = "INVALID_FILTER") -> str:
    """Runs a call that must fail with the typed error; returns its message."""
    with pytest.raises(InvalidArgumentError) as caught:
        call()
    assert caught.value.reason == reason
    assert caught.value.metadata == {"field": "filter" if reason == "INVALID_FILTER" else "order_by"}
    return caught.value.message


# --- what parses to what -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "spec", "expected"),
    [
        # The registry's fields in the shared shape: tags.x is entity TAG key x, name is ATTRIBUTE name.
        ("name = 'a'", MODEL_SEARCH, [Comparison(A, "name", "=", "a")]),
        ("NAME == 'a'", MODEL_SEARCH, [Comparison(A, "name", "=", "a")]),
        ("tags.team <> 'x'", MODEL_SEARCH, [Comparison(T, "team", "!=", "x")]),
        ("tags.'team name' = 'x'", MODEL_SEARCH, [Comparison(T, "team name", "=", "x")]),
        ("version_number IN (1, '2', +3)", VERSION_SEARCH, [Comparison(A, "version", "IN", (1, 2, 3))]),
        ("version = ' 7 '", VERSION_SEARCH, [Comparison(A, "version", "=", 7)]),
        (
            "current_stage IN ('STAGING', 'archived')",
            VERSION_SEARCH,
            [Comparison(A, "current_stage", "IN", ("Staging", "Archived"))],
        ),
        ("`run_id` = 'r'", VERSION_SEARCH, [Comparison(A, "run_id", "=", "r")]),
        ("source LIKE 's3://b/%'", VERSION_SEARCH, [Comparison(A, "source", "LIKE", "s3://b/%")]),
        # Tracking's, unchanged.
        (
            "metrics.rmse < 5 and params.a NOT IN ('x')",
            RUN_SEARCH,
            [
                Comparison(M, "rmse", "<", 5.0),
                Comparison(P, "a", "NOT IN", ("x",)),
            ],
        ),
        ("attr.created >= 1e3", RUN_SEARCH, [Comparison(A, "start_time", ">=", 1000.0)]),
        ("run.STATUS = 'FINISHED'", RUN_SEARCH, [Comparison(A, "status", "=", "FINISHED")]),
        (
            "tags.k ILIKE 'v%' AND experiment_id = 3",
            EXPERIMENT_SEARCH,
            [
                Comparison(T, "k", "ILIKE", "v%"),
                Comparison(A, "experiment_id", "=", 3.0),
            ],
        ),
        ("params.x IN ('a',\n'b' ,'c')", RUN_SEARCH, [Comparison(P, "x", "IN", ("a", "b", "c"))]),
        ("metrics.é/ü:-x > -.5", RUN_SEARCH, [Comparison(M, "é/ü:-x", ">", -0.5)]),
    ],
)
def test_filters_parse(text: str, spec: f.SearchSpec, expected: list[Comparison]) -> None:
    assert parse_filter(text, spec) == expected


@pytest.mark.parametrize(
    ("text", "spec"),
    [
        ("metrics.a < 1", MODEL_SEARCH),  # no metrics in the registry
        ("params.a = 'x'", VERSION_SEARCH),
        ("tags = 'x'", MODEL_SEARCH),
        ("name.x = 'y'", MODEL_SEARCH),
        ("version = 1.5", VERSION_SEARCH),
        ("version = 1e2", VERSION_SEARCH),
        ("version = '1.0'", VERSION_SEARCH),
        ("version IN (1, 'x')", VERSION_SEARCH),
        ("version IN (1 2)", VERSION_SEARCH),
        ("version IN (1,)", VERSION_SEARCH),
        ("version IN (1x)", VERSION_SEARCH),
        ("version IN 1", VERSION_SEARCH),
        ("version IN '(' 1)", VERSION_SEARCH),
        ("current_stage = 3", VERSION_SEARCH),
        ("current_stage IN ('Staging', 'nope')", VERSION_SEARCH),
        ("source ILIKE 'x'", VERSION_SEARCH),
        ("metrics.a < ٣", RUN_SEARCH),  # ASCII digits only
        ("metrics.a < 1 AND AND metrics.b < 2", RUN_SEARCH),
        ("params.a IN ('x') OR params.b = 'y'", RUN_SEARCH),
        ("tags.`k` = `v`", RUN_SEARCH),  # backticks quote keys, not values
        ("tags. 'k' 'v'", RUN_SEARCH),
        ("'name' = 'x'", EXPERIMENT_SEARCH),  # single quotes are never a bare field
        ("\x00", RUN_SEARCH),
    ],
)
def test_malformed_filters_are_invalid_filter(text: str, spec: f.SearchSpec) -> None:
    refused(lambda: parse_filter(text, spec))


def test_order_by_is_declared_by_the_spec() -> None:
    assert parse_order_by(["creation_timestamp DESC", "`version_number`"], VERSION_SEARCH) == [
        OrderBy(A, "creation_time", False),
        OrderBy(A, "version", True),
    ]
    assert parse_order_by(["attributes.created desc", "tags.`a b`"], RUN_SEARCH) == [
        OrderBy(A, "start_time", False),
        OrderBy(T, "a b", True),
    ]
    for spec, clause in [
        (EXPERIMENT_SEARCH, "tags.k"),  # experiments order by attributes only
        (MODEL_SEARCH, "version"),
        (MODEL_SEARCH, "tags.k"),
        (RUN_SEARCH, "metrics.a DESC ASC"),
        (RUN_SEARCH, "x" * (f.MAX_ORDER_BY_LENGTH + 1)),
    ]:
        refused(lambda spec=spec, clause=clause: parse_order_by([clause], spec), "INVALID_ORDER_BY")  # type: ignore[misc]


# --- escapes -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "value"),
    [
        ("'it''s'", "it's"),
        ("'it\\'s'", "it's"),
        ('"say ""hi"""', 'say "hi"'),
        ('"say \\"hi\\""', 'say "hi"'),
        ("'say \"hi\"'", 'say "hi"'),
        ("'say \\\"hi\\\"'", 'say "hi"'),  # a backslash before any quote character is that character
        ("'a\\\\b'", "a\\b"),  # \\ is one backslash
        ("'ab\\\\'", "ab\\"),
        ("'a\\b'", "a\\b"),  # any other backslash stays
        ("'100\\%'", "100\\%"),  # so LIKE patterns keep their escapes
        ("'a\\_b\\\\%'", "a\\_b\\%"),
        ("'\\\\\\''", "\\'"),
        ("''", ""),
        ("'line\nbreak'", "line\nbreak"),
    ],
)
def test_string_escapes(written: str, value: str) -> None:
    assert parse_filter(f"params.k = {written}", RUN_SEARCH) == [Comparison(P, "k", "=", value)]
    assert parse_filter(f"params.k IN ({written}, {written})", RUN_SEARCH) == [
        Comparison(P, "k", "IN", (value, value))
    ]


@pytest.mark.parametrize(
    ("written", "key"),
    [
        ("`a``b`", "a`b"),
        ("`a\\`b`", "a`b"),
        ('"a""b"', 'a"b'),
        ("`a\\b`", "a\\b"),
        ("`a.b = 'c'`", "a.b = 'c'"),
    ],
)
def test_quoted_keys(written: str, key: str) -> None:
    assert parse_filter(f"tags.{written} = 'v'", RUN_SEARCH) == [Comparison(T, key, "=", "v")]
    assert parse_order_by([f"tags.{written} DESC"], RUN_SEARCH) == [OrderBy(T, key, False)]


@pytest.mark.parametrize("text", ["params.k = 'it\\'", "params.k = 'a", 'params.k = "a\\"', "tags.`k = 'v'"])
def test_unterminated_strings_are_invalid_filter(text: str) -> None:
    assert "unterminated" in refused(lambda: parse_filter(text, RUN_SEARCH))


# --- limits --------------------------------------------------------------------------------------


def test_filter_length_limit() -> None:
    padding = " " * (f.MAX_FILTER_LENGTH - len("name = 'x'"))
    assert parse_filter("name = 'x'" + padding, MODEL_SEARCH) == [Comparison(A, "name", "=", "x")]
    message = refused(lambda: parse_filter("name = 'x' " + padding, MODEL_SEARCH))
    assert str(f.MAX_FILTER_LENGTH) in message


def test_number_length_limit() -> None:
    longest = "1" * f.MAX_NUMBER_LENGTH
    assert parse_filter(f"metrics.a < {longest}", RUN_SEARCH) == [Comparison(M, "a", "<", float(longest))]
    for text, spec in [
        ("metrics.a < 1" + "0" * f.MAX_NUMBER_LENGTH, RUN_SEARCH),
        ("metrics.a < " + "1" * 12_000, RUN_SEARCH),
        ("version = " + "1" * 5_000, VERSION_SEARCH),
        ("version = '" + "1" * 5_000 + "'", VERSION_SEARCH),  # int() of it would raise ValueError
        ("version IN (1, " + "1" * 5_000 + ")", VERSION_SEARCH),
    ]:
        refused(lambda text=text, spec=spec: parse_filter(text, spec))  # type: ignore[misc]


def test_int64_and_finite_limits() -> None:
    assert parse_filter(f"version = {f.INT64_MAX} AND version = '{f.INT64_MIN}'", VERSION_SEARCH) == [
        Comparison(A, "version", "=", f.INT64_MAX),
        Comparison(A, "version", "=", f.INT64_MIN),
    ]
    for text in [
        f"version = {f.INT64_MAX + 1}",
        f"version = '{f.INT64_MIN - 1}'",
        f"version IN (1, {f.INT64_MAX + 1})",
        f"version_number >= {10**40}",
    ]:
        assert "64-bit" in refused(lambda text=text: parse_filter(text, VERSION_SEARCH))  # type: ignore[misc]
    for text in ["metrics.a < 1e999", "start_time > -1e400", "metrics.a < 1e308 AND metrics.b > 9e308"]:
        assert "out of range" in refused(lambda text=text: parse_filter(text, RUN_SEARCH))  # type: ignore[misc]


def test_clause_limit() -> None:
    most = " AND ".join(f"params.p{i} = 'x'" for i in range(f.MAX_CLAUSES))
    assert len(parse_filter(most, RUN_SEARCH)) == f.MAX_CLAUSES
    assert "clauses" in refused(lambda: parse_filter(most + " AND params.q = 'x'", RUN_SEARCH))
    refused(lambda: parse_filter(" AND ".join(["name = 'x'"] * 1_001), MODEL_SEARCH))


def in_list(count: int, value: str = "'v'") -> str:
    return "(" + ", ".join([value] * count) + ")"


@pytest.mark.parametrize("value", ["'v'", '"v"', "'it''s'"])
def test_in_list_limits(value: str) -> None:
    assert len(parse_filter(f"params.a IN {in_list(f.MAX_IN_VALUES, value)}", RUN_SEARCH)[0].value) == 1_000
    assert "IN list" in refused(
        lambda: parse_filter(f"params.a IN {in_list(f.MAX_IN_VALUES + 1)}", RUN_SEARCH)
    )
    # A list the one-match path does not take (a malformed value at the end) hits the limit too.
    malformed = "params.a IN (" + "'v', " * (f.MAX_IN_VALUES + 1) + "1x)"
    assert "IN list" in refused(lambda: parse_filter(malformed, RUN_SEARCH))
    lists = f.MAX_FILTER_VALUES // f.MAX_IN_VALUES
    most = " AND ".join(f"params.p{i} IN {in_list(f.MAX_IN_VALUES, value)}" for i in range(lists))
    assert len(parse_filter(most, RUN_SEARCH)) == lists
    assert "in all" in refused(lambda: parse_filter(most + " AND params.q IN ('x')", RUN_SEARCH))


def test_order_by_clause_limit() -> None:
    refused(lambda: parse_order_by(["name"] * (f.MAX_ORDER_BY_CLAUSES + 1), MODEL_SEARCH), "INVALID_ORDER_BY")


def test_error_messages_stay_small() -> None:
    huge = "x" * 60_000
    for text, spec in [
        (f"name = '{huge}' extra", MODEL_SEARCH),
        (f"{huge} = 'x'", MODEL_SEARCH),
        (f"name = {huge}", MODEL_SEARCH),
        (f"name = '{huge}' AND {huge}", MODEL_SEARCH),
        (f"tags.`{huge}` < 'x'", MODEL_SEARCH),
        (f"params.`{huge}` = 1", RUN_SEARCH),
        (f"params.`{huge}` IN 'x'", RUN_SEARCH),
        (f"tags.{huge} < 'x'", VERSION_SEARCH),
        (f"version = '{huge}'", VERSION_SEARCH),
        (f"current_stage = '{huge}'", VERSION_SEARCH),
    ]:
        assert len(refused(lambda text=text, spec=spec: parse_filter(text, spec))) < 300  # type: ignore[misc]
    assert (
        len(refused(lambda: parse_order_by([f"tags.`{huge[:1000]}` UP"], RUN_SEARCH), "INVALID_ORDER_BY"))
        < 300
    )


# --- hostile and largest inputs (their speed is measured by bench/filter_parse.py, not here) -------


MEGABYTE = 1_000_000


@pytest.mark.parametrize(
    ("text", "spec"),
    [
        (("name = 'x' AND " * (MEGABYTE // 15 + 1))[:MEGABYTE], MODEL_SEARCH),
        ("name = '" + "x" * MEGABYTE + "'", VERSION_SEARCH),
        ("metrics.a < " + "1" * 12_000, RUN_SEARCH),
        ("metrics.a < " + "1" * (f.MAX_FILTER_LENGTH - 20) + "x", RUN_SEARCH),
        ("params.a = '" + "x" * (f.MAX_FILTER_LENGTH - 20), RUN_SEARCH),  # unterminated
        (("name = 'x' AND " * 5_000)[: f.MAX_FILTER_LENGTH], MODEL_SEARCH),  # too many clauses
        ("params.a IN (" + "'v'," * 16_000 + "'v')", RUN_SEARCH),  # too many values
    ],
    ids=[
        "1MB-clauses",
        "1MB-string",
        "12000-digits",
        "64k-digits",
        "unterminated",
        "5000-clauses",
        "16000-values",
    ],
)
def test_hostile_filters_are_refused(text: str, spec: f.SearchSpec) -> None:
    refused(lambda: parse_filter(text, spec))


@pytest.mark.parametrize(
    ("text", "spec"),
    [
        ("name = '" + "x" * (f.MAX_FILTER_LENGTH - 9) + "'", MODEL_SEARCH),
        ("name = '" + "\\'" * ((f.MAX_FILTER_LENGTH - 9) // 2) + "'", MODEL_SEARCH),
        (
            " AND ".join(f"params.p{i} IN {in_list(50, repr(str(i)))}" for i in range(f.MAX_CLAUSES)),
            RUN_SEARCH,
        ),
        (" AND ".join(f"version IN {in_list(f.MAX_IN_VALUES, '1')}" for _ in range(5)), VERSION_SEARCH),
        (" AND ".join(f"tags.`k{i}` LIKE '{'v' * 600}%'" for i in range(f.MAX_CLAUSES)), VERSION_SEARCH),
    ],
    ids=["one-string", "escapes", "max-clauses-x50-values", "5x1000-ints", "max-long-clauses"],
)
def test_largest_valid_filters_parse(text: str, spec: f.SearchSpec) -> None:
    assert len(text) <= f.MAX_FILTER_LENGTH
    assert len(parse_filter(text, spec)) in (1, 5, f.MAX_CLAUSES)


# --- properties ----------------------------------------------------------------------------------

# Any character but NUL, which every filter refuses (test_nul_is_refused).
NO_NUL = st.characters(exclude_characters="\x00")

# Nothing written to disk (.hypothesis/), no per-example deadline on a busy machine.
PROPERTY: dict[str, Any] = {
    "database": None,
    "deadline": None,
    "suppress_health_check": [HealthCheck.too_slow],
}

# Fragments of the grammar, so generated text is often nearly valid and reaches deep into the parser.
FRAGMENTS = [
    *["metrics.a", "params.b", "tags.c", "tags.", "attributes.", "name", "version", "current_stage"],
    *["run_id", "start_time", "experiment_id", "`k`", '"k"', "'v'", "'it''s'", "'a\\'", "'\\\\'"],
    *["1", "-1.5e3", "1e", "1.", "..", str(2**63), "1e999", "'production'", "(", ")", ",", "=", "=="],
    *["!=", "<>", "<", "<=", "IN", "NOT", "LIKE", "ILIKE", "AND", "OR", "ASC", "DESC", " ", "\n", "'"],
    *['"', "`", "\\", "%", "_", "é", "x"],
]
grammar_soup = st.lists(st.sampled_from(FRAGMENTS), max_size=16).map("".join)


@settings(max_examples=400, **PROPERTY)
@given(text=st.one_of(st.text(max_size=200), grammar_soup))
def test_any_text_parses_or_is_refused_with_the_typed_error(text: str) -> None:
    for spec in SPECS:
        try:
            parse_filter(text, spec)
        except InvalidArgumentError as error:
            assert (error.reason, error.metadata) == ("INVALID_FILTER", {"field": "filter"})
        try:
            parse_order_by([text], spec)
        except InvalidArgumentError as error:
            assert (error.reason, error.metadata) == ("INVALID_ORDER_BY", {"field": "order_by"})


@settings(max_examples=300, **PROPERTY)
@given(
    value=st.text(
        NO_NUL,
    ),
    mark=st.sampled_from(["'", '"']),
)
def test_quote_round_trips(value: str, mark: str) -> None:
    assert parse_filter(f"params.k = {quote(value, mark)}", RUN_SEARCH) == [Comparison(P, "k", "=", value)]
    # The other spelling of a quote inside: backslash-escaped instead of doubled.
    backslashed = mark + value.replace("\\", "\\\\").replace(mark, "\\" + mark) + mark
    assert parse_filter(f"params.k = {backslashed}", RUN_SEARCH) == [Comparison(P, "k", "=", value)]


@settings(max_examples=200, **PROPERTY)
@given(key=st.text(NO_NUL, min_size=1), mark=st.sampled_from(["`", '"']))
def test_quoted_keys_round_trip(key: str, mark: str) -> None:
    assert parse_filter(f"tags.{quote(key, mark)} != 'v'", RUN_SEARCH) == [Comparison(T, key, "!=", "v")]


KEY_MARKS = ["`", '"']
BARE_KEY = re.compile(r"[A-Za-z_][\w.\-/:]*")
keys = st.from_regex(r"[A-Za-z_][A-Za-z0-9_.\-/:]{0,20}", fullmatch=True)
numbers = st.floats(allow_nan=False, allow_infinity=False, width=64)


def _spaced(*parts: str) -> st.SearchStrategy[str]:
    return st.lists(st.sampled_from([" ", "  ", "\n", "\t "]), min_size=len(parts), max_size=len(parts)).map(
        lambda spaces: "".join(part + space for part, space in zip(parts, spaces, strict=True)).rstrip()
    )


@st.composite
def run_clause(draw: st.DrawFn) -> tuple[str, Comparison]:
    """One clause of a run search, written in any of its spellings, and what it means."""
    entity = draw(st.sampled_from([M, P, T, A]))
    if entity is A:
        name = draw(st.sampled_from(["run_name", "status", "start_time", "created", "end_time"]))
        canonical = {"created": "start_time"}.get(name, name)
        prefix = draw(st.sampled_from(["", "attributes.", "attr.", "run.", "ATTRIBUTE."]))
        field, numeric = prefix + draw(st.sampled_from([name, name.upper()])), "time" in canonical
        key = canonical
    else:
        key = draw(keys | st.text(NO_NUL, min_size=1, max_size=10))
        spelling = draw(st.sampled_from([k for k, e in f.ENTITY_ALIASES.items() if e is entity]))
        if BARE_KEY.fullmatch(key) and draw(st.booleans()):
            field = f"{spelling}.{key}"
        else:
            field = spelling + "." + quote(key, draw(st.sampled_from(KEY_MARKS)))
        numeric = entity is M
    if numeric:
        op = draw(st.sampled_from(sorted(f.NUMERIC_OPS | {"==", "<>"})))
        number = draw(numbers)
        value: f.Value = number
        text_value = repr(number)
    else:
        op = draw(st.sampled_from(sorted(f.STRING_OPS | {"==", "<>"})))
        if op in ("IN", "NOT IN"):
            strings = draw(st.lists(st.text(NO_NUL, max_size=8), min_size=1, max_size=5))
            value = tuple(strings)
            text_value = "(" + ", ".join(quote(s, draw(st.sampled_from("'\""))) for s in strings) + ")"
        else:
            string = draw(st.text(NO_NUL, max_size=12))
            value, text_value = string, quote(string, draw(st.sampled_from("'\"")))
    written_op = draw(st.sampled_from([op, op.lower()]))
    canonical_op = {"==": "=", "<>": "!="}.get(op, op)
    return draw(_spaced(field, written_op, text_value)), Comparison(entity, key, canonical_op, value)


@settings(max_examples=300, **PROPERTY)
@given(
    clauses=st.lists(run_clause(), min_size=1, max_size=6),
    joiner=st.sampled_from([" AND ", " and ", "\nAnd "]),
)
def test_generated_filters_parse_to_their_comparisons(
    clauses: list[tuple[str, Comparison]], joiner: str
) -> None:
    text = joiner.join(written for written, _ in clauses)
    assert parse_filter(text, RUN_SEARCH) == [meaning for _, meaning in clauses]


@settings(max_examples=200, **PROPERTY)
@given(
    versions=st.lists(st.integers(min_value=f.INT64_MIN, max_value=f.INT64_MAX), min_size=1, max_size=20),
    quoted=st.booleans(),
)
def test_generated_int_lists_parse(versions: list[int], quoted: bool) -> None:
    written = ", ".join(f"'{v}'" if quoted else str(v) for v in versions)
    assert parse_filter(f"version_number IN ({written})", VERSION_SEARCH) == [
        Comparison(A, "version", "IN", tuple(versions))
    ]


def test_nul_is_refused() -> None:
    for text in ["params.k = 'a\x00'", "params.`k\x00` = 'a'", "name\x00 = 'a'"]:
        assert "NUL" in refused(lambda text=text: parse_filter(text, RUN_SEARCH))
    assert "NUL" in refused(
        lambda: parse_order_by(["attributes.run_name\x00"], RUN_SEARCH), "INVALID_ORDER_BY"
    )
