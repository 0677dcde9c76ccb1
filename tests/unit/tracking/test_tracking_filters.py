"""The MLflow filter / order_by grammar: what parses to what, and what is INVALID_FILTER."""

from __future__ import annotations

import pytest

from modelreg_server.errors import InvalidArgumentError
from tracking_service.domain.filters import (
    EXPERIMENT_SEARCH,
    RUN_SEARCH,
    Comparison,
    Entity,
    OrderBy,
    parse_filter,
    parse_order_by,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", []),
        ("   ", []),
        ("metrics.rmse < 5", [Comparison(Entity.METRIC, "rmse", "<", 5.0)]),
        ("metric.loss >= -1.5e-3", [Comparison(Entity.METRIC, "loss", ">=", -0.0015)]),
        ("metrics.acc != .5", [Comparison(Entity.METRIC, "acc", "!=", 0.5)]),
        ("metrics.acc == 1E2", [Comparison(Entity.METRIC, "acc", "=", 100.0)]),
        ("params.alpha = '0.5'", [Comparison(Entity.PARAM, "alpha", "=", "0.5")]),
        ('param.alpha = "0.5"', [Comparison(Entity.PARAM, "alpha", "=", "0.5")]),
        ("params.name = 'it''s'", [Comparison(Entity.PARAM, "name", "=", "it's")]),
        ('tags.note = "say ""hi"""', [Comparison(Entity.TAG, "note", "=", 'say "hi"')]),
        ("tags.`my key` LIKE 'a%'", [Comparison(Entity.TAG, "my key", "LIKE", "a%")]),
        ("tags.\"my key\" ilike 'A%'", [Comparison(Entity.TAG, "my key", "ILIKE", "A%")]),
        ("metrics.`a.b-c` > 1", [Comparison(Entity.METRIC, "a.b-c", ">", 1.0)]),
        ("metrics.val/loss < 1", [Comparison(Entity.METRIC, "val/loss", "<", 1.0)]),
        ("tags.team IN ('a', 'b')", [Comparison(Entity.TAG, "team", "IN", ("a", "b"))]),
        ("params.x not in ('1')", [Comparison(Entity.PARAM, "x", "NOT IN", ("1",))]),
        ("status = 'FINISHED'", [Comparison(Entity.ATTRIBUTE, "status", "=", "FINISHED")]),
        ("attributes.run_name LIKE 'x%'", [Comparison(Entity.ATTRIBUTE, "run_name", "LIKE", "x%")]),
        ("run.start_time > 10", [Comparison(Entity.ATTRIBUTE, "start_time", ">", 10.0)]),
        ("attribute.created <= 10", [Comparison(Entity.ATTRIBUTE, "start_time", "<=", 10.0)]),
        ("`run_id` IN ('a')", [Comparison(Entity.ATTRIBUTE, "run_id", "IN", ("a",))]),
        (
            "metrics.a < 1 AND params.b = 'x' and tags.c != 'y'",
            [
                Comparison(Entity.METRIC, "a", "<", 1.0),
                Comparison(Entity.PARAM, "b", "=", "x"),
                Comparison(Entity.TAG, "c", "!=", "y"),
            ],
        ),
    ],
)
def test_run_filters_parse(text: str, expected: list[Comparison]) -> None:
    assert parse_filter(text, RUN_SEARCH) == expected


@pytest.mark.parametrize(
    "text",
    [
        "metrics.a < 1 OR metrics.b < 2",
        "metrics.a < 1 or metrics.b < 2",
        "(metrics.a < 1)",
        "metrics.a < 1 AND",
        "AND metrics.a < 1",
        "metrics.a <",
        "metrics.a",
        "metrics.a 1",
        "metrics.a < 1 metrics.b < 2",
        "metrics.a < 'one'",
        "metrics.a LIKE 'x'",
        "metrics.a IN ('1')",
        "params.a = 1",
        "params.a > '1'",
        "tags.a < 'x'",
        "params.a = 'unterminated",
        'params.a = "unterminated',
        "params.`a = 'x'",
        "params.a IN ()",
        "params.a IN ('x'",
        "params.a IN ('x' 'y')",
        "params.a IN 'x'",
        "params.a IN (1, 2)",
        "params.a NOT 'x'",
        "params.a = 'x' ;",
        "foo.a = 'x'",
        "datasets.name = 'x'",
        "metrics. < 1",
        "metrics.`` < 1",
        "unknown_attribute = 'x'",
        "start_time = 'yesterday'",
        "status > 'A'",
        "metrics.a < 1e",
        "metrics.a < 1..2",
        "metrics.a < --1",
        "metrics.a ~ 1",
        "= 1",
        "'x' = params.a",
    ],
)
def test_malformed_run_filters_are_invalid_filter(text: str) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        parse_filter(text, RUN_SEARCH)
    assert caught.value.reason == "INVALID_FILTER"


def test_experiment_filter_accepts_name_and_tags_only() -> None:
    assert parse_filter("name LIKE 'exp%' AND tags.k = 'v' AND creation_time > 5", EXPERIMENT_SEARCH) == [
        Comparison(Entity.ATTRIBUTE, "name", "LIKE", "exp%"),
        Comparison(Entity.TAG, "k", "=", "v"),
        Comparison(Entity.ATTRIBUTE, "creation_time", ">", 5.0),
    ]
    for bad in ("metrics.a < 1", "params.a = 'x'", "name IN ('a')", "status = 'x'"):
        with pytest.raises(InvalidArgumentError) as caught:
            parse_filter(bad, EXPERIMENT_SEARCH)
        assert caught.value.reason == "INVALID_FILTER"


def test_order_by_parses_direction_and_quoted_keys() -> None:
    assert parse_order_by(["metrics.`val loss` DESC", "params.alpha asc", "start_time"], RUN_SEARCH) == [
        OrderBy(Entity.METRIC, "val loss", ascending=False),
        OrderBy(Entity.PARAM, "alpha", ascending=True),
        OrderBy(Entity.ATTRIBUTE, "start_time", ascending=True),
    ]


@pytest.mark.parametrize(
    "clauses",
    [
        ["metrics.a sideways"],
        ["metrics.a ASC DESC"],
        ["foo.a"],
        ["unknown"],
        [""],
        ["metrics.a", "metrics.b", "metrics.c", "metrics.d"],
        ["'quoted'"],
    ],
)
def test_malformed_order_by_is_invalid_order_by(clauses: list[str]) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        parse_order_by(clauses, RUN_SEARCH)
    assert caught.value.reason == "INVALID_ORDER_BY"


def test_mlflow_tags_held_in_run_columns_filter_and_order_by_the_columns() -> None:
    from tracking_service.domain.filters import parse_run_filter, parse_run_order_by

    assert parse_run_filter("tags.mlflow.parentRunId = 'p' AND tags.`mlflow.runName` LIKE 'a%'") == [
        Comparison(Entity.ATTRIBUTE, "parent_run_id", "=", "p"),
        Comparison(Entity.ATTRIBUTE, "run_name", "LIKE", "a%"),
    ]
    assert parse_run_filter("attributes.parent_run_id IN ('p', 'q')") == [
        Comparison(Entity.ATTRIBUTE, "parent_run_id", "IN", ("p", "q"))
    ]
    assert parse_run_filter("attributes.user_id = 'me'") == [Comparison(Entity.TAG, "mlflow.user", "=", "me")]
    assert parse_run_filter("tags.mlflow.user = 'me' AND tags.team = 'x'") == [
        Comparison(Entity.TAG, "mlflow.user", "=", "me"),
        Comparison(Entity.TAG, "team", "=", "x"),
    ]
    assert parse_run_order_by(["tags.mlflow.runName DESC"]) == [OrderBy(Entity.ATTRIBUTE, "run_name", False)]


@pytest.mark.parametrize("key", ["mlflow.source.git.branch", "mlflow.docker.image.id", "mlflow.runname"])
def test_other_mlflow_tags_are_tags_like_any_other(key: str) -> None:
    """As in MLflow: only mlflow.runName and mlflow.parentRunId live in columns; a run imported or
    tagged by another tool may hold any other mlflow.* tag, and filters find it."""
    from tracking_service.domain.filters import parse_run_filter, parse_run_order_by

    assert parse_run_filter(f"tags.`{key}` = 'x'") == [Comparison(Entity.TAG, key, "=", "x")]
    assert parse_run_order_by([f"tags.`{key}`"]) == [OrderBy(Entity.TAG, key, True)]
    assert parse_run_order_by(["attributes.parent_run_id DESC"]) == [
        OrderBy(Entity.ATTRIBUTE, "parent_run_id", False)
    ]
