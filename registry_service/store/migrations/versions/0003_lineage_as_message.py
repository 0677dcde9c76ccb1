"""Store each version's lineage as the serialized Lineage message instead of eight columns.

Every read of a version returned its lineage, and decoding four JSON documents and rebuilding a
message from them per version dominated searches. One ``data`` column now holds the message's
bytes, which reads hand to the response as they are (see registry_service.lineage_codec). Rows of
earlier revisions are converted in place, in batches, so memory stays bounded on large
registries; the downgrade converts them back.

The message's wire format is frozen below as it was at this revision, written by hand: a
migration must not import application code (nor the generated code, which changes with the
protos), or an old revision would change meaning, or stop importing, as the application moves on.

Revision ID: 0003
Revises: 0002
"""

import struct
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLE = "model_version_lineage"
_BATCH = 1_000
_BLOB = sa.LargeBinary().with_variant(mysql.MEDIUMBLOB(), "mysql", "mariadb")
# The columns of revisions 0001-0002, dropped by this one.
_OLD_COLUMNS = (
    sa.Column("run_id", sa.String(length=64)),
    sa.Column("experiment_id", sa.String(length=64)),
    sa.Column("run_name", sa.String(length=250)),
    sa.Column("artifact_path", sa.Text()),
    sa.Column("params", sa.JSON()),
    sa.Column("metrics", sa.JSON()),
    sa.Column("run_tags", sa.JSON()),
    sa.Column("files", sa.JSON()),
)
_lineage = sa.table(
    _TABLE,
    sa.column("version_id", sa.Integer()),
    sa.column("data", sa.LargeBinary()),
    *(sa.column(column.name, column.type) for column in _OLD_COLUMNS),
)


def _batches(*columns: str) -> Iterator[Sequence[sa.Row[Any]]]:
    """All rows in version_id order, ``_BATCH`` at a time (keyset paging: no open cursor while updating)."""
    connection, last = op.get_bind(), -1
    while rows := connection.execute(
        sa.select(_lineage.c.version_id, *(_lineage.c[name] for name in columns))
        .where(_lineage.c.version_id > last)
        .order_by(_lineage.c.version_id)
        .limit(_BATCH)
    ).all():
        yield rows
        last = rows[-1].version_id


# The Lineage message of modelreg.registry.v1 at this revision, and its FileDigest:
#   Lineage: 1 run_id, 2 experiment_id, 3 run_name (string); 4 params (map<string, string>);
#            5 metrics (map<string, double>); 6 run_tags (map<string, string>);
#            7 artifact_path (string); 8 files (repeated FileDigest)
#   FileDigest: 1 path (string), 2 size (int64), 3 sha256 (string)
# The encoding is SerializeToString(deterministic=True)'s, byte for byte: fields in number order,
# proto3 defaults left out, map entries in sorted key order, each entry with its key and its value.
_VARINT, _FIXED64, _LENGTH, _FIXED32 = 0, 1, 2, 5
_STRINGS = {1: "run_id", 2: "experiment_id", 3: "run_name", 7: "artifact_path"}
_MAPS = {4: "params", 5: "metrics", 6: "run_tags"}
_METRICS, _FILES = 5, 8


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # int64: a negative value is sent as its two's complement (ten bytes)
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(number: int, wire_type: int, payload: bytes) -> bytes:
    length = _varint(len(payload)) if wire_type == _LENGTH else b""
    return _varint(number << 3 | wire_type) + length + payload


def _string(number: int, value: str) -> bytes:
    return _field(number, _LENGTH, value.encode()) if value else b""


def _upb_key_order(key: bytes) -> tuple[int, ...]:
    # The order of upb's deterministic serializer (the protobuf runtime the application used):
    # by the key's UTF-8 bytes, except that a key comes after the longer keys it is a prefix of.
    return (*key, 256)


def _map(number: int, entries: Mapping[str, Any], value: Callable[[Any], bytes]) -> bytes:
    items = sorted(
        ((key.encode(), item) for key, item in entries.items()), key=lambda kv: _upb_key_order(kv[0])
    )
    return b"".join(_field(number, _LENGTH, _field(1, _LENGTH, key) + value(item)) for key, item in items)


def _encode_lineage(
    *,
    run_id: str,
    experiment_id: str,
    run_name: str,
    artifact_path: str,
    params: Mapping[str, str],
    metrics: Mapping[str, float],
    run_tags: Mapping[str, str],
    files: Sequence[tuple[str, int, str]],
) -> bytes:
    def text(value: str) -> bytes:
        return _field(2, _LENGTH, value.encode())

    def double(value: float) -> bytes:
        return _field(2, _FIXED64, struct.pack("<d", value))

    def digest(path: str, size: int, sha256: str) -> bytes:
        size_field = _field(2, _VARINT, _varint(size)) if size else b""
        return _string(1, path) + size_field + _string(3, sha256)

    return b"".join(
        [
            _string(1, run_id),
            _string(2, experiment_id),
            _string(3, run_name),
            _map(4, params, text),
            _map(_METRICS, metrics, double),
            _map(6, run_tags, text),
            _string(7, artifact_path),
            *(_field(_FILES, _LENGTH, digest(*file)) for file in files),
        ]
    )


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data):
            raise ValueError("truncated Lineage message")
        byte = data[pos]
        value |= (byte & 0x7F) << shift
        pos, shift = pos + 1, shift + 7
        if not byte & 0x80:
            return value, pos


def _fields(data: bytes) -> Iterator[tuple[int, int | bytes]]:
    """(field number, value) in wire order: an int for a varint, the raw bytes for the others."""
    pos = 0
    while pos < len(data):
        key, pos = _read_varint(data, pos)
        number, wire_type = key >> 3, key & 7
        if wire_type == _VARINT:
            varint, pos = _read_varint(data, pos)
            yield number, varint
            continue
        if wire_type == _LENGTH:
            size, pos = _read_varint(data, pos)
        elif wire_type in (_FIXED64, _FIXED32):
            size = 8 if wire_type == _FIXED64 else 4
        else:
            raise ValueError(f"wire type {wire_type} in a Lineage message")
        if pos + size > len(data):
            raise ValueError("truncated Lineage message")
        yield number, data[pos : pos + size]
        pos += size


def _payload(value: int | bytes) -> bytes:
    if isinstance(value, int):
        raise ValueError("a varint where the Lineage message has a string, bytes or double")
    return value


def _int64(value: int | bytes) -> int:
    if isinstance(value, bytes):
        raise ValueError("bytes where the Lineage message has an int64")
    return value - (1 << 64) if value >> 63 else value


def _decode_lineage(data: bytes) -> dict[str, Any]:
    """The message's fields by name: the last occurrence of a field wins, unknown fields are skipped."""
    lineage: dict[str, Any] = {name: "" for name in _STRINGS.values()}
    lineage.update({name: {} for name in _MAPS.values()}, files=[])
    for number, value in _fields(data):
        if number in _STRINGS:
            lineage[_STRINGS[number]] = _payload(value).decode()
        elif number in _MAPS:
            entry = dict(_fields(_payload(value)))
            key, item = _payload(entry.get(1, b"")).decode(), _payload(entry.get(2, b""))
            if number == _METRICS:
                lineage["metrics"][key] = struct.unpack("<d", item)[0] if item else 0.0
            else:
                lineage[_MAPS[number]][key] = item.decode()
        elif number == _FILES:
            digest = dict(_fields(_payload(value)))
            path, sha256 = _payload(digest.get(1, b"")).decode(), _payload(digest.get(3, b"")).decode()
            lineage["files"].append((path, _int64(digest.get(2, 0)), sha256))
    return lineage


def _encode(row: sa.Row[Any]) -> bytes:
    # Metrics were stored as repr(float) (JSON has no NaN/Infinity); files as [path, size, sha256].
    return _encode_lineage(
        run_id=row.run_id,
        experiment_id=row.experiment_id,
        run_name=row.run_name,
        artifact_path=row.artifact_path,
        params=row.params,
        metrics={key: float(value) for key, value in row.metrics.items()},
        run_tags=row.run_tags,
        files=[(path, int(size), sha256) for path, size, sha256 in row.files],
    )


def _decode(row: sa.Row[Any]) -> dict[str, Any]:
    lineage = _decode_lineage(row.data)
    return {
        **lineage,
        "metrics": {key: repr(value) for key, value in lineage["metrics"].items()},
        "files": [list(file) for file in lineage["files"]],
    }


def _update(values: list[dict[str, Any]]) -> None:
    # No .values(): the SET clause comes from the keys of the parameter sets (executemany).
    statement = sa.update(_lineage).where(_lineage.c.version_id == sa.bindparam("key"))
    op.get_bind().execute(statement, values)


def upgrade() -> None:
    with op.batch_alter_table(_TABLE) as batch_op:
        batch_op.add_column(sa.Column("data", _BLOB, nullable=True))
    for rows in _batches(*(column.name for column in _OLD_COLUMNS)):
        _update([{"key": row.version_id, "data": _encode(row)} for row in rows])
    with op.batch_alter_table(_TABLE) as batch_op:
        batch_op.alter_column("data", existing_type=_BLOB, nullable=False)
        for column in _OLD_COLUMNS:
            batch_op.drop_column(column.name)


def downgrade() -> None:
    with op.batch_alter_table(_TABLE) as batch_op:
        for column in _OLD_COLUMNS:
            batch_op.add_column(sa.Column(column.name, column.type, nullable=True))
    for rows in _batches("data"):
        _update([{"key": row.version_id, **_decode(row)} for row in rows])
    with op.batch_alter_table(_TABLE) as batch_op:
        for column in _OLD_COLUMNS:
            batch_op.alter_column(column.name, existing_type=column.type, nullable=False)
        batch_op.drop_column("data")
