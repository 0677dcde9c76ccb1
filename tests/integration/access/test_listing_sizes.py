"""Listings whose rows carry the longest names a user may have stay within the response budget:
a page of versions registered by a user named with 128 four-byte letters is cut by bytes, and
the permission listings, which answer every grant at once, by the cap on grants."""

from __future__ import annotations

import sqlite3
from functools import partial
from pathlib import Path

import grpc
import pytest

from modelreg.exceptions import ModelregError
from modelreg.registry.v1 import registry_pb2 as rpb
from modelreg.registry.v1.registry_pb2_grpc import RegistryServiceStub
from modelreg_server.access.policy import MAX_GRANTS, Level
from modelreg_server.bootstrap import MAX_MESSAGE_BYTES
from modelreg_server.pagination import RESPONSE_BYTE_BUDGET
from registry_service.domain.service import VERSIONS_PAGE_MAX

from .conftest import BOOTSTRAP, SecuredServices

# The longest user name: 128 letters (Deseret), 512 bytes of UTF-8.
LONG_USER = "\U00010400" * 128
# Versions of ~580 bytes each on the wire, most of it the user's name: ~5 MB in all.
VERSIONS = 9000


def test_a_version_page_counts_who_registered_each_version(secured: SecuredServices) -> None:
    token = secured.user_token(LONG_USER)
    with secured.client(token) as client:
        client.registry.create_registered_model("by-long-name")
        client.registry.create_model_version("by-long-name", "s3://bucket/m")
    # The other versions are copies of that one, made in the database: the same rows the
    # registry would write for this user, thousands of times faster.
    registry_db = secured.services.artifact_root.parent / "registry.db"
    with sqlite3.connect(registry_db) as db:
        columns = (
            "model_id, creation_time, last_updated_time, current_stage, description, source, run_id, "
            "status, status_message, user_id"
        )
        db.execute(
            f"WITH RECURSIVE n(v) AS (SELECT 2 UNION ALL SELECT v + 1 FROM n WHERE v < {VERSIONS}) "
            f"INSERT INTO model_versions (version, {columns}) SELECT n.v, {columns} FROM model_versions, n "
            "WHERE version = 1"
        )
    options = [("grpc.max_receive_message_length", MAX_MESSAGE_BYTES)]
    with grpc.insecure_channel(secured.services.registry, options=options) as channel:
        response = RegistryServiceStub(channel).SearchModelVersions(
            rpb.SearchModelVersionsRequest(filter="name = 'by-long-name'", page_size=VERSIONS_PAGE_MAX),
            metadata=[("authorization", f"Bearer {token}")],
        )
    assert {v.user_id for v in response.model_versions} == {LONG_USER}
    rows, size = len(response.model_versions), response.ByteSize()
    assert 0 < rows < VERSIONS and response.next_page_token, (rows, size)
    assert size <= RESPONSE_BYTE_BUDGET


def _fill(database: Path, table: str, owner_column: str, owner: int, count: int) -> None:
    """``count`` user grants of READ on ``owner``, named g000000..., made in the database: the rows
    SetExperimentPermission (SetRegisteredModelPermission) writes, hundreds of times faster."""
    with sqlite3.connect(database) as db:
        db.execute(
            f"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {count}) "
            f"INSERT INTO {table} ({owner_column}, subject_kind, subject_name, level, granted_by, granted_at) "
            f"SELECT {owner}, 'user', printf('g%06d', i), {int(Level.READ)}, 'admin', 0 FROM n"
        )


def test_an_experiment_and_a_model_hold_at_most_max_grants(secured: SecuredServices) -> None:
    root = secured.services.artifact_root.parent
    with secured.client(BOOTSTRAP) as admin:
        experiment_id = admin.create_experiment("granted-widely")
        admin.registry.create_registered_model("granted-widely")
        with sqlite3.connect(root / "registry.db") as db:
            model_id = db.execute(
                "SELECT id FROM registered_models WHERE name = 'granted-widely'"
            ).fetchone()[0]
        held = len(admin.list_experiment_permissions(experiment_id)[0])
        _fill(
            root / "tracking.db",
            "experiment_permissions",
            "experiment_id",
            int(experiment_id),
            MAX_GRANTS - 1 - held,
        )
        held = len(admin.list_registered_model_permissions("granted-widely")[0])
        _fill(root / "registry.db", "model_permissions", "model_id", model_id, MAX_GRANTS - 1 - held)
        grant_experiment = partial(admin.set_experiment_permission, experiment_id)
        grant_model = partial(admin.set_registered_model_permission, "granted-widely")
        for grant, listing in (
            (grant_experiment, lambda: admin.list_experiment_permissions(experiment_id)[0]),
            (grant_model, lambda: admin.list_registered_model_permissions("granted-widely")[0]),
        ):
            grant("EDIT", user=LONG_USER)  # the last place
            with pytest.raises(ModelregError) as refused:
                grant("READ", group="one-too-many")
            assert (refused.value.code, refused.value.reason) == ("RESOURCE_EXHAUSTED", "TOO_MANY_GRANTS")
            assert refused.value.metadata == {"field": "principal", "limit": str(MAX_GRANTS)}
            grant("MANAGE", user=LONG_USER)  # a grant replaced is not a new one
            grants = listing()
            assert len(grants) == MAX_GRANTS and "one-too-many" not in {g.group for g in grants}
