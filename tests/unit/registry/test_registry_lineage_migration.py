"""Migration 0003: lineage rows written as JSON columns become Lineage message bytes, and back.

Rows are written at revision 0002 through table constructs of that revision, as a server of that
release would have written them (metrics as repr(float), files as [path, size, sha256]).
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command

from modelreg.registry.v1 import registry_pb2 as pb
from modelreg_server.db import alembic_config, create_db_engine, upgrade
from registry_service import lineage_codec
from registry_service.store import MIGRATIONS_DIR
from registry_service.store.sql import SqlRegistryStore
from tests.conftest import Backend

RUN = "c" * 32
JSON_LINEAGE: dict[str, Any] = {
    "run_id": RUN,
    "experiment_id": "7",
    "run_name": "train",
    "artifact_path": "model",
    "params": {"alpha": "0.5"},
    "metrics": {"rmse": repr(0.25), "nan": repr(float("nan")), "inf": repr(float("inf"))},
    "run_tags": {"git": "abc123"},
    "files": [["MLmodel", 12, "ab" * 32], ["sub/w.bin", 4096, "cd" * 32]],
}


def _table(name: str, *columns: str, **typed: sa.types.TypeEngine[Any]) -> sa.TableClause:
    return sa.table(name, *(sa.column(c) for c in columns), *(sa.column(c, t) for c, t in typed.items()))


def _write_at_0002(engine: sa.Engine, versions: int) -> None:
    with engine.begin() as connection:
        connection.execute(
            sa.insert(
                _table("registered_models", "id", "name", "description", "creation_time", "last_updated_time")
            ),
            [{"id": 1, "name": "Old", "description": "", "creation_time": 1, "last_updated_time": 1}],
        )
        version_columns = ("id", "model_id", "version", "creation_time", "last_updated_time", "current_stage")
        text_columns = ("description", "source", "run_id", "status", "status_message", "user_id")
        connection.execute(
            sa.insert(_table("model_versions", *version_columns, *text_columns)),
            [
                {
                    "id": number,
                    "model_id": 1,
                    "version": number,
                    "creation_time": 1,
                    "last_updated_time": 1,
                    "current_stage": "None",
                    "description": "",
                    "source": f"runs:/{RUN}/model",
                    "run_id": RUN,
                    "status": "READY",
                    "status_message": "",
                    "user_id": "alice",
                }
                for number in range(1, versions + 1)
            ],
        )
        json_columns = {name: sa.JSON() for name in ("params", "metrics", "run_tags", "files")}
        lineage = _table("model_version_lineage", "version_id", *list(JSON_LINEAGE)[:4], **json_columns)
        connection.execute(
            sa.insert(lineage), [{"version_id": number, **JSON_LINEAGE} for number in range(1, versions + 1)]
        )


def test_upgrade_converts_json_lineage_and_downgrade_restores_it(backend: Backend) -> None:
    engine = create_db_engine(backend.url)
    upgrade(engine, MIGRATIONS_DIR, "0002")
    # More rows than one conversion batch, so the keyset paging is exercised.
    _write_at_0002(engine, versions=1_005)
    upgrade(engine, MIGRATIONS_DIR)

    store = SqlRegistryStore(engine)
    for number in (1, 1_005):
        stored = store.get_version("Old", number).lineage
        assert stored is not None
        record = lineage_codec.decode(stored)
        assert (record.run_id, record.experiment_id, record.run_name, record.artifact_path) == (
            RUN,
            "7",
            "train",
            "model",
        )
        assert (dict(record.params), dict(record.run_tags)) == ({"alpha": "0.5"}, {"git": "abc123"})
        assert record.metrics["rmse"] == 0.25 and math.isnan(record.metrics["nan"])
        assert record.metrics["inf"] == math.inf
        assert [(f.path, f.size, f.sha256) for f in record.files] == [tuple(f) for f in JSON_LINEAGE["files"]]
    columns = {column["name"] for column in sa.inspect(engine).get_columns("model_version_lineage")}
    assert columns == {"version_id", "data"}

    command.downgrade(alembic_config(MIGRATIONS_DIR, backend.url), "0002")
    json_columns = {name: sa.JSON() for name in ("params", "metrics", "run_tags", "files")}
    lineage = _table("model_version_lineage", "version_id", *list(JSON_LINEAGE)[:4], **json_columns)
    with engine.connect() as connection:
        restored = connection.execute(sa.select(lineage).order_by(lineage.c.version_id)).all()
    assert len(restored) == 1_005
    row = dict(restored[-1]._mapping)
    assert row.pop("version_id") == 1_005
    metrics = row.pop("metrics")
    assert row == {key: value for key, value in JSON_LINEAGE.items() if key != "metrics"}
    assert (metrics["rmse"], metrics["inf"], metrics["nan"]) == (repr(0.25), repr(math.inf), repr(math.nan))
    engine.dispose()


def _migration_0003() -> ModuleType:
    """Revision 0003 as Alembic loads it: by file path (its name starts with a digit)."""
    path = Path(MIGRATIONS_DIR) / "versions" / "0003_lineage_as_message.py"
    spec = importlib.util.spec_from_file_location("migration_0003", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


LINEAGES: list[dict[str, Any]] = [
    {},
    {
        "run_id": RUN,
        "experiment_id": "7",
        "run_name": "train",
        "artifact_path": "model",
        "params": {"b": "2", "ab": "3", "a": "1", "é": "ü", "": "", "z" * 200: "long " * 100},
        "metrics": {
            "rmse": 0.25,
            "nan": math.nan,
            "inf": math.inf,
            "-inf": -math.inf,
            "zero": 0.0,
            "neg": -0.0,
        },
        "run_tags": {"git": "abc123", "empty": ""},
        "files": [("MLmodel", 12, "ab" * 32), ("", 0, ""), ("big.bin", 2**40, "cd" * 32), ("odd", -1, "x")],
    },
    {"run_name": "名前", "metrics": {"m": 1e308}, "files": [("only-path", 0, "")]},
]


def _message(lineage: dict[str, Any]) -> pb.Lineage:
    files = [pb.FileDigest(path=p, size=s, sha256=h) for p, s, h in lineage.get("files", [])]
    return pb.Lineage(**{k: v for k, v in lineage.items() if k != "files"}, files=files)


def _full(lineage: dict[str, Any]) -> dict[str, Any]:
    empty = dict.fromkeys(("run_id", "experiment_id", "run_name", "artifact_path"), "")
    return {**empty, "params": {}, "metrics": {}, "run_tags": {}, "files": [], **lineage}


@pytest.mark.parametrize("lineage", LINEAGES)
def test_the_frozen_wire_format_is_the_lineage_message(lineage: dict[str, Any]) -> None:
    """0003 carries its own copy of the Lineage encoding; it must stay the message's, byte for byte."""
    migration = _migration_0003()
    expected = _message(lineage).SerializeToString(deterministic=True)
    assert migration._encode_lineage(**_full(lineage)) == expected

    # Decoding: the deterministic bytes, the default (unsorted) ones, and a field a later release added.
    expected_fields = _comparable(_full(lineage))
    for data in (expected, _message(lineage).SerializeToString(), expected + b"\xf8\x06\x01"):
        assert _comparable(migration._decode_lineage(data)) == expected_fields


def _comparable(lineage: dict[str, Any]) -> dict[str, Any]:
    # NaN != NaN: metrics compare by repr.
    metrics = {key: repr(value) for key, value in lineage["metrics"].items()}
    return {**lineage, "metrics": metrics, "files": list(lineage["files"])}
