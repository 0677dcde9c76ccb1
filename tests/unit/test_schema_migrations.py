"""The migrations build exactly the tables the schemas describe, on every backend (the registry's
are compared in tests/unit/registry too), and on MySQL/MariaDB every column a schema gives a
character set has it, whatever the database's default."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from modelreg_server.access import schema as access_schema
from modelreg_server.access.setup import MIGRATIONS_DIR as ACCESS_MIGRATIONS
from modelreg_server.db import create_db_engine, upgrade
from registry_service.store import MIGRATIONS_DIR as REGISTRY_MIGRATIONS
from registry_service.store import schema as registry_schema
from tests.conftest import Backend
from tracking_service.store import MIGRATIONS as TRACKING_MIGRATIONS
from tracking_service.store import models as tracking_models

SCHEMAS = [
    pytest.param(ACCESS_MIGRATIONS, access_schema.Base.metadata, id="access"),
    pytest.param(TRACKING_MIGRATIONS, tracking_models.Base.metadata, id="tracking"),
    pytest.param(REGISTRY_MIGRATIONS, registry_schema.Base.metadata, id="registry"),
]
_CHARSET = re.compile(r"CHARACTER SET (\w+)(?: COLLATE (\w+))?")


@pytest.mark.parametrize(("migrations", "metadata"), SCHEMAS[:2])
def test_migrations_match_the_schema(backend: Backend, migrations: str, metadata: sa.MetaData) -> None:
    engine = create_db_engine(backend.url)
    upgrade(engine, migrations)
    with engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), metadata) == []
    engine.dispose()


@pytest.mark.mysql
@pytest.mark.parametrize(("migrations", "metadata"), SCHEMAS)
def test_text_columns_have_the_schemas_character_set_on_a_latin1_database(
    latin1_databases: Callable[[], str], migrations: str, metadata: sa.MetaData
) -> None:
    engine = create_db_engine(latin1_databases())
    upgrade(engine, migrations)
    declared = {}
    for table in metadata.tables.values():
        for column in table.columns:
            found = _CHARSET.search(column.type.compile(dialect=engine.dialect))
            if found is not None:
                declared[table.name, column.name] = found.groups()
    with engine.connect() as connection:
        actual = {
            (table, column): (charset, collation)
            for table, column, charset, collation in connection.execute(
                sa.text(
                    "SELECT table_name, column_name, character_set_name, collation_name"
                    " FROM information_schema.columns WHERE table_schema = DATABASE()"
                )
            )
        }
    engine.dispose()
    assert declared  # every schema has columns of caller-sent text
    assert {key: actual[key] for key in declared} == declared
