"""Metric, param and tag clauses select the same runs however the store compiles them, on every
backend.

SqlTrackingStore gives the first keys of a search a subquery each and tests the others together,
one subquery per table (see _data_conditions). Whatever the split, a filter must keep the meaning
each clause has alone: a run matches a clause when it has the key and the key's value meets the
clause (a run lacking the key matches none, != and NOT IN included; a NaN metric matches only !=,
±inf compares as a number), and a filter matches the runs that match every clause. Here every
operator on every entity is checked against that rule alone, then seeded mixes of up to
MAX_CLAUSES clauses (same-key pairs, several keys per table, order_by on a filtered key) against
the intersection of their clauses' runs.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Mapping, Sequence

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from modelreg.wire import quote
from modelreg_server.filters import MAX_CLAUSES
from tracking_service.domain.entities import Metric, ViewType
from tracking_service.domain.filters import (
    EXPERIMENT_SEARCH,
    RUN_SEARCH,
    Comparison,
    Entity,
    parse_filter,
    parse_order_by,
)
from tracking_service.store.sql import SqlTrackingStore

Data = tuple[Mapping[str, float], Mapping[str, str], Mapping[str, str]]  # metrics, params, tags

# Runs in creation (and start_time) order: NaN and ±inf metrics, keys missing here and there, and
# values for LIKE's wildcards and escapes and ILIKE's case folding.
RUNS: dict[str, Data] = {
    "r0": (
        {"m": 0.5, "n": 1.0, "o": 3.0},
        {"p": "a", "q": "x", "r": "k"},
        {"t": "vision", "u": "1", "w": "1"},
    ),
    "r1": ({"m": 1.0, "n": 2.0, "o": -2.0}, {"p": "B", "q": "y"}, {"t": "Vision", "u": "2", "w": "2"}),
    "r2": ({"m": math.nan, "n": 1.0}, {"p": "ab", "r": "K"}, {"t": "nlp", "w": "1"}),
    "r3": ({"m": math.inf, "o": 0.5}, {"p": "a_b", "q": "x", "r": "k"}, {"t": "vis_ion", "u": "1"}),
    "r4": ({"m": -math.inf, "n": -1.0, "o": 1.0}, {"q": "z", "r": "kk"}, {"u": "3", "w": "a"}),
    "r5": ({"m": 2.0, "n": math.nan}, {"p": "a%", "q": "x", "r": "x"}, {"t": "v", "u": "2", "w": "1"}),
    "r6": ({}, {}, {}),
    "r7": ({"n": 0.0, "o": math.nan}, {"p": "", "q": "y", "r": "k"}, {"t": "", "u": "1", "w": "2"}),
}

NUMBERS = [-1e300, -1.0, 0.5, 1.0, 1e300]
STRINGS: dict[str, list[str]] = {
    "=": ["a", "x", "k", "vision", "1", ""],
    "!=": ["a", "x", "nlp", ""],
    "LIKE": ["a%", "a_", "a\\_b", "a\\%", "vis%", "v_sion", "%", "1"],
    "ILIKE": ["b", "A%", "VIS%", "X", "k", "_"],
}
LISTS = [("a", "B"), ("x", "y"), ("v", "nlp"), ("1",)]


def single_clauses() -> list[str]:
    """Every operator of every entity on three keys, each as a filter of one clause."""
    texts = [
        f"metrics.{key} {op} {number!r}"
        for key in ("m", "n", "o")
        for op in ("=", "!=", "<", "<=", ">", ">=")
        for number in NUMBERS
    ]
    for field in ("params.p", "params.q", "params.r", "tags.t", "tags.u", "tags.w"):
        texts += [f"{field} {op} {quote(value)}" for op, values in STRINGS.items() for value in values]
        texts += [
            f"{field} {op} ({', '.join(map(quote, values))})" for op in ("IN", "NOT IN") for values in LISTS
        ]
    return texts


SINGLE = single_clauses()


def _like(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    """The filter grammar's LIKE pattern as a regular expression."""
    parts = re.findall(r"\\[%_\\]|[%_]|\\|[^%_\\]+", pattern)
    body = "".join(
        ".*" if part == "%" else "." if part == "_" else re.escape(part[1] if len(part) == 2 else part)
        for part in parts
    )
    return re.compile(body, re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def meets(name: str, clause: Comparison) -> bool:
    """Whether run ``name`` matches one clause: the meaning each clause has alone."""
    if clause.entity is Entity.ATTRIBUTE:
        assert (clause.key, clause.op) == ("run_name", "!="), "the only attribute clause used here"
        return name != clause.value
    values = RUNS[name][[Entity.METRIC, Entity.PARAM, Entity.TAG].index(clause.entity)]
    if clause.key not in values:
        return False  # a missing key matches no clause, != and NOT IN included
    value, target, op = values[clause.key], clause.value, clause.op
    if isinstance(value, float) and math.isnan(value):
        return op == "!="  # NaN equals nothing and orders against nothing
    if op in ("LIKE", "ILIKE"):
        assert isinstance(target, str) and isinstance(value, str)
        return _like(target, op == "ILIKE").fullmatch(value) is not None
    if op in ("IN", "NOT IN"):
        assert isinstance(target, tuple)
        return (value in target) == (op == "IN")
    compare = {
        "=": value == target,
        "!=": value != target,
        "<": value < target,  # type: ignore[operator]
        "<=": value <= target,  # type: ignore[operator]
        ">": value > target,  # type: ignore[operator]
        ">=": value >= target,  # type: ignore[operator]
    }
    return compare[op]


def expected(filter_text: str) -> list[str]:
    """The runs matching every clause, newest first (the search's default order)."""
    clauses = parse_filter(filter_text, RUN_SEARCH)
    return [name for name in reversed(RUNS) if all(meets(name, c) for c in clauses)]


@pytest.fixture
def filled(store: SqlTrackingStore) -> SqlTrackingStore:
    for start, (name, (metrics, params, tags)) in enumerate(RUNS.items()):
        run_id = store.create_run(0, name, 1_000 + start, tags, None).info.run_id
        store.log_batch(run_id, [Metric(k, v, 1, 0) for k, v in metrics.items()], params, {})
    return store


def names(store: SqlTrackingStore, filter_text: str, order_by: Sequence[str] = ()) -> list[str]:
    filters = parse_filter(filter_text, RUN_SEARCH)
    order = parse_order_by(list(order_by), RUN_SEARCH)
    return [r.info.run_name for r in store.search_runs([0], filters, order, ViewType.ACTIVE_ONLY, 100, 0)]


def test_every_operator_alone(filled: SqlTrackingStore) -> None:
    for text in SINGLE:
        assert names(filled, text) == expected(text), text


def test_the_model_sees_each_edge() -> None:
    """The data above exercises what the store must get right (guards the model against itself)."""
    assert expected("metrics.m != 1.0") == ["r5", "r4", "r3", "r2", "r0"]  # NaN matches !=; missing does not
    assert expected("metrics.m > 1e300") == ["r3"]  # +inf
    assert expected("metrics.m < -1e300") == ["r4"]  # -inf
    assert expected("params.p NOT IN ('a', 'B')") == ["r7", "r5", "r3", "r2"]  # r4, r6 lack p
    assert expected("params.p LIKE 'a\\\\_b'") == ["r3"]  # an escaped _ is literal
    assert expected("tags.t ILIKE 'VIS%'") == ["r3", "r1", "r0"]


MIXES = 120


def mixes() -> list[str]:
    """Seeded filters of 2 to MAX_CLAUSES clauses over up to six keys of the three tables, each
    clause possibly repeated on its key, with an attribute clause now and then."""
    rng = random.Random(20_261_130)
    texts = []
    for _ in range(MIXES):
        clauses = rng.sample(SINGLE, rng.choice([2, 3, 4, 5, 6, 8, 12, MAX_CLAUSES]))
        if rng.random() < 0.2:
            clauses[rng.randrange(len(clauses))] = "attributes.run_name != 'r1'"
        texts.append(" AND ".join(clauses))
    return texts


def test_mixed_clauses_match_the_intersection(filled: SqlTrackingStore) -> None:
    """One test per backend for all the mixes: the runs are written once."""
    for text in mixes():
        assert names(filled, text) == expected(text), text


def test_filtered_keys_ordered_by(filled: SqlTrackingStore) -> None:
    """A clause on the key ordered by is applied through the order's join, the rest as usual."""
    rng = random.Random(7)
    for order_by in (["metrics.m ASC"], ["params.p DESC"], ["tags.u", "metrics.n DESC"]):
        key = order_by[0].split()[0]
        on_key = [c for c in SINGLE if c.startswith(f"{key} ")]
        for _ in range(10):
            text = " AND ".join([rng.choice(on_key), *rng.sample(SINGLE, rng.choice([1, 3, 6]))])
            assert sorted(names(filled, text, order_by)) == sorted(expected(text)), (text, order_by)


def test_keys_beyond_the_first_three(filled: SqlTrackingStore) -> None:
    """Keys past the first three are tested together per table: each must still be met."""
    first = "params.q != 'zz' AND tags.u != 'zz' AND params.p != 'zz'"  # r0, r1, r3, r5, r7
    assert names(filled, f"{first} AND metrics.m > 0.7 AND metrics.n > 0.7") == ["r1"]
    assert names(filled, f"{first} AND metrics.o != 3.0 AND metrics.n != 2.0") == ["r7"]  # NaN o, 0 n
    assert names(filled, f"{first} AND tags.w = '1' AND params.r = 'k' AND tags.t != 'v'") == ["r0"]
    assert names(filled, f"{first} AND params.r NOT IN ('x') AND tags.w NOT IN ('2')") == ["r0"]


def test_same_key_clauses_meet_on_one_row(filled: SqlTrackingStore) -> None:
    many = " AND ".join(["metrics.n >= -1.0", "params.q != 'z'", "tags.u != '3'", "params.p != 'zz'"])
    assert names(filled, "metrics.m > 0.5 AND metrics.m < 1e300") == ["r5", "r1"]
    assert names(filled, f"{many} AND metrics.m > 0.5 AND metrics.m < 1e300") == ["r1"]
    assert names(filled, "metrics.m = 0.5 AND metrics.m = 1.0") == []
    assert names(filled, f"{many} AND tags.t LIKE 'v%' AND tags.t != 'v'") == ["r0"]


def test_experiment_tag_clauses_together(store: SqlTrackingStore) -> None:
    """Experiments search their tags the same way: four keys, so some go to the per-table test."""
    tags = {
        "e0": {"a": "1", "b": "x", "c": "p", "d": "q"},
        "e1": {"a": "1", "b": "y", "c": "p", "d": "Q"},
        "e2": {"a": "2", "b": "x", "c": "p"},
        "e3": {"a": "1", "b": "x", "c": "P", "d": "q"},
    }
    for name, experiment_tags in tags.items():
        store.create_experiment(name, "", experiment_tags)

    def found(text: str) -> list[str]:
        experiments = store.search_experiments(
            parse_filter(text, EXPERIMENT_SEARCH), [], ViewType.ACTIVE_ONLY, 100, 0
        )
        return sorted(e.name for e in experiments if e.name != "Default")

    assert found("tags.a = '1' AND tags.b = 'x' AND tags.c = 'p' AND tags.d = 'q'") == ["e0"]
    assert found("tags.a = '1' AND tags.b != 'y' AND tags.c ILIKE 'P' AND tags.d != 'x'") == ["e0", "e3"]
    assert found("tags.a LIKE '%' AND tags.b LIKE '%' AND tags.c LIKE '%' AND tags.d != 'x'") == [
        "e0",
        "e1",
        "e3",
    ]  # e2 lacks d
    assert found("tags.d ILIKE 'q' AND tags.a != '2' AND tags.b = 'x' AND tags.c != 'P'") == ["e0"]


def test_many_keys_make_few_subqueries(engine: Engine, filled: SqlTrackingStore) -> None:
    """However many keys a filter names, the statement holds three uncorrelated subqueries (each a
    semi-join, and PostgreSQL's join search is exponential in those) and one count per table."""
    keys = [f"metrics.k{i} >= 0" for i in range(7)] + [f"params.k{i} != 'x'" for i in range(7)]
    keys += [f"tags.k{i} LIKE '%'" for i in range(MAX_CLAUSES - len(keys))]
    sent: list[str] = []

    def capture(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        sent.append(statement)

    sa.event.listen(engine, "before_cursor_execute", capture)
    try:
        assert names(filled, " AND ".join(keys)) == []
    finally:
        sa.event.remove(engine, "before_cursor_execute", capture)
    search = next(s for s in sent if "FROM runs" in s)
    assert len(re.findall(r"IN \(SELECT", search)) == 3, search
    assert len(re.findall(r"\(SELECT count\(\*\)", search)) == 3, search
