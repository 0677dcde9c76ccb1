"""Test doubles of the registry suites: a fake lineage port and a step clock."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from modelreg_server.context import CallContext
from modelreg_server.errors import ServiceError
from registry_service import lineage_codec
from registry_service.domain import errors
from registry_service.domain.entities import EncodedLineage, FileDigest, LineageRecord


class Backend(Protocol):
    """The shape of tests/conftest.py's ``backend`` fixture value."""

    name: str
    url: str


class Clock:
    """A ms clock that moves 10 ms per reading, so every transaction has its own instant."""

    def __init__(self, start: int = 1_700_000_000_000) -> None:
        self.now = start

    def __call__(self) -> int:
        self.now += 10
        return self.now


@dataclass
class FakeLineage:
    """LineagePort double: answers from ``runs``; raises ``failure`` when set."""

    runs: dict[str, LineageRecord] = field(default_factory=dict)
    failure: ServiceError | None = None
    calls: list[tuple[str, str]] = field(default_factory=list)

    def add_run(self, run_id: str, path: str = "model") -> LineageRecord:
        record = LineageRecord(
            run_id=run_id,
            experiment_id="1",
            run_name=f"run-{run_id[:4]}",
            artifact_path=path,
            params={"alpha": "0.5"},
            metrics={"rmse": 0.25, "nan": float("nan")},
            run_tags={"git": "abc123"},
            files=(FileDigest("model.pkl", 10, "ab" * 32),),
        )
        self.runs[run_id] = record
        return record

    def fetch(self, ctx: CallContext, run_id: str, source: str) -> EncodedLineage:
        self.calls.append((run_id, source))
        if self.failure is not None:
            raise self.failure
        if run_id not in self.runs:
            raise errors.RunNotFound(run_id)
        return lineage_codec.encode(self.runs[run_id])

    def decode(self, lineage: EncodedLineage) -> LineageRecord:
        return lineage_codec.decode(lineage)
