"""What the registry needs from the outside world, as Protocols the service depends on."""

from __future__ import annotations

from typing import Protocol

from modelreg_server.context import CallContext
from registry_service.domain.entities import EncodedLineage, LineageRecord, ModelFile


class LineagePort(Protocol):
    """Asks the tracking service about the run behind a version.

    ``fetch`` validates that the run exists and is not deleted and that ``source`` names an
    artifact under it, and returns what the registry stores as lineage, already encoded (the
    domain never looks inside; see registry_service.lineage_codec). It raises the domain
    errors: RunNotFound, RunDeleted, SourceArtifactNotFound (FAILED_PRECONDITION), InvalidSource
    (INVALID_ARGUMENT) and TrackingUnavailable (UNAVAILABLE). It never touches the registry's
    database, so the service calls it before opening a transaction. The tracking calls carry
    ``ctx.request_id``, so both services log one id, and act for ``ctx.principal`` (when access
    control is on): registering from a run needs READ on its experiment.
    """

    def fetch(self, ctx: CallContext, run_id: str, source: str) -> EncodedLineage: ...

    def open_file(self, ctx: CallContext, lineage: EncodedLineage, path: str) -> ModelFile | None:
        """The registered file ``path`` of a version with this lineage (None when ``path`` is not
        one of its registered files), streamed from the run's artifacts as the registry itself:
        the caller's READ on the model was checked, no grant on the experiment is needed. Errors
        of the stream: SourceArtifactNotFound, TrackingUnavailable."""
        ...

    def decode(self, lineage: EncodedLineage) -> LineageRecord:
        """The record a stored lineage holds (what promotion gates evaluate)."""
        ...
