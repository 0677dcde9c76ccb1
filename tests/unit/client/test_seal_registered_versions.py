"""Client.seal_registered_versions against fake services: every page is sealed, a version's own
failure is reported and the rest go on, a failure of the service or the credentials stops it."""

from __future__ import annotations

import pytest

from modelreg import Client, exceptions
from modelreg._grpc import Pager
from modelreg.entities import FileInfo, Lineage, ModelVersion, VersionSeal


def version(number: int, run_id: str | None) -> ModelVersion:
    lineage = None
    if run_id is not None:
        lineage = Lineage(run_id, "1", "run", {}, {}, {}, "model", ())
    return ModelVersion("M", number, 0, 0, "None", "", "src", run_id, "READY", "", lineage=lineage)


def client_over(versions: list[ModelVersion], failures: dict[str, exceptions.ModelregError]) -> Client:
    """A client whose search serves ``versions`` two a page and whose sealing raises
    ``failures[run_id]`` or answers one file."""
    client = Client("127.0.0.1:1", "127.0.0.1:1")  # channels connect lazily: nothing is dialled

    def search(*_: object, include_lineage: bool = False) -> Pager[ModelVersion]:
        assert include_lineage

        def fetch(token: str, _: int) -> tuple[list[ModelVersion], str]:
            start = int(token or 0)
            return versions[start : start + 2], str(start + 2) if start + 2 < len(versions) else ""

        return Pager(fetch)

    def seal(run_id: str, path: str) -> list[FileInfo]:
        if run_id in failures:
            raise failures[run_id]
        return [FileInfo(f"{path}/model.bin", False, 1, "0" * 64)]

    client.registry.search_model_versions = search  # type: ignore[method-assign,assignment]
    client.tracking.seal_artifacts = seal  # type: ignore[method-assign]
    return client


def test_each_version_is_reported_and_failures_do_not_stop_the_rest() -> None:
    failures: dict[str, exceptions.ModelregError] = {
        "gone": exceptions.NotFound("no artifact", code="NOT_FOUND", reason="ARTIFACT_NOT_FOUND"),
        "theirs": exceptions.PermissionDenied("needs EDIT", code="PERMISSION_DENIED"),
    }
    versions = [
        version(5, "ok"),
        version(4, "gone"),
        version(3, None),
        version(2, "theirs"),
        version(1, "ok"),
    ]
    with client_over(versions, failures) as client:
        results = client.seal_registered_versions()
    assert results == [
        VersionSeal("M", 5, "ok", "model", "SEALED", files=1),
        VersionSeal("M", 4, "gone", "model", "FAILED", 0, "NOT_FOUND", "ARTIFACT_NOT_FOUND", "no artifact"),
        VersionSeal("M", 3, None, None, "SKIPPED", reason="NO_LINEAGE", message=results[2].message),
        VersionSeal(
            "M", 2, "theirs", "model", "FAILED", 0, "PERMISSION_DENIED", "PERMISSION_DENIED", "needs EDIT"
        ),
        VersionSeal("M", 1, "ok", "model", "SEALED", files=1),
    ]


@pytest.mark.parametrize(
    "error",
    [
        exceptions.Unavailable("down", code="UNAVAILABLE"),
        exceptions.DeadlineExceeded("slow", code="DEADLINE_EXCEEDED"),
        exceptions.Unauthenticated("bad token", code="UNAUTHENTICATED"),
    ],
)
def test_a_failure_every_version_would_share_stops_the_run(error: exceptions.ModelregError) -> None:
    with (
        client_over([version(2, "ok"), version(1, "down")], {"down": error}) as client,
        pytest.raises(type(error)),
    ):
        client.seal_registered_versions()
