"""The ``mlflow-artifacts`` proxy: files go in and out of a run through the tracking service."""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlflow_gateway import artifacts
from mlflow_gateway.server import running_in_thread
from mlflow_gateway.settings import GatewaySettings
from modelreg import TrackingClient
from modelreg.exceptions import NotFound
from modelreg_server.settings import AuthSettings
from modelreg_server.streams import StreamLimits
from tests.integration.mlflow_rest.conftest import Rest
from tests.integration.mlflow_rest.test_protocol import gateway_with, raw_request, read_response
from tests.integration.tracking.conftest import running, stored_files
from tests.integration.tracking.test_tracking_stream_limits import settings_for, silent_uploads
from tests.servers import running_services

ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"
ADMIN = "admin-token-for-the-artifact-proxy-0123456789"


def new_run(rest: Rest) -> tuple[str, str]:
    """(run id, the run's proxy root below ARTIFACTS)."""
    run = rest.tracking.create_run("0")
    return run.info.run_id, f"0/{run.info.run_id}/artifacts"


def url(path: str) -> str:
    # Dots encoded too, so no HTTP client can collapse a '..' segment before the server sees it.
    return f"{ARTIFACTS}/{quote(path, safe='/').replace('.', '%2E')}"


def test_upload_download_and_list_round_trip(rest: Rest) -> None:
    run_id, root = new_run(rest)
    content = os.urandom(3000) + b"\x00\xff"
    put = rest.http.put(url(f"{root}/model dir/weights.bin"), content=content)
    assert (put.status_code, put.json()) == (200, {})
    rest.http.put(url(f"{root}/model dir/sub/MLmodel"), content=b"flavors: {}\n").raise_for_status()
    rest.http.put(url(f"{root}/top.txt"), content=b"").raise_for_status()

    got = rest.http.get(url(f"{root}/model dir/weights.bin"))
    assert got.status_code == 200
    assert got.content == content
    assert got.headers["content-type"] == "application/octet-stream"
    # The digest was computed on the way in and recorded by modelreg.
    stored = rest.tracking.stat_artifact(run_id, "model dir/weights.bin")
    assert (stored.file_size, stored.sha256) == (len(content), hashlib.sha256(content).hexdigest())
    assert rest.http.get(url(f"{root}/top.txt")).content == b""

    top = rest.http.get(ARTIFACTS, params={"path": root}).json()
    assert top == {
        "files": [
            {"path": "model dir", "is_dir": True},
            {"path": "top.txt", "is_dir": False, "file_size": 0},
        ]
    }
    below = rest.http.get(ARTIFACTS, params={"path": f"{root}/model dir"}).json()
    assert below == {
        "files": [
            {"path": "sub", "is_dir": True},
            {"path": "weights.bin", "is_dir": False, "file_size": len(content)},
        ]
    }
    assert rest.http.get(ARTIFACTS, params={"path": f"{root}/nothing"}).json() == {"files": []}
    ajax = rest.http.get("/ajax-api/2.0/mlflow-artifacts/artifacts", params={"path": f"{root}/model dir/sub"})
    assert ajax.json() == {"files": [{"path": "MLmodel", "is_dir": False, "file_size": 12}]}


def test_an_upload_replaces_the_file_at_its_path(rest: Rest) -> None:
    run_id, root = new_run(rest)
    rest.http.put(url(f"{root}/f"), content=b"first").raise_for_status()
    rest.http.put(url(f"{root}/f"), content=b"second").raise_for_status()
    assert rest.http.get(url(f"{root}/f")).content == b"second"
    assert rest.tracking.stat_artifact(run_id, "f").sha256 == hashlib.sha256(b"second").hexdigest()


def test_large_files_stream_both_ways(rest: Rest) -> None:
    run_id, root = new_run(rest)
    block = os.urandom(1024 * 1024)
    blocks = 20
    expected = hashlib.sha256(block * blocks).hexdigest()

    def body() -> Iterator[bytes]:  # no length given: sent chunked, spooled as it arrives
        for _ in range(blocks):
            yield block

    rest.http.put(url(f"{root}/big.bin"), content=body()).raise_for_status()
    assert rest.tracking.stat_artifact(run_id, "big.bin").sha256 == expected

    digest, size = hashlib.sha256(), 0
    with rest.http.stream("GET", url(f"{root}/big.bin")) as response:
        assert response.status_code == 200
        assert response.headers["content-length"] == str(blocks * len(block))
        for chunk in response.iter_bytes():
            digest.update(chunk)
            size += len(chunk)
    assert (size, digest.hexdigest()) == (blocks * len(block), expected)


def test_missing_files_and_runs_are_404(rest: Rest) -> None:
    _, root = new_run(rest)
    for path in (f"{root}/absent", f"0/{'0' * 32}/artifacts/absent"):
        response = rest.http.get(url(path))
        assert (response.status_code, response.json()["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST")
    to_missing_run = rest.http.put(url(f"0/{'0' * 32}/artifacts/f"), content=b"x")
    assert to_missing_run.status_code == 404


def test_uploads_over_the_limit_are_413_and_store_nothing(
    rest: Rest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spools = tmp_path / "spools"
    spools.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spools))  # where the endpoint (in this process) spools
    run_id, root = new_run(rest)
    small = GatewaySettings(
        port=0,
        tracking_uri=rest.services.tracking,
        registry_uri=rest.services.registry,
        max_artifact_bytes=64 * 1024,
    )
    with running_in_thread(small) as base, httpx.Client(base_url=base, timeout=30) as http:
        at_limit = http.put(url(f"{root}/fits"), content=b"a" * (64 * 1024))
        assert at_limit.status_code == 200
        declared = http.put(url(f"{root}/declared"), content=b"a" * (64 * 1024 + 1))
        assert (declared.status_code, declared.json()["error_code"]) == (413, "RESOURCE_EXHAUSTED")

        def chunked() -> Iterator[bytes]:
            yield b"a" * (48 * 1024)
            yield b"a" * (48 * 1024)

        streamed = http.put(url(f"{root}/streamed"), content=chunked())
        assert (streamed.status_code, streamed.json()["error_code"]) == (413, "RESOURCE_EXHAUSTED")
    for refused in ("declared", "streamed"):
        with pytest.raises(NotFound):
            rest.tracking.stat_artifact(run_id, refused)
    assert rest.tracking.stat_artifact(run_id, "fits").file_size == 64 * 1024
    assert list(spools.iterdir()) == []  # no spooled body outlives its request, stored or refused


BAD_PATHS = [
    "{root}/../other",
    "{root}/a/../../x",
    "{root}/./x",
    "{root}//x",
    "{root}/x/",
    "{root}/a\\b",
    "{root}/nul\x00byte",
    "{root}/" + "n" * 256,
    "{root}/" + "d/" * 600 + "f",
    "/{root}/x",
    "0/{run}/elsewhere/x",
    "0/not-a-run/artifacts/x",
    "../0/{run}/artifacts/x",
    "x/{run}/artifacts/x",
    "0",
    "0/{run}",
    "",
]


@pytest.mark.parametrize("template", BAD_PATHS)
def test_odd_paths_are_refused_with_400(rest: Rest, template: str) -> None:
    run_id, root = new_run(rest)
    path = template.format(root=root, run=run_id)
    for method in ("PUT", "GET"):
        response = rest.http.request(method, url(path), content=b"x" if method == "PUT" else None)
        assert response.status_code == 400, (method, path, response.text)
        assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    listed = rest.http.get(ARTIFACTS, params={"path": path})
    assert (listed.status_code, listed.json()["error_code"]) == (400, "INVALID_PARAMETER_VALUE")
    assert rest.tracking.list_artifacts(run_id) == []


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tail=st.text(min_size=0, max_size=300))
def test_no_path_makes_the_proxy_fail(rest: Rest, tail: str) -> None:
    run_id = "f" * 32
    for path in (f"0/{run_id}/artifacts/{tail}", tail):
        for method in ("PUT", "GET"):
            response = rest.http.request(method, url(path), content=b"x" if method == "PUT" else None)
            assert response.status_code < 500, (method, path, response.text)
            assert "error_code" in response.json() or response.status_code == 200
        listed = rest.http.get(ARTIFACTS, params={"path": path})
        assert listed.status_code < 500, (path, listed.text)


def test_delete_is_refused_and_keeps_the_file(rest: Rest) -> None:
    run_id, root = new_run(rest)
    rest.http.put(url(f"{root}/keep"), content=b"kept").raise_for_status()
    response = rest.http.delete(url(f"{root}/keep"))
    assert (response.status_code, response.json()["error_code"]) == (501, "NOT_IMPLEMENTED")
    assert rest.http.get(url(f"{root}/keep")).content == b"kept"
    assert rest.tracking.stat_artifact(run_id, "keep").file_size == 4


def test_each_request_uses_its_callers_token(tmp_path: Path) -> None:
    """With access control on, the proxy holds no credentials: the caller's token decides."""
    auth = AuthSettings(
        enabled=True, database_url=f"sqlite:///{tmp_path / 'auth.db'}", bootstrap_admin_token=ADMIN
    )
    with running_services(tmp_path, auth) as services:
        settings = GatewaySettings(port=0, tracking_uri=services.tracking, registry_uri=services.registry)
        with (
            TrackingClient(services.tracking, token=ADMIN) as tracking,
            running_in_thread(settings) as base,
            httpx.Client(base_url=base, timeout=30) as http,
        ):
            run_id = tracking.create_run("0").info.run_id
            path = url(f"0/{run_id}/artifacts/f")
            anonymous = http.put(path, content=b"x")
            assert (anonymous.status_code, anonymous.json()["error_code"]) == (401, "UNAUTHENTICATED")
            admin = {"Authorization": f"Bearer {ADMIN}"}
            assert http.put(path, content=b"x", headers=admin).status_code == 200
            assert http.get(path).status_code == 401
            assert http.get(path, headers=admin).content == b"x"
            assert http.get(ARTIFACTS, params={"path": f"0/{run_id}/artifacts"}).status_code == 401


@pytest.mark.parametrize("size", [1000, 3 * 1024 * 1024])
def test_a_file_damaged_in_storage_never_downloads_as_whole(rest: Rest, size: int) -> None:
    run_id, root = new_run(rest)
    content = os.urandom(size)
    rest.http.put(url(f"{root}/weights.bin"), content=content).raise_for_status()
    [stored] = [p for p in rest.services.artifact_root.rglob("weights.bin") if run_id in str(p)]
    damaged = bytearray(content)
    damaged[-1] ^= 0xFF  # same size, other bytes: only the digest can tell
    stored.write_bytes(bytes(damaged))
    if size <= 1024 * 1024:  # checked before the answer: an error, not a file
        response = rest.http.get(url(f"{root}/weights.bin"))
        assert (response.status_code, response.json()["error_code"]) == (500, "DATA_LOSS")
        return
    received = bytearray()
    # The body ends short of its Content-Length.
    with (
        pytest.raises(httpx.RemoteProtocolError),
        rest.http.stream("GET", url(f"{root}/weights.bin")) as response,
    ):
        assert response.status_code == 200
        for chunk in response.iter_bytes():
            received += chunk
    assert len(received) < size


@dataclass
class SpoolWatch:
    """How many uploads the endpoint (in this process) started relaying; ``started`` once one did."""

    count: int = 0
    started: threading.Event = field(default_factory=threading.Event)


@pytest.fixture
def spools(monkeypatch: pytest.MonkeyPatch) -> SpoolWatch:
    watch = SpoolWatch()

    class Watched(artifacts._Body):
        def __init__(self, chunks: AsyncIterator[bytes], limit: int) -> None:
            watch.count += 1
            watch.started.set()
            super().__init__(chunks, limit)

    monkeypatch.setattr(artifacts, "_Body", Watched)
    return watch


def test_an_upload_the_service_would_refuse_is_not_spooled(tmp_path: Path, spools: SpoolWatch) -> None:
    """Anonymous callers (access control on), unknown and deleted runs: refused before a byte is
    written to the endpoint's disk."""
    auth = AuthSettings(
        enabled=True, database_url=f"sqlite:///{tmp_path / 'auth.db'}", bootstrap_admin_token=ADMIN
    )
    with running_services(tmp_path, auth) as services:
        settings = GatewaySettings(port=0, tracking_uri=services.tracking, registry_uri=services.registry)
        admin = {"Authorization": f"Bearer {ADMIN}"}
        with (
            TrackingClient(services.tracking, token=ADMIN) as tracking,
            running_in_thread(settings) as base,
            httpx.Client(base_url=base, timeout=30) as http,
        ):
            run_id = tracking.create_run("0").info.run_id
            deleted = tracking.create_run("0").info.run_id
            tracking.delete_run(deleted)
            anonymous = http.put(url(f"0/{run_id}/artifacts/f"), content=b"x" * 1000)
            assert (anonymous.status_code, anonymous.json()["error_code"]) == (401, "UNAUTHENTICATED")
            unknown = http.put(url(f"0/{'0' * 32}/artifacts/f"), content=b"x", headers=admin)
            assert (unknown.status_code, unknown.json()["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST")
            to_deleted = http.put(url(f"0/{deleted}/artifacts/f"), content=b"x", headers=admin)
            assert (to_deleted.status_code, to_deleted.json()["error_code"]) == (400, "INVALID_STATE")
            assert spools.count == 0
            assert http.put(url(f"0/{run_id}/artifacts/f"), content=b"x", headers=admin).status_code == 200
            assert spools.count == 1


def test_uploads_beyond_the_concurrent_limit_are_503_until_one_ends(rest: Rest, spools: SpoolWatch) -> None:
    run_id, root = new_run(rest)
    with (
        gateway_with(rest, max_concurrent_uploads=1) as base,
        httpx.Client(base_url=base, timeout=30) as http,
    ):
        head = f"PUT {url(f'{root}/first')} HTTP/1.1\nHost: x\nContent-Length: 6\n"
        with raw_request(base, head, b"abc") as first:
            assert spools.started.wait(60)  # the first upload holds the one slot while it spools
            busy = http.put(url(f"{root}/second"), content=b"x")
            assert (busy.status_code, busy.json()["error_code"]) == (503, "TEMPORARILY_UNAVAILABLE")
            first.sendall(b"def")
            assert read_response(first) == (200, {})
        assert http.put(url(f"{root}/second"), content=b"x").status_code == 200
    assert rest.tracking.stat_artifact(run_id, "first").file_size == 6


def test_a_stalled_upload_is_answered_408_and_stores_nothing(rest: Rest) -> None:
    run_id, root = new_run(rest)
    with gateway_with(rest, body_timeout_seconds=0.2) as base:
        head = f"PUT {url(f'{root}/stalled')} HTTP/1.1\nHost: x\nContent-Length: 100\n"
        with raw_request(base, head, b"only ten b") as connection:
            status, body = read_response(connection)
    assert (status, body["error_code"]) == (408, "DEADLINE_EXCEEDED")
    with pytest.raises(NotFound):
        rest.tracking.stat_artifact(run_id, "stalled")


def stored_under(rest: Rest) -> list[Path]:
    """Every file the tracking service holds, staging included."""
    return stored_files(rest.services.artifact_root)


def test_a_body_cut_mid_stream_stores_nothing(rest: Rest, spools: SpoolWatch) -> None:
    """The client goes away after 2 of 3 MiB, which the endpoint had relayed on: the stream ends
    without its end message, so nothing is published and no partial file stays behind."""
    run_id, root = new_run(rest)
    with (
        gateway_with(rest, max_concurrent_uploads=1) as base,
        httpx.Client(base_url=base, timeout=30) as http,
    ):
        head = f"PUT {url(f'{root}/cut')} HTTP/1.1\nHost: x\nContent-Length: {3 * 1024 * 1024}\n"
        with raw_request(base, head, os.urandom(2 * 1024 * 1024)):
            assert spools.started.wait(60)
        # The cut upload held the one slot: once it is back, it has ended.
        deadline = time.monotonic() + 60
        while (after := http.put(url(f"{root}/after"), content=b"x")).status_code == 503:
            assert time.monotonic() < deadline, "the cut upload never gave its slot back"
            time.sleep(0.05)
        assert after.status_code == 200
    with pytest.raises(NotFound):
        rest.tracking.stat_artifact(run_id, "cut")
    assert [f.path for f in rest.tracking.list_artifacts(run_id)] == ["after"]
    assert len(stored_under(rest)) == 1  # the other upload's file, nothing staged


def test_a_body_over_the_limit_after_blocks_went_out_stores_nothing(rest: Rest) -> None:
    run_id, root = new_run(rest)
    with (
        gateway_with(rest, max_artifact_bytes=3 * 1024 * 1024) as base,
        httpx.Client(base_url=base, timeout=30) as http,
    ):

        def chunked() -> Iterator[bytes]:  # no length: only the bytes as they arrive can tell
            for _ in range(5):
                yield os.urandom(1024 * 1024)

        response = http.put(url(f"{root}/big"), content=chunked())
        assert (response.status_code, response.json()["error_code"]) == (413, "RESOURCE_EXHAUSTED")
    with pytest.raises(NotFound):
        rest.tracking.stat_artifact(run_id, "big")
    assert stored_under(rest) == []


def test_a_tracking_service_at_its_stream_limit_is_503(tmp_path: Path) -> None:
    """The upload holds one of the service's stream slots: none free is a 503 MLflow's client retries."""
    with running(settings_for(tmp_path, StreamLimits(max_streams=1))) as tracking:
        settings = GatewaySettings(port=0, tracking_uri=tracking.target, registry_uri=tracking.target)
        with (
            TrackingClient(tracking.target) as client,
            running_in_thread(settings) as base,
            httpx.Client(base_url=base, timeout=30) as http,
        ):
            run_id = client.create_run("0").info.run_id
            with silent_uploads(tracking.target, run_id, 1):
                busy = http.put(url(f"0/{run_id}/artifacts/f"), content=b"x" * 1000)
            assert (busy.status_code, busy.json()["error_code"]) == (503, "TEMPORARILY_UNAVAILABLE")
            assert client.list_artifacts(run_id) == []


def test_a_body_stalled_past_the_services_idle_limit_is_408(tmp_path: Path) -> None:
    """The service cuts a stream left idle before the endpoint's own body timeout does."""
    with running(settings_for(tmp_path, StreamLimits(idle_seconds=0.5))) as tracking:
        settings = GatewaySettings(port=0, tracking_uri=tracking.target, registry_uri=tracking.target)
        with TrackingClient(tracking.target) as client, running_in_thread(settings) as base:
            run_id = client.create_run("0").info.run_id
            head = f"PUT {url(f'0/{run_id}/artifacts/stalled')} HTTP/1.1\nHost: x\nContent-Length: 100\n"
            with raw_request(base, head, b"only ten b") as connection:
                status, body = read_response(connection)
            assert (status, body["error_code"]) == (408, "DEADLINE_EXCEEDED")
            assert client.list_artifacts(run_id) == []
        assert stored_files(tmp_path / "artifacts") == []
