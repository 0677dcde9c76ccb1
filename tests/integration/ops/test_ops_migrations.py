"""Upgrading live databases: from each service's first revision to head with data in it, from two
processes at once, and the servers' refusal to start on a schema that is not at head.

Rows are written at the first revision through table constructs of that revision, not today's ORM
models, as a server of that release would have written them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

from modelreg_server.db import SchemaOutOfDate, alembic_config, create_db_engine, current_revision, upgrade
from registry_service import config as registry_config
from registry_service import server as registry_server
from registry_service.store import MIGRATIONS_DIR as REGISTRY_MIGRATIONS
from registry_service.store.sql import SqlRegistryStore
from tests.conftest import Backend
from tracking_service import config as tracking_config
from tracking_service import server as tracking_server
from tracking_service.domain.entities import ViewType
from tracking_service.domain.filters import RUN_SEARCH, parse_filter
from tracking_service.store import MIGRATIONS as TRACKING_MIGRATIONS
from tracking_service.store.sql import SqlTrackingStore

ROOT = Path(__file__).resolve().parents[3]
T0 = 1_700_000_000_000
RUN_ID = "a" * 32


def _revisions(script_location: str) -> list[str]:
    """Revision ids from the first to head."""
    scripts = ScriptDirectory.from_config(alembic_config(script_location, "sqlite://"))
    return [revision.revision for revision in reversed(list(scripts.walk_revisions()))]


def _table(name: str, *columns: str) -> sa.TableClause:
    return sa.table(name, *(sa.column(column) for column in columns))


def _tracking_rows_at_first_revision(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(
            sa.insert(
                _table(
                    "experiments",
                    "experiment_id",
                    "name",
                    "artifact_location",
                    "lifecycle_stage",
                    "creation_time",
                    "last_update_time",
                )
            ),
            [
                {
                    "experiment_id": 7,
                    "name": "legacy",
                    "artifact_location": "file:///a/7",
                    "lifecycle_stage": "active",
                    "creation_time": T0,
                    "last_update_time": T0,
                }
            ],
        )
        connection.execute(
            sa.insert(
                _table(
                    "runs",
                    "run_id",
                    "experiment_id",
                    "run_name",
                    "status",
                    "start_time",
                    "end_time",
                    "artifact_uri",
                    "lifecycle_stage",
                )
            ),
            [
                {
                    "run_id": RUN_ID,
                    "experiment_id": 7,
                    "run_name": "legacy-run",
                    "status": "FINISHED",
                    "start_time": T0,
                    "end_time": T0 + 1,
                    "artifact_uri": f"file:///a/7/{RUN_ID}/artifacts",
                    "lifecycle_stage": "active",
                }
            ],
        )
        connection.execute(
            sa.insert(_table("params", "run_id", "key", "value")),
            [{"run_id": RUN_ID, "key": "alpha", "value": "0.5"}],
        )
        point = {
            "run_id": RUN_ID,
            "key": "rmse",
            "value": 1.25,
            "is_nan": False,
            "is_inf": False,
            "timestamp": T0,
            "step": 0,
        }
        metric_columns = ("run_id", "key", "value", "is_nan", "is_inf", "timestamp", "step")
        connection.execute(sa.insert(_table("metrics", *metric_columns)), [point])
        connection.execute(sa.insert(_table("latest_metrics", *metric_columns)), [point])


def _tracking_data_survived(engine: Engine) -> None:
    store = SqlTrackingStore(engine, "file:///a")
    run = store.get_run(RUN_ID)
    assert (run.info.run_name, run.info.experiment_id) == ("legacy-run", "7")
    assert {(p.key, p.value) for p in run.data.params} == {("alpha", "0.5")}
    assert {(m.key, m.value) for m in run.data.metrics} == {("rmse", 1.25)}
    by_name = parse_filter("attributes.run_name = 'legacy-run'", RUN_SEARCH)
    found = store.search_runs([7], by_name, [], ViewType.ACTIVE_ONLY, limit=10, offset=0)
    assert [r.info.run_id for r in found] == [RUN_ID]
    indexes = {index["name"] for index in sa.inspect(engine).get_indexes("runs")}
    assert "ix_runs_experiment_id_run_name" in indexes


def _registry_rows_at_first_revision(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(
            sa.insert(
                _table(
                    "registered_models",
                    "id",
                    "name",
                    "description",
                    "creation_time",
                    "last_updated_time",
                    "next_version",
                )
            ),
            [
                {
                    "id": 3,
                    "name": "Legacy",
                    "description": "",
                    "creation_time": T0,
                    "last_updated_time": T0,
                    "next_version": 2,
                }
            ],
        )
        connection.execute(
            sa.insert(
                _table(
                    "model_versions",
                    "id",
                    "model_id",
                    "version",
                    "creation_time",
                    "last_updated_time",
                    "current_stage",
                    "description",
                    "source",
                    "run_id",
                    "status",
                    "status_message",
                    "user_id",
                )
            ),
            [
                {
                    "id": 5,
                    "model_id": 3,
                    "version": 1,
                    "creation_time": T0,
                    "last_updated_time": T0,
                    "current_stage": "Production",
                    "description": "",
                    "source": "s3://b/model",
                    "run_id": "",
                    "status": "READY",
                    "status_message": "",
                    "user_id": "alice",
                }
            ],
        )
        event_columns = (
            "model_id",
            "name",
            "version",
            "action",
            "from_value",
            "to_value",
            "actor",
            "time",
            "comment",
        )
        connection.execute(
            sa.insert(_table("model_events", *event_columns)),
            [
                {
                    "model_id": 3,
                    "name": "Legacy",
                    "version": 0,
                    "action": "MODEL_CREATED",
                    "from_value": "",
                    "to_value": "",
                    "actor": "alice",
                    "time": T0,
                    "comment": "",
                },
                {
                    "model_id": 3,
                    "name": "Legacy",
                    "version": 1,
                    "action": "VERSION_CREATED",
                    "from_value": "",
                    "to_value": "",
                    "actor": "alice",
                    "time": T0,
                    "comment": "",
                },
            ],
        )


def _registry_data_survived(engine: Engine) -> None:
    store = SqlRegistryStore(engine)
    version = store.get_version("Legacy", 1)
    assert (version.current_stage.value, version.user_id, version.source) == (
        "Production",
        "alice",
        "s3://b/model",
    )
    events = store.list_events("Legacy", 0, 10, 0)
    assert [(e.action.value, e.version, e.actor) for e in events] == [
        ("MODEL_CREATED", 0, "alice"),
        ("VERSION_CREATED", 1, "alice"),
    ]
    with engine.connect() as connection:
        request_ids = connection.execute(sa.text("SELECT request_id FROM model_events")).scalars().all()
    assert request_ids == ["", ""]  # events older than the column carry no id


@dataclass(frozen=True)
class Service:
    name: str
    migrations: str
    env_var: str
    write_first_revision: Callable[[Engine], None]
    check_head: Callable[[Engine], None]


SERVICES = [
    pytest.param(
        Service(
            "tracking_service",
            TRACKING_MIGRATIONS,
            "MODELREG_TRACKING_DATABASE_URL",
            _tracking_rows_at_first_revision,
            _tracking_data_survived,
        ),
        id="tracking",
    ),
    pytest.param(
        Service(
            "registry_service",
            REGISTRY_MIGRATIONS,
            "MODELREG_REGISTRY_DATABASE_URL",
            _registry_rows_at_first_revision,
            _registry_data_survived,
        ),
        id="registry",
    ),
]


def _db_upgrade(service: Service, url: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", service.name, "db", "upgrade"],
        env={**os.environ, service.env_var: url, "MODELREG_LOG_LEVEL": "WARNING"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )


@pytest.mark.parametrize("service", SERVICES)
def test_first_revision_with_data_upgrades_to_head(service: Service, backend: Backend) -> None:
    revisions = _revisions(service.migrations)
    assert len(revisions) >= 2, "the upgrade path needs at least two revisions to mean anything"
    engine = create_db_engine(backend.url)
    try:
        upgrade(engine, service.migrations, revisions[0])
        assert current_revision(engine) == revisions[0]
        service.write_first_revision(engine)

        # Two containers running the migration step at once: both succeed, the work happens once.
        racing = [_db_upgrade(service, backend.url) for _ in range(2)]
        for process in racing:
            _, stderr = process.communicate(timeout=120)
            assert process.returncode == 0, stderr.decode()
        again = _db_upgrade(service, backend.url)
        assert again.wait(timeout=120) == 0

        assert current_revision(engine) == revisions[-1]
        with engine.connect() as connection:
            assert connection.execute(sa.text("SELECT count(*) FROM alembic_version")).scalar_one() == 1
        service.check_head(engine)
    finally:
        engine.dispose()


def test_tracking_server_refuses_a_schema_behind_head(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'tracking.db'}"
    engine = create_db_engine(url)
    upgrade(engine, TRACKING_MIGRATIONS, _revisions(TRACKING_MIGRATIONS)[0])
    settings = tracking_config.Settings(
        host="127.0.0.1", port=0, database_url=url, artifact_root=(tmp_path / "a").as_uri()
    )
    with pytest.raises(SchemaOutOfDate, match="python -m tracking_service db upgrade"):
        tracking_server.create_server(settings)
    assert (
        current_revision(engine) == _revisions(TRACKING_MIGRATIONS)[0]
    )  # nothing was migrated behind the operator's back


def test_registry_server_refuses_a_schema_behind_head(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    engine = create_db_engine(url)
    upgrade(engine, REGISTRY_MIGRATIONS, _revisions(REGISTRY_MIGRATIONS)[0])
    settings = registry_config.Settings(host="127.0.0.1", port=0, database_url=url)
    with pytest.raises(SchemaOutOfDate, match="python -m registry_service db upgrade"):
        registry_server.create_server(settings)
    assert current_revision(engine) == _revisions(REGISTRY_MIGRATIONS)[0]
