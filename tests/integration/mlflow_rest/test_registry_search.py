"""Registry searches over MLflow's REST API (filters, order, pages) and names and tags of any
text round-tripping between HTTP and modelreg's client."""

from __future__ import annotations

import itertools
import string
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.integration.mlflow_rest.conftest import Rest
from tests.integration.mlflow_rest.test_registry import logged_run, model, ok, version


def every_page(rest: Rest, path: str, key: str, **params: object) -> list[list[Any]]:
    """Each page of a search, following next_page_token to the end."""
    pages: list[list[Any]] = []
    token: str | None = None
    while True:
        response = ok(rest, "GET", path, None, **params, **({"page_token": token} if token else {}))
        pages.append(response.get(key, []))
        token = response.get("next_page_token")
        if not token:
            return pages


def test_registered_models_search_filters_orders_and_pages(rest: Rest) -> None:
    names = [f"model-{letter}" for letter in "edcba"] + ["other"]
    for name in names:
        model(rest, name)

    pages = every_page(
        rest, "/registered-models/search", "registered_models", filter="name LIKE 'model-%'", max_results=2
    )
    assert [[m["name"] for m in page] for page in pages] == [
        ["model-a", "model-b"],
        ["model-c", "model-d"],
        ["model-e"],
    ]
    descending = rest.http.get(
        "/api/2.0/mlflow/registered-models/search", params=[("order_by", "name DESC"), ("max_results", "3")]
    ).json()
    assert [m["name"] for m in descending["registered_models"]] == ["other", "model-e", "model-d"]
    via_client = rest.registry.search_registered_models("name LIKE 'model-%'", order_by=["name DESC"])
    assert [m.name for m in via_client] == [f"model-{letter}" for letter in "edcba"]
    # Defaults: everything (fewer than MLflow's 100), no token.
    assert "next_page_token" not in ok(rest, "GET", "/registered-models/search")
    bad_filter = rest.call("GET", "/registered-models/search", filter="name ~~ 'x'")
    assert (bad_filter.status_code, bad_filter.json()["error_code"]) == (400, "INVALID_PARAMETER_VALUE")


def test_the_clause_mlflows_client_adds_to_leave_prompts_out_leaves_out_only_prompts(rest: Rest) -> None:
    """MLflow's client appends it to every search_registered_models filter (MLflow >= 2.21)."""
    for name in ("a1", "a2", "b1"):
        model(rest, name)
    prompt_tag = [{"key": "mlflow.prompt.is_prompt", "value": "TRUE"}]
    ok(rest, "POST", "/registered-models/create", {"name": "a-prompt", "tags": prompt_tag})
    clause = "tag.`mlflow.prompt.is_prompt` != 'true'"

    def names(filter_string: str) -> list[str]:
        found = ok(rest, "GET", "/registered-models/search", filter=filter_string)
        return [m["name"] for m in found.get("registered_models", [])]

    assert names(clause) == ["a1", "a2", "b1"]
    assert names(f"name LIKE 'a%' AND {clause}") == ["a1", "a2"]
    pages = every_page(rest, "/registered-models/search", "registered_models", filter=clause, max_results=2)
    assert [m["name"] for page in pages for m in page] == ["a1", "a2", "b1"]
    # Asked for by a filter of the caller's own, prompts are found like any tagged model.
    assert names("tag.`mlflow.prompt.is_prompt` = 'TRUE'") == ["a-prompt"]
    assert names("") == ["a-prompt", "a1", "a2", "b1"]


def test_model_versions_search_filters_orders_and_pages(rest: Rest, tmp_path: Path) -> None:
    _, run_id = logged_run(rest, tmp_path)
    _, other_run = logged_run(rest, tmp_path)
    for name in ("a", "b"):
        model(rest, name)
        for run in (run_id, other_run, run_id):
            version(rest, name, f"runs:/{run}/model")

    pages = every_page(rest, "/model-versions/search", "model_versions", filter="name = 'a'", max_results=2)
    assert [[v["version"] for v in page] for page in pages] == [["3", "2"], ["1"]]  # newest first
    by_run = ok(rest, "GET", "/model-versions/search", filter=f"run_id = '{other_run}'")["model_versions"]
    assert sorted((v["name"], v["version"]) for v in by_run) == [("a", "2"), ("b", "2")]
    ordered = ok(rest, "GET", "/model-versions/search", order_by="version_number ASC", filter="name = 'b'")
    assert [v["version"] for v in ordered["model_versions"]] == ["1", "2", "3"]
    assert "next_page_token" not in ordered


_TEXT = st.characters(codec="utf-8", exclude_characters="\x00")
_NAME = st.text(st.characters(codec="utf-8", exclude_characters="\x00/@"), min_size=1, max_size=60)
_KEY = st.text(_TEXT, min_size=1, max_size=40).filter(lambda key: key.strip() != "")
_VALUE = st.text(_TEXT, max_size=80)
_TAGS = st.dictionaries(_KEY, _VALUE, max_size=4)


def _as_map(tags: list[dict[str, str]]) -> dict[str, str]:
    return {tag["key"]: tag["value"] for tag in tags}


def test_names_tags_and_descriptions_of_any_text_round_trip(rest: Rest, tmp_path: Path) -> None:
    _, run_id = logged_run(rest, tmp_path)
    serial = itertools.count()

    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
    @given(stem=_NAME.filter(lambda s: s.strip() != ""), tags=_TAGS, version_tags=_TAGS, description=_VALUE)
    def round_trip(stem: str, tags: dict[str, str], version_tags: dict[str, str], description: str) -> None:
        name = f"{stem}{next(serial)}"  # each example its own model; the servers outlive examples
        body = {"name": name, "tags": [{"key": k, "value": v} for k, v in tags.items()]}
        created = ok(rest, "POST", "/registered-models/create", {**body, "description": description})
        assert created["registered_model"]["name"] == name
        v = version(
            rest,
            name,
            f"runs:/{run_id}/model",
            tags=[{"key": k, "value": x} for k, x in version_tags.items()],
        )

        got = ok(rest, "GET", "/registered-models/get", name=name)["registered_model"]
        assert (got["name"], _as_map(got["tags"]), got.get("description", "")) == (name, tags, description)
        got_version = ok(rest, "GET", "/model-versions/get", name=name, version=v["version"])["model_version"]
        assert _as_map(got_version["tags"]) == version_tags
        seen = rest.registry.get_registered_model(name)
        assert (seen.name, dict(seen.tags), seen.description) == (name, tags, description)
        assert dict(rest.registry.get_model_version(name, 1).tags) == version_tags

        for key in tags:
            ok(rest, "DELETE", "/registered-models/delete-tag", {"name": name, "key": key})
            ok(
                rest,
                "POST",
                "/model-versions/set-tag",
                {"name": name, "version": "1", "key": key, "value": name},
            )
        assert rest.registry.get_registered_model(name).tags == {}
        assert dict(rest.registry.get_model_version(name, 1).tags) == {
            **version_tags,
            **dict.fromkeys(tags, name),
        }

    round_trip()


def test_a_filter_quoting_any_name_finds_exactly_that_model(rest: Rest) -> None:
    """MLflow's filter grammar reaches the registry as sent: a quoted name is that name."""
    serial = itertools.count()
    quotable = st.text(string.ascii_letters + string.digits + " -_.%", min_size=1, max_size=30)

    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
    @given(stem=quotable.filter(lambda s: s.strip() != ""))
    def found(stem: str) -> None:
        name = f"{stem}{next(serial)}"
        model(rest, name)
        hits = ok(rest, "GET", "/registered-models/search", filter=f"name = '{name}'")["registered_models"]
        assert [m["name"] for m in hits] == [name]

    found()
