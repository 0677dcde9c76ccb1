"""The longest text a caller may send is stored and read back whole on every backend, in four-byte
UTF-8 characters too, and one character more is INVALID_ARGUMENT naming the field (README,
"Limits"). Before, a 65,536-character stage comment failed INTERNAL on MySQL/MariaDB ("Data too
long for column 'comment'", or "Incorrect string value" when it ends inside a character: TEXT
holds 65,535 bytes there), and so did a far shorter one of four-byte characters; on a database whose default character set is latin1, any character outside
it failed the registry's writes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from modelreg.access_client import AccessClient
from modelreg.entities import Param, RunTag
from modelreg.exceptions import InvalidArgument
from modelreg_server.access.service import MAX_DESCRIPTION as MAX_TOKEN_DESCRIPTION
from modelreg_server.settings import AuthSettings
from modelreg_server.validation import MAX_DESCRIPTION_LENGTH, MAX_PARAM_VALUE_LENGTH, MAX_TAG_VALUE_LENGTH
from tests.conftest import BACKEND_PARAMS
from tests.integration.limits.conftest import Stack
from tests.servers import running_services

ADMIN = "bootstrap-secret-for-tests-0123456789"

ON_EVERY_BACKEND = pytest.mark.parametrize("backend", BACKEND_PARAMS, indirect=True)
WIDE = "\N{GRINNING FACE}"  # four bytes in UTF-8, one character
assert len(WIDE.encode()) == 4


def _refused(call: Callable[[], object], field: str) -> None:
    with pytest.raises(InvalidArgument) as error:
        call()
    assert error.value.code == "INVALID_ARGUMENT"
    assert error.value.metadata["field"] == field
    assert field in error.value.message


@ON_EVERY_BACKEND
def test_longest_tracking_values_round_trip_and_one_more_is_refused(stack: Stack) -> None:
    longest_tracking_values(stack)


@ON_EVERY_BACKEND
def test_longest_registry_texts_round_trip_and_one_more_is_refused(stack: Stack, tmp_path: Path) -> None:
    longest_registry_texts(stack, tmp_path)


@pytest.mark.mysql
def test_on_a_latin1_mysql_database_too(latin1_stack: Stack, tmp_path: Path) -> None:
    longest_tracking_values(latin1_stack)
    longest_registry_texts(latin1_stack, tmp_path)
    latin1_stack.registry.rename_registered_model("M", WIDE)  # the event holds both names
    events = list(latin1_stack.registry.list_model_events(WIDE))
    assert (events[-1].from_value, events[-1].to_value) == ("M", WIDE)


@pytest.mark.mysql
def test_access_texts_on_a_latin1_mysql_database(latin1_databases: Callable[[], str], tmp_path: Path) -> None:
    auth = AuthSettings(enabled=True, database_url=latin1_databases(), bootstrap_admin_token=ADMIN)
    user = "\u7528\u6237" * 64  # 128 letters (three bytes each in UTF-8), the longest user name
    description = WIDE * MAX_TOKEN_DESCRIPTION
    with running_services(tmp_path, auth) as services, AccessClient(services.registry, token=ADMIN) as admin:
        admin.create_user(user, groups=["\u7ec4"])
        secret = admin.create_token(user, description=description).secret
        with AccessClient(services.registry, token=secret) as access:
            assert access.whoami().name == user
            access.create_token(description="mine")  # the user is the actor and creator
        _refused(lambda: admin.create_token(user, description=description + WIDE), "description")
        assert {token.description for token in admin.list_tokens(user)} == {description, "mine"}
        events = [e for e in admin.list_access_events() if user in e.detail or e.target == user]
        events.reverse()  # listed newest first
        assert [(e.action, e.actor) for e in events] == [
            ("USER_CREATED", "bootstrap-admin"),
            ("TOKEN_CREATED", "bootstrap-admin"),
            ("TOKEN_CREATED", user),
        ]
        assert (events[0].target, events[0].detail) == (user, "groups=\u7ec4")


def longest_tracking_values(stack: Stack) -> None:
    tracking = stack.tracking
    tag, param = WIDE * MAX_TAG_VALUE_LENGTH, WIDE * MAX_PARAM_VALUE_LENGTH
    experiment_id = tracking.create_experiment("wide", tags={"t": tag}).experiment_id
    run_id = tracking.create_run(experiment_id).info.run_id
    tracking.log_batch(run_id, params=[Param("p", param)], tags=[RunTag("t", tag)])
    tracking.set_experiment_tag(experiment_id, "u", tag)
    run = tracking.get_run(run_id)
    assert (run.data.params["p"], run.data.tags["t"]) == (param, tag)
    assert tracking.get_experiment(experiment_id).tags == {"t": tag, "u": tag}

    _refused(lambda: tracking.set_tag(run_id, "t", tag + WIDE), "value of tag 't'")
    _refused(lambda: tracking.log_param(run_id, "q", param + WIDE), "value of param 'q'")
    _refused(lambda: tracking.set_experiment_tag(experiment_id, "u", tag + WIDE), "value of tag 'u'")
    assert tracking.get_run(run_id).data.params == {"p": param}


def longest_registry_texts(stack: Stack, tmp_path: Path) -> None:
    tracking, registry = stack.tracking, stack.registry
    text, tag = WIDE * MAX_DESCRIPTION_LENGTH, WIDE * MAX_TAG_VALUE_LENGTH
    run_id = tracking.create_run("0").info.run_id
    (tmp_path / "model.bin").write_bytes(b"weights")
    tracking.log_artifact(run_id, tmp_path / "model.bin", "model")
    registry.create_registered_model("M", tags={"t": tag}, description=text)
    first = registry.create_model_version("M", f"runs:/{run_id}/model", run_id, {"t": tag}, text).version
    second = registry.create_model_version("M", f"runs:/{run_id}/model", run_id).version
    registry.update_model_version("M", second, description=text)
    registry.set_registered_model_tag("M", "u", tag)
    registry.set_model_version_tag("M", second, "u", tag)
    registry.transition_model_version_stage("M", first, "Production", comment=text)
    registry.transition_model_version_stage("M", second, "Production", comment="a" + text[1:])
    registry.rollback_stage("M", "Production", comment="b" + text[1:])

    model = registry.get_registered_model("M")
    assert (model.description, model.tags) == (text, {"t": tag, "u": tag})
    versions = [registry.get_model_version("M", number) for number in (first, second)]
    assert [(v.description, v.tags) for v in versions] == [(text, {"t": tag}), (text, {"u": tag})]
    events = list(registry.list_model_events("M"))
    comments = [event.comment for event in events if event.comment and event.action.startswith("STAGE_")]
    assert comments.count(text) == 1
    # A change's history event holds the whole of its longest value too.
    assert [e.comment for e in events if e.action == "VERSION_DESCRIPTION_UPDATED"] == [text]
    tagged = [(e.to_value, e.comment) for e in events if e.action in ("MODEL_TAG_SET", "VERSION_TAG_SET")]
    assert tagged == [(tag[:255], tag)] * 2
    assert "a" + text[1:] in comments
    assert "b" + text[1:] in comments

    longer, longer_tag = text + WIDE, tag + WIDE
    _refused(lambda: registry.update_registered_model("M", description=longer), "description")
    _refused(lambda: registry.update_model_version("M", first, description=longer), "description")
    _refused(lambda: registry.create_registered_model("N", description=longer), "description")
    _refused(lambda: registry.set_registered_model_tag("M", "u", longer_tag), "tag['u']")
    _refused(lambda: registry.set_model_version_tag("M", first, "u", longer_tag), "tag['u']")
    _refused(
        lambda: registry.transition_model_version_stage("M", first, "Staging", comment=longer), "comment"
    )
    _refused(lambda: registry.rollback_stage("M", "Production", comment=longer), "comment")
    assert registry.get_model_version("M", first).current_stage == "Production"
