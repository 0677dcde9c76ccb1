"""Permissions per registered model, through the client against both real servers.

`secured`: every user reads everything by default; `private`: users see only what they are granted.
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from sklearn.linear_model import LinearRegression

import modelreg
import modelreg.sklearn
from modelreg import exceptions
from modelreg.models.fetch import fetch_model
from registry_service.domain.service import ACCESS_CACHE_SECONDS
from tests.integration.access.conftest import SecuredServices


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _denied(call: Callable[[], object]) -> tuple[str, str]:
    with pytest.raises(exceptions.PermissionDenied) as error:
        call()
    return error.value.metadata["permission"], error.value.metadata["resource"]


def _owned_model(services: SecuredServices, owner: str, versions: int = 1) -> str:
    """A model created by ``owner`` (who is granted MANAGE) with bare-source versions."""
    name = _name("model")
    with services.client(services.user_token(owner)) as client:
        client.create_registered_model(name)
        for i in range(versions):
            client.create_model_version(name, f"s3://bucket/{name}/{i}")
    return name


def _run_with_model(client: modelreg.Client, tmp_path: Path) -> str:
    """A run of a new experiment holding a modelreg model directory at ``model``; its id."""
    x = [[1.0, 2.0], [2.0, 1.0], [3.0, 5.0]]
    local = tmp_path / uuid.uuid4().hex
    modelreg.sklearn.save_model(LinearRegression().fit(x, [1.0, 2.0, 3.0]), local)
    experiment_id = client.create_experiment(_name("experiment"))
    run_id = client.create_run(experiment_id).info.run_id
    client.log_artifacts(run_id, str(local), "model")
    return run_id


def test_a_reader_cannot_change_another_users_model(secured: SecuredServices) -> None:
    name = _owned_model(secured, "owner-a")
    resource = f"registered_models/{name}"
    with secured.client(secured.user_token("reader-a")) as reader:
        assert reader.get_model_version(name, 1).version == 1  # READ by default
        assert _denied(lambda: reader.create_model_version(name, "s3://bucket/x")) == ("EDIT", resource)
        assert _denied(lambda: reader.set_registered_model_alias(name, "candidate", 1)) == ("EDIT", resource)
        assert _denied(lambda: reader.transition_model_version_stage(name, 1, "Staging")) == (
            "EDIT",
            resource,
        )
        assert _denied(lambda: reader.rename_registered_model(name, name + "-x")) == ("MANAGE", resource)
        assert _denied(lambda: reader.delete_registered_model(name)) == ("MANAGE", resource)
        assert _denied(lambda: reader.set_registered_model_permission(name, "EDIT", user="reader-a")) == (
            "MANAGE",
            resource,
        )
        with pytest.raises(exceptions.NotFound) as missing:
            reader.create_model_version(_name("no-such-model"), "s3://bucket/x")
    assert missing.value.reason == "REGISTERED_MODEL_NOT_FOUND"


def test_a_protected_alias_needs_manage(secured: SecuredServices) -> None:
    name = _owned_model(secured, "owner-b")
    with secured.client(secured.user_token("owner-b")) as owner:
        owner.set_registered_model_permission(name, "EDIT", user="editor-b")
        owner.set_registered_model_permission(name, "MANAGE", group="leads-b")
        assert owner.set_registered_model_protection(name, aliases=["champion"]).aliases == ("champion",)
    with secured.client(secured.user_token("editor-b")) as editor:
        editor.set_registered_model_alias(name, "candidate", 1)
        assert _denied(lambda: editor.set_registered_model_alias(name, "champion", 1)) == (
            "MANAGE",
            f"registered_models/{name}",
        )
    with secured.client(secured.user_token("lead-b", groups=("leads-b",))) as lead:
        lead.set_registered_model_alias(name, "champion", 1)
    with secured.client(secured.user_token("editor-b")) as editor:
        assert _denied(lambda: editor.delete_registered_model_alias(name, "champion"))[0] == "MANAGE"
        assert editor.get_model_version_by_alias(name, "champion").version == 1


def test_production_is_protected_by_default(secured: SecuredServices) -> None:
    name = _owned_model(secured, "owner-c", versions=2)
    with secured.client(secured.user_token("owner-c")) as owner:
        owner.set_registered_model_permission(name, "EDIT", user="editor-c")
        owner.transition_model_version_stage(name, 2, "Production")
    with secured.client(secured.user_token("editor-c")) as editor:
        assert editor.transition_model_version_stage(name, 1, "Staging").current_stage == "Staging"
        assert _denied(lambda: editor.transition_model_version_stage(name, 1, "Production"))[0] == "MANAGE"
        # Out of Production too: the store refuses it under the model's lock.
        assert _denied(lambda: editor.transition_model_version_stage(name, 2, "Archived"))[0] == "MANAGE"
        assert _denied(lambda: editor.rollback_stage(name, "Production"))[0] == "MANAGE"
        assert editor.get_model_version(name, 2).current_stage == "Production"
    with secured.client(secured.user_token("owner-c")) as owner:
        owner.set_registered_model_protection(name, production=False)
    time.sleep(ACCESS_CACHE_SECONDS)  # the editor's looked-up access may be this old
    with secured.client(secured.user_token("editor-c")) as editor:
        assert editor.transition_model_version_stage(name, 1, "Production").current_stage == "Production"


def test_registering_needs_read_on_the_runs_experiment(private: SecuredServices, tmp_path: Path) -> None:
    with private.client(private.user_token("scientist-d")) as scientist:
        run_id = _run_with_model(scientist, tmp_path)
    with private.client(private.user_token("outsider-d")) as outsider:
        name = _name("theirs")
        outsider.create_registered_model(name)  # MANAGE on their own model...
        with pytest.raises(exceptions.PermissionDenied):  # ...but no READ on the experiment
            outsider.create_model_version(name, f"runs:/{run_id}/model", run_id)


def _registered_private_model(private: SecuredServices, tmp_path: Path) -> tuple[str, str]:
    """(model name, run id): a model of scientist-e registered from their run, READ granted to reader-e."""
    name = _name("shared")
    with private.client(private.user_token("scientist-e")) as scientist:
        run_id = _run_with_model(scientist, tmp_path)
        scientist.create_registered_model(name)
        scientist.create_model_version(name, f"runs:/{run_id}/model", run_id)
        scientist.set_registered_model_permission(name, "READ", user="reader-e")
    return name, run_id


def test_model_read_is_enough_to_load_a_version(
    private: SecuredServices, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name, _ = _registered_private_model(private, tmp_path)
    monkeypatch.setenv("MODELREG_CACHE_DIR", str(tmp_path / "cache"))
    with private.client(private.user_token("reader-e")) as reader:
        fetched = fetch_model(f"models:/{name}/1", tracking=reader.tracking, registry=reader.registry)
        model = modelreg.sklearn.load_local_model(fetched.path, fetched.metadata)
        assert model.predict([[1.0, 2.0]]).shape == (1,)
        with pytest.raises(exceptions.NotFound) as missing:
            reader.registry.download_model_version_file(name, 1, "../secrets.txt", tmp_path / "x")
    assert missing.value.reason == "MODEL_FILE_NOT_FOUND"
    with private.client(private.user_token("stranger-e")) as stranger:
        assert _denied(
            lambda: stranger.registry.download_model_version_file(name, 1, "MLmodel", tmp_path / "y")
        ) == ("READ", f"registered_models/{name}")


def test_model_read_does_not_open_the_runs_artifacts(private: SecuredServices, tmp_path: Path) -> None:
    _, run_id = _registered_private_model(private, tmp_path)
    with private.client(private.user_token("reader-e")) as reader, pytest.raises(exceptions.PermissionDenied):
        reader.list_artifacts(run_id)


def test_searches_return_exactly_the_readable_models_page_by_page(private: SecuredServices) -> None:
    prefix = _name("leak")
    names = [f"{prefix}-{letter}" for letter in "abcde"]
    with private.client(private.user_token("owner-f")) as owner:
        for name in names:
            owner.create_registered_model(name)
            owner.create_model_version(name, f"s3://bucket/{name}")
        for name in (names[1], names[2], names[4]):
            owner.set_registered_model_permission(name, "READ", user="reader-f")
    readable = [names[1], names[2], names[4]]
    with private.client(private.user_token("reader-f")) as reader:
        query = f"name LIKE '{prefix}-%'"
        first = reader.search_registered_models(query, max_results=2)
        assert [m.name for m in first] == readable[:2] and first.token
        second = reader.search_registered_models(query, max_results=2, page_token=first.token)
        assert [m.name for m in second] == readable[2:] and second.token is None
        pages, token = [], None
        while True:
            page = reader.search_model_versions(query, max_results=2, page_token=token)
            pages.append([v.name for v in page])
            if (token := page.token) is None:
                break
        assert pages == [readable[:2], readable[2:]]
        with pytest.raises(exceptions.NotFound):
            reader.get_registered_model(_name("never-created"))
        assert _denied(lambda: reader.get_registered_model(names[0]))[0] == "READ"


def test_lineage_calls_reach_tracking_as_the_registry_for_the_user(
    secured: SecuredServices, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with secured.client(secured.user_token("scientist-g")) as scientist:
        run_id = _run_with_model(scientist, tmp_path)
        name = _name("lineage")
        scientist.create_registered_model(name)
        with caplog.at_level(logging.INFO, logger="modelreg.calls"):
            scientist.create_model_version(name, f"runs:/{run_id}/model", run_id)
    lines = [r.getMessage() for r in caplog.records if r.name == "modelreg.calls"]
    tracking_lines = [line for line in lines if "method=GetRun" in line or "method=SealArtifacts" in line]
    assert any("method=SealArtifacts" in line for line in tracking_lines)
    assert all("actor=scientist-g via=modelreg-registry" in line for line in tracking_lines)


def test_grant_and_protection_changes_are_history(secured: SecuredServices) -> None:
    name = _owned_model(secured, "owner-h")
    with secured.client(secured.user_token("owner-h")) as owner:
        owner.set_registered_model_permission(name, "EDIT", group="team-h")
        owner.set_registered_model_permission(name, "READ", user="viewer-h")
        owner.delete_registered_model_permission(name, user="viewer-h")
        owner.set_registered_model_protection(name, aliases=["prod", "champion"])
        with pytest.raises(exceptions.InvalidArgument) as both:
            owner.set_registered_model_permission(name, "READ", user="x", group="y")
        with pytest.raises(exceptions.NotFound) as gone:
            owner.delete_registered_model_permission(name, user="viewer-h")
        grants, protection, events = owner.list_registered_model_permissions(name)
        history = owner.get_model_history(name)
    assert both.value.reason == "INVALID_PRINCIPAL" and gone.value.reason == "PERMISSION_NOT_FOUND"
    assert [(g.user, g.group, g.level) for g in grants] == [("owner-h", "", "MANAGE"), ("", "team-h", "EDIT")]
    assert (protection.production, protection.aliases) == (True, ("champion", "prod"))
    assert [(v.actor, v.action, v.user, v.group, v.level) for v in events] == [
        ("owner-h", "SET", "", "team-h", "EDIT"),
        ("owner-h", "SET", "viewer-h", "", "READ"),
        ("owner-h", "DELETE", "viewer-h", "", ""),
        ("owner-h", "PROTECTION", "", "", ""),
    ]
    assert all(v.request_id for v in events)
    assert [(e.action, e.actor, e.from_value, e.to_value) for e in history[-4:]] == [
        ("PERMISSION_SET", "owner-h", "group:team-h", "EDIT"),
        ("PERMISSION_SET", "owner-h", "user:viewer-h", "READ"),
        ("PERMISSION_DELETED", "owner-h", "user:viewer-h", ""),
        ("PROTECTION_SET", "owner-h", "", ""),
    ]
    assert history[-1].comment == "production=true aliases=champion,prod"


def test_a_registered_file_cannot_be_rewritten_even_by_an_editor_of_the_run(
    secured: SecuredServices, tmp_path: Path
) -> None:
    """Someone with EDIT on the experiment (and nothing on the model) tries to rewrite or add a
    file of a registered version: tracking refuses (ARTIFACT_SEALED), and readers of the model
    keep getting the registered bytes."""
    with secured.client(secured.user_token("owner-f")) as owner:
        run_id = _run_with_model(owner, tmp_path)
        name = _name("rewritten")
        owner.create_registered_model(name)
        owner.create_model_version(name, f"runs:/{run_id}/model", run_id=run_id)
        registered = {f.path: f.sha256 for f in owner.get_model_version(name, 1).lineage.files}
        target = sorted(registered)[0]
        evil = tmp_path / "evil"
        evil.write_bytes(b"EVIL")
        (tmp_path / target).write_bytes(b"EVIL")
        for local in (evil, tmp_path / target):
            with pytest.raises(exceptions.FailedPrecondition) as sealed:
                owner.tracking.log_artifact(run_id, local, "model")
            assert sealed.value.reason == "ARTIFACT_SEALED"
    with secured.client(secured.user_token("reader-f")) as reader:
        reader.download_model_version_file(name, 1, target, tmp_path / "fetched")
    assert hashlib.sha256((tmp_path / "fetched").read_bytes()).hexdigest() == registered[target]
