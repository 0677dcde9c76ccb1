"""Registry rules through RegistryService + SqlRegistryStore on every backend, fake lineage port."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from modelreg_server.context import CallContext
from modelreg_server.errors import ErrorKind, ServiceError
from registry_service import lineage_codec
from registry_service.domain import errors
from registry_service.domain.entities import EventAction, ModelVersion, Page, RegisteredModel, Stage
from registry_service.domain.service import RegistryService
from registry_service.store.sql import SqlRegistryStore
from tests.unit.registry.registry_fakes import Clock, FakeLineage

RUN = "a" * 32


def fails(call: Callable[[], object]) -> tuple[ErrorKind, str]:
    with pytest.raises(ServiceError) as info:
        call()
    return info.value.kind, info.value.reason


def register(service: RegistryService, name: str, count: int) -> list[int]:
    ctx = CallContext("alice", "req-test")
    return [service.create_model_version(ctx, name, f"s3://bucket/{name}/{i}").version for i in range(count)]


def test_registered_model_lifecycle(service: RegistryService, ctx: CallContext) -> None:
    created = service.create_registered_model(ctx, "Fraud", "catches fraud", {"team": "risk"})
    assert (created.name, created.description, dict(created.tags)) == (
        "Fraud",
        "catches fraud",
        {"team": "risk"},
    )
    assert fails(lambda: service.create_registered_model(ctx, "Fraud")) == (
        ErrorKind.ALREADY_EXISTS,
        "REGISTERED_MODEL_ALREADY_EXISTS",
    )
    assert fails(lambda: service.create_registered_model(ctx, "bad/name")) == (
        ErrorKind.INVALID_ARGUMENT,
        "INVALID_NAME",
    )
    assert fails(lambda: service.create_registered_model(ctx, "T", tags={"": "x"})) == (
        ErrorKind.INVALID_ARGUMENT,
        "INVALID_TAG",
    )
    service.set_registered_model_tag(ctx, "Fraud", "tier", "1")
    service.set_registered_model_tag(ctx, "Fraud", "tier", "1")  # an unchanged value is no conflict either
    service.delete_registered_model_tag(ctx, "Fraud", "team")
    assert fails(lambda: service.delete_registered_model_tag(ctx, "Fraud", "team")) == (
        ErrorKind.NOT_FOUND,
        "TAG_NOT_FOUND",
    )
    updated = service.update_registered_model(ctx, "Fraud", "v2 text")
    assert (updated.description, dict(updated.tags)) == ("v2 text", {"tier": "1"})
    assert updated.last_updated_time > created.last_updated_time
    assert service.update_registered_model(ctx, "Fraud", None).description == "v2 text"
    assert fails(lambda: service.get_registered_model(ctx, "Nope")) == (
        ErrorKind.NOT_FOUND,
        "REGISTERED_MODEL_NOT_FOUND",
    )


def test_versions_are_numbered_one_to_n_and_never_reused(service: RegistryService, ctx: CallContext) -> None:
    service.create_registered_model(ctx, "M")
    service.create_registered_model(ctx, "Other")
    assert register(service, "M", 3) == [1, 2, 3]
    assert register(service, "Other", 1) == [1]
    service.delete_model_version(ctx, "M", 3)
    assert register(service, "M", 1) == [4]
    version = service.get_model_version(ctx, "M", 4)
    assert (version.current_stage, version.status.value, version.user_id, version.lineage) == (
        Stage.NONE,
        "READY",
        "alice",
        None,
    )
    assert fails(lambda: service.get_model_version(ctx, "M", 3)) == (
        ErrorKind.NOT_FOUND,
        "MODEL_VERSION_NOT_FOUND",
    )
    assert fails(lambda: service.get_model_version(ctx, "Nope", 1)) == (
        ErrorKind.NOT_FOUND,
        "REGISTERED_MODEL_NOT_FOUND",
    )
    assert fails(lambda: service.create_model_version(ctx, "Nope", "s3://x")) == (
        ErrorKind.NOT_FOUND,
        "REGISTERED_MODEL_NOT_FOUND",
    )
    assert fails(lambda: service.create_model_version(ctx, "M", "")) == (
        ErrorKind.INVALID_ARGUMENT,
        "INVALID_SOURCE",
    )
    assert fails(lambda: service.delete_model_version(ctx, "M", 3)) == (
        ErrorKind.NOT_FOUND,
        "MODEL_VERSION_NOT_FOUND",
    )


def test_version_from_a_run_stores_lineage(
    service: RegistryService, lineage: FakeLineage, ctx: CallContext
) -> None:
    service.create_registered_model(ctx, "M")
    record = lineage.add_run(RUN)
    created = service.create_model_version(ctx, "M", f"runs:/{RUN}/model", RUN, "first", {"k": "v"})
    assert lineage.calls == [(RUN, f"runs:/{RUN}/model")]
    stored = service.get_model_version(ctx, "M", created.version)
    assert stored.lineage is not None and created.lineage == stored.lineage
    kept = lineage_codec.decode(stored.lineage)
    assert (kept.run_id, kept.experiment_id, kept.run_name, kept.artifact_path) == (
        record.run_id,
        record.experiment_id,
        record.run_name,
        record.artifact_path,
    )
    assert (kept.params, kept.run_tags, kept.files) == (record.params, record.run_tags, record.files)
    assert kept.metrics["rmse"] == 0.25 and kept.metrics["nan"] != kept.metrics["nan"]
    assert (stored.run_id, stored.description, dict(stored.tags)) == (RUN, "first", {"k": "v"})
    # A runs:/ source names its run even when run_id is left empty: it is checked too.
    implied = service.create_model_version(ctx, "M", f"runs:/{RUN}/model")
    assert implied.run_id == RUN and implied.lineage is not None


@pytest.mark.parametrize(
    "failure",
    [
        errors.RunNotFound(RUN),
        errors.RunDeleted(RUN),
        errors.SourceArtifactNotFound(RUN, "m"),
        errors.TrackingUnavailable("down"),
    ],
)
def test_refused_lineage_writes_nothing(
    service: RegistryService, lineage: FakeLineage, ctx: CallContext, failure: ServiceError
) -> None:
    service.create_registered_model(ctx, "M")
    lineage.failure = failure
    assert fails(lambda: service.create_model_version(ctx, "M", f"runs:/{RUN}/m", RUN)) == (
        failure.kind,
        failure.reason,
    )
    lineage.failure = None
    lineage.add_run(RUN)
    # No row and no burnt number: the next registration is version 1.
    assert service.create_model_version(ctx, "M", f"runs:/{RUN}/m", RUN).version == 1
    assert service.search_model_versions(ctx, "name = 'M'", [], 0, "").items[0].version == 1


def test_missing_model_is_reported_before_asking_tracking(
    service: RegistryService, lineage: FakeLineage, ctx: CallContext
) -> None:
    assert fails(lambda: service.create_model_version(ctx, "Nope", f"runs:/{RUN}/m", RUN)) == (
        ErrorKind.NOT_FOUND,
        "REGISTERED_MODEL_NOT_FOUND",
    )
    assert lineage.calls == []


def test_stage_transitions_archive_existing_versions(service: RegistryService, ctx: CallContext) -> None:
    service.create_registered_model(ctx, "M")
    register(service, "M", 4)
    service.transition_model_version_stage(ctx, "M", 1, "production", False)
    service.transition_model_version_stage(ctx, "M", 2, "Production", False)
    service.transition_model_version_stage(ctx, "M", 4, "staging", False)
    promoted = service.transition_model_version_stage(ctx, "M", 3, "PRODUCTION", True, "release")
    assert promoted.current_stage is Stage.PRODUCTION
    stages = {v: service.get_model_version(ctx, "M", v).current_stage for v in (1, 2, 3, 4)}
    assert stages == {1: Stage.ARCHIVED, 2: Stage.ARCHIVED, 3: Stage.PRODUCTION, 4: Stage.STAGING}
    latest = service.get_latest_versions(ctx, "M", [])
    assert [(v.version, v.current_stage) for v in latest] == [
        (4, Stage.STAGING),
        (3, Stage.PRODUCTION),
        (2, Stage.ARCHIVED),
    ]
    assert [v.version for v in service.get_latest_versions(ctx, "M", ["production"])] == [3]
    assert [v.version for v in service.get_registered_model(ctx, "M").latest_versions] == [4, 3, 2]
    assert fails(lambda: service.transition_model_version_stage(ctx, "M", 1, "Prod", False)) == (
        ErrorKind.INVALID_ARGUMENT,
        "INVALID_STAGE",
    )
    assert fails(lambda: service.get_latest_versions(ctx, "M", ["bogus"])) == (
        ErrorKind.INVALID_ARGUMENT,
        "INVALID_STAGE",
    )
    assert fails(lambda: service.transition_model_version_stage(ctx, "M", 9, "Staging", False)) == (
        ErrorKind.NOT_FOUND,
        "MODEL_VERSION_NOT_FOUND",
    )
    events = service.list_model_events(ctx, "M", 0, 0, "").items
    archived = [e for e in events if e.action is EventAction.STAGE_TRANSITIONED and e.to_value == "Archived"]
    assert sorted(e.version for e in archived) == [1, 2]
    assert all(e.actor == "alice" for e in events)


def test_aliases_set_move_delete_and_latest(service: RegistryService, ctx: CallContext) -> None:
    service.create_registered_model(ctx, "M")
    register(service, "M", 3)
    service.set_registered_model_alias(ctx, "M", "champion", 1)
    service.set_registered_model_alias(ctx, "M", "champion", 2)  # moves
    service.set_registered_model_alias(ctx, "M", "challenger", 2)
    assert service.get_model_version_by_alias(ctx, "M", "champion").version == 2
    assert service.get_model_version(ctx, "M", 2).aliases == ("challenger", "champion")
    assert service.get_model_version(ctx, "M", 1).aliases == ()
    assert dict(service.get_registered_model(ctx, "M").aliases) == {"challenger": 2, "champion": 2}
    assert service.get_model_version_by_alias(ctx, "M", "latest").version == 3
    assert fails(lambda: service.set_registered_model_alias(ctx, "M", "latest", 1)) == (
        ErrorKind.INVALID_ARGUMENT,
        "INVALID_ALIAS",
    )
    assert fails(lambda: service.set_registered_model_alias(ctx, "M", "x", 7)) == (
        ErrorKind.NOT_FOUND,
        "MODEL_VERSION_NOT_FOUND",
    )
    service.delete_registered_model_alias(ctx, "M", "challenger")
    assert fails(lambda: service.get_model_version_by_alias(ctx, "M", "challenger")) == (
        ErrorKind.NOT_FOUND,
        "ALIAS_NOT_FOUND",
    )
    assert fails(lambda: service.delete_registered_model_alias(ctx, "M", "challenger")) == (
        ErrorKind.NOT_FOUND,
        "ALIAS_NOT_FOUND",
    )
    service.delete_model_version(ctx, "M", 2)  # the alias pointing at it goes too
    assert fails(lambda: service.get_model_version_by_alias(ctx, "M", "champion")) == (
        ErrorKind.NOT_FOUND,
        "ALIAS_NOT_FOUND",
    )
    actions = [
        (e.action, e.version, e.from_value, e.to_value, e.comment)
        for e in service.list_model_events(ctx, "M", 0, 0, "").items
    ]
    assert (EventAction.ALIAS_SET, 1, "", "champion", "") in actions
    assert (EventAction.ALIAS_MOVED, 2, "1", "2", "champion") in actions
    assert (EventAction.ALIAS_DELETED, 2, "challenger", "", "") in actions
    assert (EventAction.ALIAS_DELETED, 2, "champion", "", "") in actions


def test_history_is_paginated_and_filterable_by_version(service: RegistryService, ctx: CallContext) -> None:
    service.create_registered_model(ctx, "M")
    register(service, "M", 2)
    service.transition_model_version_stage(ctx, "M", 2, "Staging", False, "ready for QA")
    first = service.list_model_events(ctx, "M", 0, 2, "")
    assert [e.action for e in first.items] == [EventAction.MODEL_CREATED, EventAction.VERSION_CREATED]
    second = service.list_model_events(ctx, "M", 0, 2, first.next_page_token)
    assert [e.action for e in second.items] == [EventAction.VERSION_CREATED, EventAction.STAGE_TRANSITIONED]
    assert second.items[1].comment == "ready for QA" and second.items[1].from_value == "None"
    assert second.next_page_token == ""
    only_two = service.list_model_events(ctx, "M", 2, 0, "").items
    assert [e.action for e in only_two] == [EventAction.VERSION_CREATED, EventAction.STAGE_TRANSITIONED]
    assert fails(lambda: service.list_model_events(ctx, "M", 0, -1, "")) == (
        ErrorKind.INVALID_ARGUMENT,
        "INVALID_PAGE_SIZE",
    )
    assert fails(lambda: service.list_model_events(ctx, "M", 2, 2, first.next_page_token)) == (
        ErrorKind.INVALID_ARGUMENT,
        "INVALID_PAGE_TOKEN",
    )


def test_stage_holder_at_time_replays_history(
    service: RegistryService, clock: Clock, ctx: CallContext
) -> None:
    service.create_registered_model(ctx, "M")
    register(service, "M", 3)
    before = clock.now
    service.transition_model_version_stage(ctx, "M", 1, "Production", False)
    v1_only = clock.now
    service.transition_model_version_stage(ctx, "M", 2, "Production", False)
    both = clock.now
    service.transition_model_version_stage(ctx, "M", 3, "Production", True)
    v3_only = clock.now
    service.delete_model_version(ctx, "M", 3)
    assert service.get_stage_holder_at(ctx, "M", "production", before) == []
    assert service.get_stage_holder_at(ctx, "M", "production", v1_only) == [1]
    assert service.get_stage_holder_at(ctx, "M", "Production", both) == [2, 1]
    assert service.get_stage_holder_at(ctx, "M", "Production", v3_only) == [3]
    assert service.get_stage_holder_at(ctx, "M", "Archived", v3_only) == [2, 1]
    assert service.get_stage_holder_at(ctx, "M", "Production", clock.now) == []
    assert fails(lambda: service.get_stage_holder_at(ctx, "Nope", "Production", 0)) == (
        ErrorKind.NOT_FOUND,
        "REGISTERED_MODEL_NOT_FOUND",
    )


def test_rollback_restores_the_previous_holder(service: RegistryService, ctx: CallContext) -> None:
    service.create_registered_model(ctx, "M")
    register(service, "M", 4)
    assert fails(lambda: service.rollback_stage(ctx, "M", "Production")) == (
        ErrorKind.FAILED_PRECONDITION,
        "NO_ROLLBACK_TARGET",
    )
    assert fails(lambda: service.rollback_stage(ctx, "M", "Archived")) == (
        ErrorKind.INVALID_ARGUMENT,
        "INVALID_STAGE",
    )
    for version in (1, 2, 3):
        service.transition_model_version_stage(ctx, "M", version, "Production", True)
    service.delete_model_version(ctx, "M", 2)  # deleted versions are skipped
    result = service.rollback_stage(ctx, "M", "production", "bad release")
    assert result.restored.version == 1 and result.restored.current_stage is Stage.PRODUCTION
    assert result.archived is not None and result.archived.version == 3
    assert result.archived.current_stage is Stage.ARCHIVED
    assert [v.version for v in service.get_latest_versions(ctx, "M", ["Production"])] == [1]
    last = service.list_model_events(ctx, "M", 0, 0, "").items[-1]
    assert (last.action, last.version, last.from_value, last.to_value, last.comment) == (
        EventAction.STAGE_ROLLED_BACK,
        1,
        "3",
        "1",
        "bad release",
    )
    # Rolling back again goes back to 3: the history says it held Production before 1 came back.
    assert service.rollback_stage(ctx, "M", "Production").restored.version == 3
    # An empty stage is refilled with its last holder, and nothing is archived.
    service.transition_model_version_stage(ctx, "M", 3, "None", False)
    emptied = service.rollback_stage(ctx, "M", "Production")
    assert (emptied.restored.version, emptied.archived) == (3, None)


def test_resolve_model_uri(service: RegistryService, lineage: FakeLineage, ctx: CallContext) -> None:
    service.create_registered_model(ctx, "Fraud")
    lineage.add_run(RUN)
    service.create_model_version(ctx, "Fraud", f"runs:/{RUN}/model", RUN)
    register(service, "Fraud", 2)
    service.transition_model_version_stage(ctx, "Fraud", 1, "Production", False)
    service.set_registered_model_alias(ctx, "Fraud", "champion", 2)
    resolved = service.resolve_model_uri(ctx, "models:/Fraud/production")
    assert resolved.version == 1 and resolved.lineage is not None and resolved.source == f"runs:/{RUN}/model"
    assert service.resolve_model_uri(ctx, "models:/Fraud/2").version == 2
    assert service.resolve_model_uri(ctx, "models:/Fraud@champion").aliases == ("champion",)
    assert service.resolve_model_uri(ctx, "models:/Fraud/latest").version == 3
    assert service.resolve_model_uri(ctx, "models:/Fraud@latest").version == 3
    cases = {
        "models:/Fraud/Staging": (ErrorKind.NOT_FOUND, "MODEL_VERSION_NOT_FOUND"),
        "models:/Fraud/9": (ErrorKind.NOT_FOUND, "MODEL_VERSION_NOT_FOUND"),
        "models:/Fraud@nobody": (ErrorKind.NOT_FOUND, "ALIAS_NOT_FOUND"),
        "models:/Nope/1": (ErrorKind.NOT_FOUND, "REGISTERED_MODEL_NOT_FOUND"),
        "models:/Nope/latest": (ErrorKind.NOT_FOUND, "REGISTERED_MODEL_NOT_FOUND"),
        "runs:/x/y": (ErrorKind.INVALID_ARGUMENT, "INVALID_MODEL_URI"),
    }
    for uri, expected in cases.items():
        assert fails(lambda uri=uri: service.resolve_model_uri(ctx, uri)) == expected, uri  # type: ignore[misc]


def test_search_models_filter_order_and_pages(service: RegistryService, ctx: CallContext) -> None:
    for name, team in [("fraud-a", "risk"), ("Fraud-B", "risk"), ("churn", "growth"), ("fraud-c", "growth")]:
        service.create_registered_model(ctx, name, tags={"team": team})

    def names(page: Page[RegisteredModel]) -> list[str]:
        return [m.name for m in page.items]

    assert names(service.search_registered_models(ctx, "", [], 0, "")) == [
        "Fraud-B",
        "churn",
        "fraud-a",
        "fraud-c",
    ]
    assert names(service.search_registered_models(ctx, "name LIKE 'fraud%'", [], 0, "")) == [
        "fraud-a",
        "fraud-c",
    ]
    assert names(service.search_registered_models(ctx, "name ILIKE 'fraud%'", ["name DESC"], 0, "")) == [
        "fraud-c",
        "fraud-a",
        "Fraud-B",
    ]
    assert names(
        service.search_registered_models(ctx, "tags.team = 'risk' and name != 'fraud-a'", [], 0, "")
    ) == ["Fraud-B"]
    assert names(service.search_registered_models(ctx, "", ["last_updated_timestamp DESC"], 0, "")) == [
        "fraud-c",
        "churn",
        "Fraud-B",
        "fraud-a",
    ]
    first = service.search_registered_models(ctx, "", ["creation_timestamp"], 3, "")
    rest = service.search_registered_models(ctx, "", ["creation_timestamp"], 3, first.next_page_token)
    assert (
        names(first) + names(rest) == ["fraud-a", "Fraud-B", "churn", "fraud-c"]
        and rest.next_page_token == ""
    )
    assert fails(lambda: service.search_registered_models(ctx, "owner = 'x'", [], 0, "")) == (
        ErrorKind.INVALID_ARGUMENT,
        "INVALID_FILTER",
    )
    assert fails(lambda: service.search_registered_models(ctx, "", ["size"], 0, "")) == (
        ErrorKind.INVALID_ARGUMENT,
        "INVALID_ORDER_BY",
    )
    assert fails(lambda: service.search_registered_models(ctx, "", [], -1, "")) == (
        ErrorKind.INVALID_ARGUMENT,
        "INVALID_PAGE_SIZE",
    )
    assert fails(lambda: service.search_registered_models(ctx, "", [], 1, "garbage")) == (
        ErrorKind.INVALID_ARGUMENT,
        "INVALID_PAGE_TOKEN",
    )


def test_search_versions(service: RegistryService, lineage: FakeLineage, ctx: CallContext) -> None:
    service.create_registered_model(ctx, "A")
    service.create_registered_model(ctx, "B")
    lineage.add_run(RUN)
    register(service, "A", 3)
    service.create_model_version(ctx, "B", f"runs:/{RUN}/model", RUN, tags={"flavor": "sklearn"})
    service.transition_model_version_stage(ctx, "A", 2, "Staging", False)
    service.set_model_version_tag(ctx, "A", 3, "flavor", "torch")
    service.set_model_version_tag(ctx, "A", 3, "flavor", "onnx")  # replaces
    service.set_model_version_tag(ctx, "A", 3, "flavor", "onnx")

    def keys(page: Page[ModelVersion]) -> list[tuple[str, int]]:
        return [(v.name, v.version) for v in page.items]

    assert keys(service.search_model_versions(ctx, "", [], 0, "")) == [("A", 3), ("A", 2), ("A", 1), ("B", 1)]
    assert keys(service.search_model_versions(ctx, f"run_id = '{RUN}'", [], 0, "")) == [("B", 1)]
    assert keys(
        service.search_model_versions(ctx, "name = 'A' and version_number > 1", ["version ASC"], 0, "")
    ) == [
        ("A", 2),
        ("A", 3),
    ]
    assert keys(service.search_model_versions(ctx, "version IN (1, 3) and name = 'A'", [], 0, "")) == [
        ("A", 3),
        ("A", 1),
    ]
    assert keys(service.search_model_versions(ctx, "current_stage = 'staging'", [], 0, "")) == [("A", 2)]
    assert keys(service.search_model_versions(ctx, "current_stage != 'None'", [], 0, "")) == [("A", 2)]
    assert keys(service.search_model_versions(ctx, "tags.flavor LIKE 'o%'", [], 0, "")) == [("A", 3)]
    assert keys(service.search_model_versions(ctx, "source LIKE 's3://bucket/A/%'", [], 0, "")) == [
        ("A", 3),
        ("A", 2),
        ("A", 1),
    ]
    page = service.search_model_versions(ctx, "", [], 3, "")
    assert len(page.items) == 3 and keys(
        service.search_model_versions(ctx, "", [], 3, page.next_page_token)
    ) == [("B", 1)]
    assert dict(service.get_model_version(ctx, "A", 3).tags) == {"flavor": "onnx"}
    service.delete_model_version_tag(ctx, "A", 3, "flavor")
    assert fails(lambda: service.delete_model_version_tag(ctx, "A", 3, "flavor")) == (
        ErrorKind.NOT_FOUND,
        "TAG_NOT_FOUND",
    )
    assert fails(lambda: service.search_model_versions(ctx, "version = 'x'", [], 0, "")) == (
        ErrorKind.INVALID_ARGUMENT,
        "INVALID_FILTER",
    )
    updated = service.update_model_version(ctx, "A", 1, "described")
    assert updated.description == "described" and updated.last_updated_time > updated.creation_time


def test_rename_and_delete_cascade(service: RegistryService, lineage: FakeLineage, ctx: CallContext) -> None:
    service.create_registered_model(ctx, "Old", tags={"t": "1"})
    service.create_registered_model(ctx, "Taken")
    lineage.add_run(RUN)
    service.create_model_version(ctx, "Old", f"runs:/{RUN}/model", RUN, tags={"k": "v"})
    service.set_registered_model_alias(ctx, "Old", "champion", 1)
    assert fails(lambda: service.rename_registered_model(ctx, "Old", "Taken")) == (
        ErrorKind.ALREADY_EXISTS,
        "REGISTERED_MODEL_ALREADY_EXISTS",
    )
    renamed = service.rename_registered_model(ctx, "Old", "New")
    assert renamed.name == "New" and dict(renamed.aliases) == {"champion": 1}
    assert service.get_model_version_by_alias(ctx, "New", "champion").name == "New"
    assert fails(lambda: service.get_registered_model(ctx, "Old")) == (
        ErrorKind.NOT_FOUND,
        "REGISTERED_MODEL_NOT_FOUND",
    )
    assert service.create_model_version(ctx, "New", "s3://x").version == 2  # the counter followed
    service.delete_registered_model(ctx, "New")
    assert fails(lambda: service.get_registered_model(ctx, "New")) == (
        ErrorKind.NOT_FOUND,
        "REGISTERED_MODEL_NOT_FOUND",
    )
    assert service.search_model_versions(ctx, "", [], 0, "").items == ()
    # The name is free again and starts over at 1, with a history of its own...
    service.create_registered_model(ctx, "New")
    assert service.create_model_version(ctx, "New", "s3://y").version == 1
    assert [e.action for e in service.list_model_events(ctx, "New", 0, 0, "").items] == [
        EventAction.MODEL_CREATED,
        EventAction.VERSION_CREATED,
    ]
    # ...while the deleted model's history stays readable under the name it was deleted with.
    service.delete_registered_model(ctx, "New")
    service.create_registered_model(ctx, "Gone")
    service.delete_registered_model(ctx, "Gone")
    history = [e.action for e in service.list_model_events(ctx, "Gone", 0, 0, "").items]
    assert history == [EventAction.MODEL_CREATED, EventAction.MODEL_DELETED]
    assert service.list_model_events(ctx, "Never", 0, 0, "").items == ()


def test_serving_reports_are_bounded_per_caller_and_model_in_any_minute(
    store: SqlRegistryStore, lineage: FakeLineage, clock: Clock
) -> None:
    service = RegistryService(store, lineage, serving_reports_per_minute=3)
    alice, bob = CallContext(actor="alice", request_id="r1"), CallContext(actor="bob", request_id="r2")
    for name in ("Served", "Other"):
        service.create_registered_model(alice, name)
        service.create_model_version(alice, name, f"s3://bucket/{name}")
    sent = [service.report_serving_status(alice, "Served", 1, True, "", f"pod-{i}") for i in range(3)]
    with pytest.raises(ServiceError) as caught:
        service.report_serving_status(alice, "Served", 1, False, "one too many", "pod-x")
    assert (caught.value.kind, caught.value.reason) == (
        ErrorKind.RESOURCE_EXHAUSTED,
        "TOO_MANY_SERVING_REPORTS",
    )
    assert caught.value.metadata == {"field": "name", "limit": "3"}
    # The bound is the caller's on the model: another caller, or another model, reports.
    service.report_serving_status(bob, "Served", 1, True, "", "pod-b")
    service.report_serving_status(alice, "Other", 1, True, "", "pod-0")
    # 59 s after the first report all three still count; 60 s after the last, none does.
    clock.now = sent[0].time + 59_000
    with pytest.raises(ServiceError):
        service.report_serving_status(alice, "Served", 1, False, "still too many", "pod-x")
    clock.now = sent[-1].time + 60_000
    service.report_serving_status(alice, "Served", 1, True, "", "pod-later")
    reports = [
        (e.actor, e.to_value)
        for e in service.list_model_events(alice, "Served", 0, 0, "").items
        if e.action in (EventAction.SERVING_LOADED, EventAction.SERVING_LOAD_FAILED)
    ]
    assert reports == [
        ("alice", "pod-0"),
        ("alice", "pod-1"),
        ("alice", "pod-2"),
        ("bob", "pod-b"),
        ("alice", "pod-later"),
    ]
