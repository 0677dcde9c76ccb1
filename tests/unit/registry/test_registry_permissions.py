"""RegistryService permission checks with hand-built principals, on every backend."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from modelreg_server.access.policy import AccessPolicy, Level, Principal
from modelreg_server.context import CallContext
from modelreg_server.errors import ErrorKind, ServiceError
from registry_service.domain.service import RegistryService
from registry_service.store.sql import SqlRegistryStore
from tests.unit.registry.registry_fakes import FakeLineage

RUN = "b" * 32


def as_user(name: str, *groups: str, admin: bool = False, service: bool = False) -> CallContext:
    return CallContext(name, f"req-{name}", Principal(name, frozenset(groups), admin=admin, service=service))


def fails(call: Callable[[], object]) -> tuple[ErrorKind, str, dict[str, str]]:
    with pytest.raises(ServiceError) as info:
        call()
    return info.value.kind, info.value.reason, info.value.metadata


@pytest.fixture
def private(store: SqlRegistryStore, lineage: FakeLineage) -> RegistryService:
    """Nothing readable unless granted."""
    return RegistryService(store, lineage, AccessPolicy(default_level=Level.NONE))


def test_rollback_of_staging_cannot_pull_a_version_out_of_production(private: RegistryService) -> None:
    owner, editor = as_user("owner"), as_user("editor")
    private.create_registered_model(owner, "M")
    for _ in range(2):
        private.create_model_version(owner, "M", "s3://b/m")
    private.set_registered_model_permission(owner, "M", "editor", "", Level.EDIT)
    private.transition_model_version_stage(owner, "M", 1, "Staging", True)
    private.transition_model_version_stage(owner, "M", 2, "Staging", True)  # archives 1
    private.transition_model_version_stage(owner, "M", 1, "Production", True)
    # Rolling Staging back would restore version 1, which now holds Production.
    kind, reason, metadata = fails(lambda: private.rollback_stage(editor, "M", "Staging"))
    assert (kind, reason, metadata["permission"]) == (
        ErrorKind.PERMISSION_DENIED,
        "PERMISSION_DENIED",
        "MANAGE",
    )
    assert private.get_model_version(owner, "M", 1).current_stage.value == "Production"


def test_groups_grants_and_the_default_level_combine(
    private: RegistryService, store: SqlRegistryStore, lineage: FakeLineage
) -> None:
    owner = as_user("owner")
    private.create_registered_model(owner, "G")
    member, outsider = as_user("ann", "ds"), as_user("bob", "other")
    assert fails(lambda: private.get_registered_model(member, "G"))[2] == {
        "permission": "READ",
        "resource": "registered_models/G",
    }
    private.set_registered_model_permission(owner, "G", "", "ds", Level.EDIT)
    # ann's earlier lookup is cached for at most ACCESS_CACHE_SECONDS; a new service has none.
    fresh = RegistryService(store, lineage, AccessPolicy(default_level=Level.NONE))
    fresh.set_registered_model_tag(member, "G", "k", "v")
    assert fails(lambda: fresh.get_registered_model(outsider, "G"))[0] == ErrorKind.PERMISSION_DENIED
    assert fails(lambda: fresh.get_registered_model(outsider, "Missing"))[1] == "REGISTERED_MODEL_NOT_FOUND"
    assert fresh.get_registered_model(as_user("root", admin=True), "G").name == "G"


def test_services_create_nothing_and_creators_get_the_policys_level(
    store: SqlRegistryStore, lineage: FakeLineage
) -> None:
    service = RegistryService(
        store, lineage, AccessPolicy(default_level=Level.NONE, creator_level=Level.NONE)
    )
    assert fails(lambda: service.create_registered_model(as_user("bot", service=True), "S"))[0] == (
        ErrorKind.PERMISSION_DENIED
    )
    service.create_registered_model(as_user("carol"), "C")
    assert service.list_registered_model_permissions(as_user("root", admin=True), "C").grants == ()
    assert (
        fails(lambda: service.get_registered_model(as_user("carol"), "C"))[0] == ErrorKind.PERMISSION_DENIED
    )


def test_access_control_off_checks_nothing(service: RegistryService, ctx: CallContext) -> None:
    service.create_registered_model(ctx, "Open")
    service.create_model_version(ctx, "Open", "s3://b/o")
    service.transition_model_version_stage(ctx, "Open", 1, "Production", True)
    assert service.list_registered_model_permissions(ctx, "Open").grants == ()  # no creator grant
