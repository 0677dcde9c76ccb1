"""Per-experiment permissions, enforced by the tracking service, through the client."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

import modelreg
from modelreg import entities as e
from modelreg import exceptions
from tests.integration.access.conftest import SecuredServices


def _denied(call: Callable[[], object]) -> dict[str, str]:
    with pytest.raises(exceptions.PermissionDenied) as error:
        call()
    assert error.value.reason == "PERMISSION_DENIED"
    return error.value.metadata


def _experiment_with_run(client: modelreg.Client, name: str, tmp_path: Path) -> tuple[str, str]:
    """An experiment with one run holding a metric and an artifact ``model.txt``."""
    experiment_id = client.create_experiment(name)
    run_id = client.create_run(experiment_id).info.run_id
    client.log_metric(run_id, "loss", 0.5)
    local = tmp_path / f"{name}-model.txt"
    local.write_text("weights")
    client.log_artifact(run_id, str(local))
    return experiment_id, run_id


def _service_token(services: SecuredServices, name: str) -> str:
    with services.access() as admin:
        admin.create_user(name, service=True)
        return admin.create_token(name).secret


def test_a_reader_reads_another_users_experiment_but_changes_nothing_in_it(
    secured: SecuredServices, tmp_path: Path
) -> None:
    with secured.client(secured.user_token("olga")) as olga:
        experiment_id, run_id = _experiment_with_run(olga, "olga-exp", tmp_path)
    edit = {"permission": "EDIT", "resource": f"experiments/{experiment_id}"}
    upload = tmp_path / "intruder.txt"
    upload.write_text("not yours")
    with secured.client(secured.user_token("rick")) as rick:
        assert rick.get_experiment(experiment_id).name == "olga-exp"
        assert rick.get_run(run_id).data.metrics["loss"] == 0.5
        assert [f.path for f in rick.list_artifacts(run_id)] == ["olga-exp-model.txt"]
        assert _denied(lambda: rick.create_run(experiment_id)) == edit
        assert _denied(lambda: rick.log_metric(run_id, "loss", 0.1)) == edit
        assert (
            _denied(lambda: rick.tracking.log_metrics_stream([(run_id, [e.Metric("loss", 0.1, 1)])])) == edit
        )
        assert _denied(lambda: rick.set_tag(run_id, "k", "v")) == edit
        assert _denied(lambda: rick.log_artifact(run_id, str(upload))) == edit
        # Sealing forbids the run's writers to upload there: a reader may not, outside a registration.
        assert _denied(lambda: rick.tracking.seal_artifacts(run_id, "olga-exp-model.txt")) == edit
        assert _denied(lambda: rick.rename_experiment(experiment_id, "mine")) == edit
        assert _denied(lambda: rick.delete_experiment(experiment_id)) == {
            "permission": "MANAGE",
            "resource": f"experiments/{experiment_id}",
        }
        assert (
            _denied(lambda: rick.set_experiment_permission(experiment_id, "MANAGE", user="rick"))[
                "permission"
            ]
            == "MANAGE"
        )
        with pytest.raises(exceptions.NotFound) as missing:
            rick.log_metric("f" * 32, "loss", 0.1)  # an unknown run stays NOT_FOUND
        assert missing.value.reason == "RUN_NOT_FOUND"
    assert not list(secured.services.artifact_root.rglob("intruder.txt"))
    with secured.client(secured.user_token("olga")) as olga:
        assert [m.value for m in olga.get_metric_history(run_id, "loss")] == [0.5]
        assert olga.get_run(run_id).data.tags.get("k") is None
        olga.log_artifact(run_id, str(upload))  # nothing was sealed by the reader's attempt
        assert [f.path for f in olga.tracking.seal_artifacts(run_id, "intruder.txt")] == ["intruder.txt"]


def test_the_creator_manages_and_grants_to_a_user_and_a_group_until_revoked(
    secured: SecuredServices, tmp_path: Path
) -> None:
    with secured.client(secured.user_token("carla")) as carla:
        experiment_id, run_id = _experiment_with_run(carla, "carla-exp", tmp_path)
        grants, _ = carla.list_experiment_permissions(experiment_id)
        assert [(g.user, g.level, g.granted_by) for g in grants] == [("carla", "MANAGE", "carla")]
        carla.set_experiment_permission(experiment_id, "EDIT", user="ed")
        granted = carla.set_experiment_permission(experiment_id, "EDIT", group="team-x")
        assert (granted.group, granted.level, granted.granted_by) == ("team-x", "EDIT", "carla")
        with (
            secured.client(secured.user_token("ed")) as ed,
            secured.client(secured.user_token("gina", groups=("team-x",))) as gina,
        ):
            ed.log_metric(run_id, "loss", 0.4)
            gina.log_metric(run_id, "loss", 0.3)
            gina.create_run(experiment_id)
            carla.delete_experiment_permission(experiment_id, group="team-x")
            carla.delete_experiment_permission(experiment_id, user="ed")
            time.sleep(1.0)  # the other replicas' bound; this one forgets at once
            _denied(lambda: ed.log_metric(run_id, "loss", 0.2))
            _denied(lambda: gina.log_metric(run_id, "loss", 0.2))
        with pytest.raises(exceptions.NotFound) as error:
            carla.delete_experiment_permission(experiment_id, user="ed")
        assert error.value.reason == "PERMISSION_NOT_FOUND"


def test_grants_and_revocations_are_listed_with_their_actor_and_request_id(
    secured: SecuredServices, tmp_path: Path
) -> None:
    with secured.client(secured.user_token("hana")) as hana:
        experiment_id = hana.create_experiment("hana-exp")
        hana.set_experiment_permission(experiment_id, "EDIT", group="devs")
        hana.set_experiment_permission(experiment_id, "read", group="auditors")
        hana.set_experiment_permission(experiment_id, "MANAGE", user="ivan")
    with secured.client(secured.user_token("ivan")) as ivan:
        ivan.delete_experiment_permission(experiment_id, group="auditors")
        grants, events = ivan.list_experiment_permissions(experiment_id)
    assert [(g.user, g.group, g.level) for g in grants] == [
        ("hana", "", "MANAGE"),
        ("ivan", "", "MANAGE"),
        ("", "devs", "EDIT"),
    ]
    assert [(v.actor, v.action, v.user, v.group, v.level) for v in events] == [
        ("hana", "SET", "hana", "", "MANAGE"),  # the creator's grant
        ("hana", "SET", "", "devs", "EDIT"),
        ("hana", "SET", "", "auditors", "READ"),
        ("hana", "SET", "ivan", "", "MANAGE"),
        ("ivan", "DELETE", "", "auditors", ""),
    ]
    assert all(v.request_id for v in events)


@pytest.mark.parametrize(
    ("user", "group", "level", "reason"),
    [
        ("", "", "READ", "INVALID_PRINCIPAL"),
        ("a", "b", "READ", "INVALID_PRINCIPAL"),
        ("bad name", "", "READ", "INVALID_USER_NAME"),
        ("", "bad group", "READ", "INVALID_GROUP_NAME"),
        ("", "x" * 129, "READ", "INVALID_GROUP_NAME"),
        ("ok", "", "NONE", "INVALID_PERMISSION_LEVEL"),
        ("ok", "", "OWNER", "INVALID_PERMISSION_LEVEL"),
    ],
)
def test_a_grant_names_one_valid_principal_and_level(
    secured: SecuredServices, user: str, group: str, level: str, reason: str
) -> None:
    with secured.client(secured.user_token("vera")) as vera:
        experiment = vera.get_experiment_by_name("vera-exp") or vera.get_experiment(
            vera.create_experiment("vera-exp")
        )
        with pytest.raises(exceptions.InvalidArgument) as error:
            vera.set_experiment_permission(experiment.experiment_id, level, user=user, group=group)
    assert error.value.reason == reason


def test_a_service_principal_reads_every_run_and_writes_none(
    secured: SecuredServices, tmp_path: Path
) -> None:
    with secured.client(secured.user_token("sam")) as sam:
        _, run_id = _experiment_with_run(sam, "sam-exp", tmp_path)
    with secured.client(_service_token(secured, "registry-bot")) as bot:
        assert bot.get_run(run_id).data.metrics["loss"] == 0.5
        assert bot.download_artifacts(run_id, "sam-exp-model.txt", str(tmp_path / "got"))
        assert _denied(lambda: bot.log_metric(run_id, "loss", 0.1))["permission"] == "EDIT"
        assert _denied(lambda: bot.create_experiment("bot-exp"))["permission"] == "USER"


def test_admins_may_do_anything(secured: SecuredServices, tmp_path: Path) -> None:
    with secured.client(secured.user_token("nick")) as nick:
        experiment_id, run_id = _experiment_with_run(nick, "nick-exp", tmp_path)
    with secured.client(secured.user_token("root", admin=True)) as root:
        root.log_metric(run_id, "loss", 0.1)
        root.set_experiment_permission(experiment_id, "READ", user="someone")
        root.delete_experiment(experiment_id)


# -- default NONE: users see only what they are granted ------------------------------------------


def test_private_searches_return_exactly_the_granted_experiments_across_pages(
    private: SecuredServices, tmp_path: Path
) -> None:
    with secured_pair(private, "pat", "quinn") as (pat, quinn):
        ids = [pat.create_experiment(f"pat-{i}") for i in range(7)]
        granted = {ids[0], ids[2], ids[5], ids[6]}
        runs = {}
        for experiment_id in ids:
            runs[experiment_id] = pat.create_run(experiment_id).info.run_id
        for experiment_id in sorted(granted):
            pat.set_experiment_permission(experiment_id, "READ", user="quinn")
        assert _all_pages(lambda token: quinn.search_experiments(max_results=2, page_token=token)) == granted
        found = _all_pages(lambda token: quinn.search_runs(ids, max_results=2, page_token=token))
        assert found == {runs[i] for i in granted}
        # explicit ids of unreadable experiments contribute nothing
        assert list(quinn.search_runs([ids[1], ids[3]])) == []


def test_private_experiments_and_their_artifacts_are_refused(
    private: SecuredServices, tmp_path: Path
) -> None:
    with secured_pair(private, "rosa", "stan") as (rosa, stan):
        experiment_id, run_id = _experiment_with_run(rosa, "rosa-exp", tmp_path)
        read = {"permission": "READ", "resource": f"experiments/{experiment_id}"}
        assert _denied(lambda: stan.get_experiment(experiment_id)) == read
        assert _denied(lambda: stan.get_experiment_by_name("rosa-exp")) == read
        assert _denied(lambda: stan.get_run(run_id)) == read
        assert _denied(lambda: stan.list_artifacts(run_id)) == read
        assert _denied(lambda: stan.tracking.stat_artifact(run_id, "rosa-exp-model.txt")) == read
        assert (
            _denied(lambda: stan.download_artifacts(run_id, "rosa-exp-model.txt", str(tmp_path / "x")))
            == read
        )
        assert _denied(lambda: stan.get_metric_history(run_id, "loss")) == read
        assert _denied(lambda: stan.list_experiment_permissions(experiment_id)) == read
        with pytest.raises(exceptions.NotFound):
            stan.get_experiment("999999")
        rosa.set_experiment_permission(experiment_id, "READ", user="stan")
        assert [f.path for f in stan.list_artifacts(run_id)] == ["rosa-exp-model.txt"]


def test_a_run_is_made_the_child_only_of_a_run_its_creator_may_read(
    private: SecuredServices, tmp_path: Path
) -> None:
    with secured_pair(private, "paula", "quentin") as (paula, quentin):
        _, parent = _experiment_with_run(paula, "paula-exp", tmp_path)
        own = quentin.create_experiment("quentin-exp")
        named_parent = {"mlflow.parentRunId": parent}
        read = _denied(lambda: quentin.create_run(own, tags=named_parent))
        assert read["permission"] == "READ"
        with pytest.raises(exceptions.NotFound) as unknown:
            quentin.create_run(own, tags={"mlflow.parentRunId": "0" * 32})
        assert unknown.value.reason == "PARENT_RUN_NOT_FOUND"
        assert [r.info.run_id for r in quentin.search_runs([own])] == []
        paula.set_experiment_permission(paula.get_run(parent).info.experiment_id, "READ", user="quentin")
        child = quentin.create_run(own, tags=named_parent)
        assert child.data.tags["mlflow.parentRunId"] == parent


@contextmanager
def secured_pair(services: SecuredServices, first: str, second: str) -> Iterator[tuple[modelreg.Client, ...]]:
    """Two users' clients on ``services``."""
    with (
        services.client(services.user_token(first)) as one,
        services.client(services.user_token(second)) as two,
    ):
        yield one, two


def _all_pages(search: Callable[[str | None], e.PagedList[e.Experiment] | e.PagedList[e.Run]]) -> set[str]:
    """Every id across the pages, each page full but the last."""
    found: list[str] = []
    token: str | None = None
    while True:
        page = search(token)
        found += [x.experiment_id if isinstance(x, e.Experiment) else x.info.run_id for x in page]
        token = page.token
        if not token:
            break
        assert len(page) == 2
    assert len(found) == len(set(found))
    return set(found)


def test_identity_provider_style_names_can_be_granted(secured: SecuredServices) -> None:
    """Keycloak group paths, e-mail addresses and non-ASCII names come from identity providers."""
    with secured.client(secured.user_token("gina")) as gina:
        experiment_id = gina.create_experiment("idp-names")
        for user, group in (("", "/ml-team/reviewers"), ("", "org:data"), ("zoë@corp.example", "")):
            granted = gina.set_experiment_permission(experiment_id, "READ", user=user, group=group)
            assert (granted.user, granted.group) == (user, group)
