"""The stored form of a version's lineage: the serialized ``modelreg.registry.v1.Lineage`` message.

Why the wire form, and why here. Lineage is written once and read with every version a call
returns: a search returns up to thousands. Stored as JSON, each read decoded four JSON documents,
built a ``LineageRecord`` and rebuilt a proto from it per version, which dominated search time.
Stored as the message's own bytes, a read is one C-level parse straight into the response
(``api.convert``), and domain and store only carry the bytes (``EncodedLineage``) without looking
inside. The proto's field numbers are a compatibility contract already, so the storage format
inherits the same rules for change (add fields, never renumber).

This module is the one place outside ``api/`` that touches generated code, and only this message:
the lineage adapter (``registry_service.lineage``) encodes what it learned from the tracking
service, migration 0003 converts the JSON rows of earlier revisions, and tests decode.
"""

from __future__ import annotations

from modelreg.registry.v1 import registry_pb2 as pb
from registry_service.domain.entities import EncodedLineage, FileDigest, LineageRecord


def encode(record: LineageRecord) -> EncodedLineage:
    """The record as Lineage message bytes; deterministic (maps sorted), so equal records store equally."""
    message = pb.Lineage(
        run_id=record.run_id,
        experiment_id=record.experiment_id,
        run_name=record.run_name,
        params=record.params,
        metrics=record.metrics,
        run_tags=record.run_tags,
        artifact_path=record.artifact_path,
        files=[pb.FileDigest(path=f.path, size=f.size, sha256=f.sha256) for f in record.files],
    )
    return EncodedLineage(message.SerializeToString(deterministic=True))


def decode(data: EncodedLineage) -> LineageRecord:
    message = pb.Lineage.FromString(data)
    return LineageRecord(
        run_id=message.run_id,
        experiment_id=message.experiment_id,
        run_name=message.run_name,
        artifact_path=message.artifact_path,
        params=dict(message.params),
        metrics=dict(message.metrics),
        run_tags=dict(message.run_tags),
        files=tuple(FileDigest(f.path, f.size, f.sha256) for f in message.files),
    )
