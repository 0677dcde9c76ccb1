"""LIKE / ILIKE and the grammar's limits on every backend (SQLite, PostgreSQL, MySQL/MariaDB),
through both services' stores (tracking's behind its domain service, which parses its filters):
each pattern selects the rows written out here, whatever the
backend, and the largest filter the limits allow runs on each of them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from modelreg.wire import quote
from modelreg_server.context import CallContext
from modelreg_server.db import create_db_engine, upgrade
from modelreg_server.filters import MAX_CLAUSES, MAX_FILTER_VALUES, MAX_IN_VALUES, parse_filter
from modelreg_server.sqlfilter import glob_pattern, like_pattern
from registry_service.domain.filters import MODEL_SEARCH, VERSION_SEARCH
from registry_service.store import MIGRATIONS_DIR
from registry_service.store.sql import SqlRegistryStore
from tests.conftest import Backend
from tracking_service.artifacts import FileArtifactStore
from tracking_service.domain.entities import Param, ViewType
from tracking_service.domain.service import TrackingService
from tracking_service.store import MIGRATIONS
from tracking_service.store.sql import SqlTrackingStore

CTX = CallContext(actor="tester", request_id="req")

# Every value is a run name, a run tag, an experiment name, a model name, a model tag and the
# source of a version. The registry's tag values and sources are TEXT columns in the server's
# default (case-insensitive) collation on MySQL/MariaDB; the names are binary-collated.
VALUES = ["abc", "ABC", "Abc", "a%c", "a_c", "a\\c", "ab\\", "a[c]", "a*c", "a?c", "aXc", "a%", "ab", "[x]"]


def pattern_cases() -> list[tuple[str, str, list[str]]]:
    """(operator, LIKE pattern, the values it selects)."""
    return [
        ("LIKE", "a%", ["a%", "a%c", "a*c", "a?c", "aXc", "a[c]", "a\\c", "a_c", "ab", "ab\\", "abc"]),
        ("LIKE", "abc", ["abc"]),  # case-sensitive everywhere (SQLite's own LIKE is not)
        ("LIKE", "a_c", ["a%c", "a*c", "a?c", "aXc", "a\\c", "a_c", "abc"]),
        ("LIKE", "a\\%c", ["a%c"]),  # escaped %
        ("LIKE", "a\\_c", ["a_c"]),  # escaped _
        ("LIKE", "%\\%", ["a%"]),
        ("LIKE", "ab\\", ["ab\\"]),  # a trailing backslash is a literal one
        ("LIKE", "a\\\\c", ["a\\c"]),  # escaped backslash
        ("LIKE", "a\\c", ["a\\c"]),  # a backslash before anything else is literal too
        ("LIKE", "a[c]", ["a[c]"]),  # GLOB metacharacters are plain characters
        ("LIKE", "a*c", ["a*c"]),
        ("LIKE", "a?c", ["a?c"]),
        ("LIKE", "[%", ["[x]"]),
        ("LIKE", "%]", ["[x]", "a[c]"]),
        ("ILIKE", "abc", ["ABC", "Abc", "abc"]),
        ("ILIKE", "A\\_C", ["a_c"]),
        ("ILIKE", "AB\\", ["ab\\"]),
        ("ILIKE", "%X%", ["[x]", "aXc"]),
        ("ILIKE", "_B_", ["ABC", "Abc", "ab\\", "abc"]),
    ]


CASES = pattern_cases()
CASE_IDS = [f"{op}-{pattern}" for op, pattern, _ in CASES]


@dataclass(frozen=True)
class Stores:
    tracking: TrackingService
    registry: SqlRegistryStore


@pytest.fixture
def stores(backend: Backend, database_url_factory: Callable[[str], str], tmp_path: Path) -> Iterator[Stores]:
    """Both stores on the backend, each on a database of its own."""
    tracking_engine = create_db_engine(backend.url, pool_size=2)
    upgrade(tracking_engine, MIGRATIONS)
    registry_engine = create_db_engine(database_url_factory(backend.name), pool_size=2)
    upgrade(registry_engine, MIGRATIONS_DIR)
    tracking_store = SqlTrackingStore(tracking_engine, (tmp_path / "artifacts").as_uri())
    tracking_store.ensure_default_experiment()
    tracking = TrackingService(
        tracking_store, FileArtifactStore(tmp_path / "artifacts"), [(tmp_path / "artifacts").as_uri()]
    )
    yield Stores(tracking, SqlRegistryStore(registry_engine))
    tracking_engine.dispose()
    registry_engine.dispose()


@pytest.fixture
def filled(stores: Stores) -> Stores:
    for value in VALUES:
        stores.tracking.create_run(CTX, "0", run_name=value, tags={"v": value})
        stores.tracking.create_experiment(CTX, value)
        stores.registry.create_model(value, "", {"v": value}, CTX)
    stores.registry.create_model("M", "", {}, CTX)
    for value in VALUES:
        stores.registry.create_version(
            "M", source=value, run_id="", description="", tags={}, lineage=None, ctx=CTX
        )
    return stores


def test_patterns_select_the_same_rows_through_both_stores(filled: Stores) -> None:
    """One test per backend (not per pattern): the data is written once for all the patterns."""
    tracking, registry = filled.tracking, filled.registry
    for op, pattern, expected in CASES:
        written = quote(pattern)

        def runs(filter_text: str) -> list[str]:
            return sorted(
                r.info.run_name
                for r in tracking.search_runs(CTX, ["0"], filter_text, [], ViewType.ACTIVE_ONLY, 0, "").items
            )

        def models(filter_text: str) -> list[str]:
            found = registry.search_models(parse_filter(filter_text, MODEL_SEARCH), [], 100, 0)
            return sorted(m.name for m in found if m.name != "M")

        assert runs(f"tags.v {op} {written}") == expected, (op, pattern)
        assert runs(f"attributes.run_name {op} {written}") == expected, (op, pattern)
        experiments = tracking.search_experiments(
            CTX, f"name {op} {written}", [], ViewType.ACTIVE_ONLY, 0, ""
        ).items
        assert sorted(e.name for e in experiments if e.name != "Default") == expected, (op, pattern)
        assert models(f"name {op} {written}") == expected, (op, pattern)
        assert models(f"tags.v {op} {written}") == expected, (op, pattern)
        if op == "LIKE":  # source takes = and LIKE only
            versions = registry.search_versions(
                parse_filter(f"source LIKE {written}", VERSION_SEARCH), [], 100, 0
            )
            assert sorted(v.source for v in versions) == expected, (op, pattern)


def test_largest_filters_run_on_every_backend(stores: Stores) -> None:
    """MAX_CLAUSES clauses, MAX_FILTER_VALUES values: within every backend's statement limits."""
    tracking, registry = stores.tracking, stores.registry
    wanted = tracking.create_run(CTX, "0", run_name="wanted").info.run_id
    tracking.log_batch(CTX, wanted, params=[Param(f"p{i}", "7") for i in range(MAX_CLAUSES)])
    tracking.create_run(CTX, "0", run_name="other")
    values = ", ".join(f"'{n}'" for n in range(50))
    runs = " AND ".join(f"params.p{i} IN ({values})" for i in range(MAX_CLAUSES))
    assert [
        r.info.run_name for r in tracking.search_runs(CTX, ["0"], runs, [], ViewType.ACTIVE_ONLY, 0, "").items
    ] == ["wanted"]

    registry.create_model("M", "", {}, CTX)
    tags = {f"k{i}": "v" for i in range(MAX_CLAUSES)}
    for _ in range(3):
        registry.create_version("M", source="s", run_id="", description="", tags=tags, lineage=None, ctx=CTX)
    numbers = ", ".join(str(n % 2 * 2 + 1) for n in range(MAX_IN_VALUES))  # 1 and 3
    # MAX_FILTER_VALUES values in five lists, and a tag subquery for each other clause.
    versions = " AND ".join(
        [f"version IN ({numbers})"] * (MAX_FILTER_VALUES // MAX_IN_VALUES)
        + [f"tags.k{i} != 'x'" for i in range(MAX_CLAUSES - MAX_FILTER_VALUES // MAX_IN_VALUES)]
    )
    found = registry.search_versions(parse_filter(versions, VERSION_SEARCH), [], 100, 0)
    assert sorted(v.version for v in found) == [1, 3]


# --- the translation itself ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "like", "glob"),
    [
        ("a%b_c", "a%b_c", "a*b?c"),
        ("a\\%b\\_c\\\\", "a\\%b\\_c\\\\", "a%b_c\\"),
        ("ab\\", "ab\\\\", "ab\\"),
        ("a\\b", "a\\\\b", "a\\b"),
        ("[*?]", "[*?]", "[[][*][?]]"),
        ("", "", ""),
    ],
)
def test_pattern_translation(pattern: str, like: str, glob: str) -> None:
    assert like_pattern(pattern) == like
    assert glob_pattern(pattern) == glob


def test_tag_clauses_together(stores: Stores) -> None:
    """The registry compiles all tag clauses of a search into one subquery: each clause still
    needs a tag of its own that meets it, and != needs the tag to exist (as in MLflow)."""
    registry = stores.registry
    for name, tags in [
        ("both", {"a": "12", "b": "x1"}),
        ("a-only", {"a": "12"}),
        ("a-other", {"a": "13", "b": "x2"}),
        ("none", {}),
    ]:
        registry.create_model(name, "", tags, CTX)

    def models(filter_text: str) -> list[str]:
        return sorted(
            m.name for m in registry.search_models(parse_filter(filter_text, MODEL_SEARCH), [], 100, 0)
        )

    assert models("tags.a = '12' AND tags.b LIKE 'x%'") == ["both"]
    assert models("tags.a LIKE '1%' AND tags.a != '12'") == ["a-other"]  # two clauses, one key
    assert models("tags.a != '13'") == ["a-only", "both"]  # no tag a: not a match
    assert models("tags.b ILIKE 'X%' AND name != 'both'") == ["a-other"]
    assert models("tags.a = '12' AND tags.a = '13'") == []
