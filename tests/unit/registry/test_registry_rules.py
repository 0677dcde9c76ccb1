"""Pure rules: stage names, aliases, model URIs, the filter and order_by grammar, source paths."""

from __future__ import annotations

import pytest

from modelreg_server.errors import ErrorKind, ServiceError
from registry_service.domain import filters, rules
from registry_service.domain.entities import Stage
from registry_service.domain.filters import Comparison, Entity, OrderBy
from registry_service.lineage import artifact_path


def reason_of(call: object, *args: object) -> tuple[ErrorKind, str]:
    with pytest.raises(ServiceError) as info:
        call(*args)  # type: ignore[operator]
    return info.value.kind, info.value.reason


@pytest.mark.parametrize(
    ("text", "stage"),
    [
        ("production", Stage.PRODUCTION),
        ("Staging", Stage.STAGING),
        (" NONE ", Stage.NONE),
        ("archived", Stage.ARCHIVED),
    ],
)
def test_stage_names_are_case_insensitive(text: str, stage: Stage) -> None:
    assert rules.stage(text) is stage


@pytest.mark.parametrize("text", ["", "prod", "Productionn"])
def test_unknown_stage_is_invalid_stage(text: str) -> None:
    assert reason_of(rules.stage, text) == (ErrorKind.INVALID_ARGUMENT, "INVALID_STAGE")


def test_only_staging_and_production_roll_back() -> None:
    assert rules.rollback_stage("production") is Stage.PRODUCTION
    assert reason_of(rules.rollback_stage, "Archived") == (ErrorKind.INVALID_ARGUMENT, "INVALID_STAGE")


@pytest.mark.parametrize("alias", ["latest", "LATEST", "3", "v12", "", "has space", "a/b", "x" * 256])
def test_reserved_or_malformed_aliases_are_refused(alias: str) -> None:
    assert reason_of(rules.alias, alias) == (ErrorKind.INVALID_ARGUMENT, "INVALID_ALIAS")


def test_valid_alias_passes() -> None:
    assert rules.alias("champion-v2_b") == "champion-v2_b"


@pytest.mark.parametrize("name", ["", "   ", "a/b", "a@b", "x" * 251])
def test_invalid_model_names(name: str) -> None:
    assert reason_of(rules.model_name, name) == (ErrorKind.INVALID_ARGUMENT, "INVALID_NAME")


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("models:/Fraud/3", rules.ModelUri("Fraud", version=3)),
        ("models:/Fraud/production", rules.ModelUri("Fraud", stage=Stage.PRODUCTION)),
        ("models:/Fraud/Staging", rules.ModelUri("Fraud", stage=Stage.STAGING)),
        ("models:/Fraud@champion", rules.ModelUri("Fraud", alias="champion")),
        ("models:/Fraud/latest", rules.ModelUri("Fraud", latest=True)),
        ("models:/my model/1", rules.ModelUri("my model", version=1)),
    ],
)
def test_model_uris(uri: str, expected: rules.ModelUri) -> None:
    assert rules.model_uri(uri) == expected


@pytest.mark.parametrize(
    "uri",
    [
        "runs:/abc/model",
        "models:/",
        "models:/Fraud",
        "models:/Fraud/",
        "models:/a/b/1",
        "models:/F/prod",
        "models:/@x",
        "models:/F@",
    ],
)
def test_bad_model_uris(uri: str) -> None:
    assert reason_of(rules.model_uri, uri) == (ErrorKind.INVALID_ARGUMENT, "INVALID_MODEL_URI")


def test_filter_parses_into_comparisons() -> None:
    parsed = filters.parse_filter(
        "name ILIKE '%fraud%' and tags.`team name` = \"risk\" AND version_number >= 2 "
        "and run_id IN ('a', 'b') and current_stage = 'production'",
        filters.VERSION_SEARCH,
    )
    assert parsed == [
        Comparison(Entity.ATTRIBUTE, "name", "ILIKE", "%fraud%"),
        Comparison(Entity.TAG, "team name", "=", "risk"),
        Comparison(Entity.ATTRIBUTE, "version", ">=", 2),
        Comparison(Entity.ATTRIBUTE, "run_id", "IN", ("a", "b")),
        Comparison(Entity.ATTRIBUTE, "current_stage", "=", "Production"),
    ]
    assert filters.parse_filter("   ", filters.MODEL_SEARCH) == []
    assert filters.parse_filter("tags.team = 'it''s'".replace("''", "\\'"), filters.MODEL_SEARCH) == [
        Comparison(Entity.TAG, "team", "=", "it's"),
    ]


@pytest.mark.parametrize(
    "text",
    [
        "name = ",
        "name === 'x'",
        "owner = 'x'",
        "name = 'x' OR name = 'y'",
        "version > 'two'",
        "name = 3",
        "run_id LIKE 'a%'",
        "name IN ('a', 'b')",
        "current_stage = 'prod'",
        "tags. = 'x'",
        "name = 'x' extra",
        "run_id IN ('a' 'b')",
        "name = 'unterminated",
    ],
)
def test_bad_filters_are_invalid_filter(text: str) -> None:
    assert reason_of(filters.parse_filter, text, filters.VERSION_SEARCH) == (
        ErrorKind.INVALID_ARGUMENT,
        "INVALID_FILTER",
    )


def test_order_by() -> None:
    assert filters.parse_order_by(["name DESC", "last_updated_timestamp"], filters.MODEL_SEARCH) == [
        OrderBy(Entity.ATTRIBUTE, "name", False),
        OrderBy(Entity.ATTRIBUTE, "last_updated_time", True),
    ]
    for bad in (["rating"], ["name SIDEWAYS"], ["name ASC extra"], ["name"] * 4, [""]):
        kind_reason = reason_of(filters.parse_order_by, bad, filters.VERSION_SEARCH)
        assert kind_reason == (ErrorKind.INVALID_ARGUMENT, "INVALID_ORDER_BY")


def test_source_resolves_to_a_path_under_the_run() -> None:
    root = "file:///data/artifacts/1/abc"
    assert artifact_path("runs:/abc/model", "abc", root) == "model"
    assert artifact_path("runs:/abc/models/m1/", "abc", root) == "models/m1"
    assert artifact_path(f"{root}/model/model.pkl", "abc", root) == "model/model.pkl"
    assert artifact_path("s3://b/p/model", "abc", "s3://b/p/") == "model"


@pytest.mark.parametrize(
    "source",
    [
        "runs:/other/model",  # another run
        "runs:/abc/../other/model",  # climbs out of the run
        "runs:/abc/",  # the whole root, not a model
        "file:///data/artifacts/1/other/model",  # outside the run's root
        "file:///data/artifacts/1/abcdef/model",  # prefix of the root is not the root
        "s3://elsewhere/model",
    ],
)
def test_sources_outside_the_run_are_invalid_source(source: str) -> None:
    kind_reason = reason_of(artifact_path, source, "abc", "file:///data/artifacts/1/abc")
    assert kind_reason == (ErrorKind.INVALID_ARGUMENT, "INVALID_SOURCE")
