"""A registered version's files cannot change: registering seals them in tracking.

Through the real registry and tracking services on every backend: uploads to a sealed path or
below it are refused (FAILED_PRECONDITION ARTIFACT_SEALED), the rest of the run stays writable,
and uploads racing a registration either land before the seal (and are what the version records)
or are refused, so the recorded digests always match the stored bytes.
"""

from __future__ import annotations

import hashlib
import threading
import uuid
from pathlib import Path

import grpc
import pytest

from modelreg.registry.v1 import registry_pb2 as rpb
from modelreg.tracking.v1 import tracking_pb2 as tpb
from tests.integration.registry.conftest import Servers
from tests.integration.registry.test_registry_lineage import (
    MODEL_FILES,
    create_version,
    failure,
    trained_run,
    upload,
)

SEALED = (grpc.StatusCode.FAILED_PRECONDITION, "ARTIFACT_SEALED")


def refused(call: object) -> tuple[grpc.StatusCode, str]:
    assert callable(call)
    with pytest.raises(grpc.RpcError) as error:
        call()
    return failure(error.value)


def downloaded(servers: Servers, name: str, version: int, path: str) -> bytes:
    request = rpb.DownloadModelVersionFileRequest(name=name, version=version, path=path)
    return b"".join(r.chunk for r in servers.registry_stub.DownloadModelVersionFile(request, timeout=10))


def manifest_sha256(servers: Servers, run_id: str, path: str) -> str:
    stat = servers.tracking_stub.StatArtifact(tpb.StatArtifactRequest(run_id=run_id, path=path), timeout=10)
    return stat.file.sha256


def test_a_registered_directory_takes_no_upload_and_the_rest_of_the_run_does(
    servers: Servers, model: str
) -> None:
    run_id = trained_run(servers).info.run_id
    create_version(servers, model, f"runs:/{run_id}/model", run_id)

    assert refused(lambda: upload(servers, run_id, "model/MLmodel", b"rewritten")) == SEALED
    assert refused(lambda: upload(servers, run_id, "model/sub/weights.bin", b"rewritten")) == SEALED
    assert refused(lambda: upload(servers, run_id, "model/added.txt", b"new")) == SEALED
    upload(servers, run_id, "model-v2/MLmodel", b"next attempt")  # beside it: writable
    upload(servers, run_id, "notes.txt", b"still a live run")

    for path, content in MODEL_FILES.items():
        assert downloaded(servers, model, 1, path) == content
        assert manifest_sha256(servers, run_id, f"model/{path}") == hashlib.sha256(content).hexdigest()


def test_a_registered_file_is_sealed_alone(servers: Servers, model: str) -> None:
    run = trained_run(servers)
    run_id = run.info.run_id
    create_version(servers, model, f"{run.info.artifact_uri}/model/MLmodel", run_id)
    assert refused(lambda: upload(servers, run_id, "model/MLmodel", b"rewritten")) == SEALED
    upload(servers, run_id, "model/sub/weights.bin", b"not registered: still writable")
    assert downloaded(servers, model, 1, "MLmodel") == MODEL_FILES["MLmodel"]


def test_uploads_racing_a_registration_are_recorded_or_refused(servers: Servers, model: str) -> None:
    for trial in range(3):
        run_id = trained_run(servers).info.run_id
        outcomes: list[str] = []
        start = threading.Barrier(7)

        def rewrite(
            n: int, run_id: str = run_id, start: threading.Barrier = start, outcomes: list[str] = outcomes
        ) -> None:
            start.wait()
            try:
                upload(servers, run_id, "model/sub/weights.bin", f"writer {n}".encode() * 500)
                outcomes.append("OK")
            except grpc.RpcError as exc:
                outcomes.append(failure(exc)[1])

        writers = [threading.Thread(target=rewrite, args=(n,)) for n in range(6)]
        for writer in writers:
            writer.start()
        start.wait()
        version = create_version(servers, model, f"runs:/{run_id}/model", run_id)
        for writer in writers:
            writer.join()

        assert set(outcomes) <= {"OK", "ARTIFACT_SEALED"} and len(outcomes) == 6, outcomes
        recorded = {f.path: f.sha256 for f in version.lineage.files}
        content = downloaded(servers, model, version.version, "sub/weights.bin")
        assert hashlib.sha256(content).hexdigest() == recorded["sub/weights.bin"], f"trial {trial}"
        assert manifest_sha256(servers, run_id, "model/sub/weights.bin") == recorded["sub/weights.bin"]
        assert refused(lambda run_id=run_id: upload(servers, run_id, "model/sub/weights.bin", b"x")) == SEALED


def test_sealing_answers_the_files_and_is_idempotent(servers: Servers) -> None:
    run_id = trained_run(servers).info.run_id
    stub = servers.tracking_stub

    def seal(path: str, run: str = run_id) -> list[tuple[str, int, str]]:
        files = stub.SealArtifacts(tpb.SealArtifactsRequest(run_id=run, path=path), timeout=10).files
        return [(f.path, f.file_size, f.sha256) for f in files]

    expected = sorted(
        (f"model/{path}", len(content), hashlib.sha256(content).hexdigest())
        for path, content in MODEL_FILES.items()
    )
    assert seal("model") == expected
    assert seal("model") == expected
    assert seal("model/MLmodel") == expected[:1]

    assert refused(lambda: seal("elsewhere")) == (grpc.StatusCode.NOT_FOUND, "ARTIFACT_NOT_FOUND")
    assert refused(lambda: seal("mod")) == (grpc.StatusCode.NOT_FOUND, "ARTIFACT_NOT_FOUND")
    # MariaDB's PAD SPACE '=' finds 'model/MLmodel' for it; a seal must name exactly what it covers.
    assert refused(lambda: seal("model/MLmodel ")) == (grpc.StatusCode.NOT_FOUND, "ARTIFACT_NOT_FOUND")
    assert refused(lambda: seal("../model")) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARTIFACT_PATH")
    assert refused(lambda: seal("")) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARTIFACT_PATH")
    assert refused(lambda: seal("model", uuid.uuid4().hex)) == (grpc.StatusCode.NOT_FOUND, "RUN_NOT_FOUND")
    stub.DeleteRun(tpb.DeleteRunRequest(run_id=run_id), timeout=10)
    assert refused(lambda: seal("model")) == (grpc.StatusCode.FAILED_PRECONDITION, "RUN_DELETED")


def test_bytes_replaced_behind_the_manifest_end_the_download_with_data_loss(
    servers: Servers, model: str
) -> None:
    run = trained_run(servers)
    create_version(servers, model, f"runs:/{run.info.run_id}/model", run.info.run_id)
    stored = Path(run.info.artifact_uri.removeprefix("file://")) / "model" / "MLmodel"
    stored.write_bytes(b"replaced on disk")
    request = rpb.DownloadModelVersionFileRequest(name=model, version=1, path="MLmodel")
    with pytest.raises(grpc.RpcError) as error:
        b"".join(r.chunk for r in servers.registry_stub.DownloadModelVersionFile(request, timeout=10))
    assert failure(error.value) == (grpc.StatusCode.DATA_LOSS, "DIGEST_MISMATCH")
