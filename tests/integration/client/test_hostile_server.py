"""A hostile server cannot make the client write, move or delete anything outside the destination
and the cache.

Fake tracking and registry services (the generated servicers, on 127.0.0.1) answer with hostile
paths: a lineage artifact path or recorded file paths with '..' or absolute, a modelreg-model.json
whose model_file points out of the model directory or at a file without a digest, listings naming
files outside the requested directory. The real client is driven against them (fetch_model,
pyfunc.load_model, download_artifacts and `modelreg download`); before each case sentinel files sit
in sibling directories of the destination and of the cache, and the whole temporary tree outside
those two is compared before and after: the client must raise, naming the path, and leave it as it
was.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
from collections.abc import Callable, Iterator
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest

import modelreg
import modelreg.pyfunc
from modelreg import cli
from modelreg.exceptions import DataLoss, UnsafePathError
from modelreg.models import METADATA_FILE, ModelIntegrityError
from modelreg.models.fetch import fetch_model
from modelreg.registry.v1 import registry_pb2 as rpb
from modelreg.registry.v1 import registry_pb2_grpc as rpb_grpc
from modelreg.tracking.v1 import tracking_pb2 as tpb
from modelreg.tracking.v1 import tracking_pb2_grpc as tpb_grpc

RUN = "a" * 32
MODEL_DIR = "model"
EVIL = b"bytes the server wants written somewhere"
SENTINEL = b"must survive"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def metadata(**changes: Any) -> bytes:
    """A modelreg-model.json for model.skops, with ``changes`` applied."""
    content = {
        "format_version": 1,
        "flavor": "sklearn",
        "serialization": "skops",
        "model_file": "model.skops",
        "python_version": "3.11.0",
        "sklearn_version": "1.5.0",
        "modelreg_version": "0.1.0",
        "created_at": 0,
        "files": {"model.skops": sha(b"weights")},
        **changes,
    }
    return json.dumps(content).encode()


@dataclass
class Scenario:
    """What the fake services answer: the model's files (path relative to the model directory →
    content), the registry's lineage, the tracking service's listing and stat."""

    files: dict[str, bytes] = field(
        default_factory=lambda: {METADATA_FILE: metadata(), "model.skops": b"weights"}
    )
    artifact_path: str = MODEL_DIR
    # Extra lineage entries (path → content) the registry records and serves.
    recorded: dict[str, bytes] = field(default_factory=dict)
    # Paths (relative to the run's root) the tracking service lists; default: the model's files.
    listing: list[str] | None = None
    # The FileInfo path StatArtifact answers with, and whether it is a directory.
    stat: tuple[str, bool] | None = None
    # Paths added to every listing after the first: the listing changes between two calls.
    later: list[str] = field(default_factory=list)
    lists: int = 0

    def content(self, model_path: str) -> bytes:
        return {**self.files, **self.recorded}.get(model_path, EVIL)

    def listed(self) -> list[str]:
        self.lists += 1
        listing = (
            self.listing if self.listing is not None else [f"{MODEL_DIR}/{p}" for p in sorted(self.files)]
        )
        return listing if self.lists == 1 else [*listing, *self.later]


class HostileTracking(tpb_grpc.TrackingServiceServicer):
    def __init__(self) -> None:
        self.scenario = Scenario()

    def _info(self, path: str) -> tpb.FileInfo:
        data = self.scenario.content(path.removeprefix(f"{MODEL_DIR}/"))
        return tpb.FileInfo(path=path, file_size=len(data), sha256=sha(data))

    def StatArtifact(self, request: tpb.StatArtifactRequest, context: Any) -> tpb.StatArtifactResponse:
        path, is_dir = self.scenario.stat or (request.path, True)
        info = tpb.FileInfo(path=path, is_dir=True) if is_dir else self._info(path)
        return tpb.StatArtifactResponse(file=info)

    def ListArtifacts(self, request: tpb.ListArtifactsRequest, context: Any) -> tpb.ListArtifactsResponse:
        return tpb.ListArtifactsResponse(files=[self._info(p) for p in self.scenario.listed()])

    def DownloadArtifact(
        self, request: tpb.DownloadArtifactRequest, context: Any
    ) -> Iterator[tpb.DownloadArtifactResponse]:
        info = self._info(request.path)
        yield tpb.DownloadArtifactResponse(metadata=info)
        yield tpb.DownloadArtifactResponse(
            chunk=self.scenario.content(request.path.removeprefix(f"{MODEL_DIR}/"))
        )


class HostileRegistry(rpb_grpc.RegistryServiceServicer):
    def __init__(self) -> None:
        self.scenario = Scenario()

    def ResolveModelUri(
        self, request: rpb.ResolveModelUriRequest, context: Any
    ) -> rpb.ResolveModelUriResponse:
        s = self.scenario
        files = {**s.files, **s.recorded}
        lineage = rpb.Lineage(
            run_id=RUN,
            artifact_path=s.artifact_path,
            files=[rpb.FileDigest(path=p, size=len(d), sha256=sha(d)) for p, d in sorted(files.items())],
        )
        version = rpb.ModelVersion(name="Hostile", version=1, run_id=RUN, source=f"runs:/{RUN}/model")
        version.lineage.CopyFrom(lineage)
        return rpb.ResolveModelUriResponse(model_version=version)

    def DownloadModelVersionFile(
        self, request: rpb.DownloadModelVersionFileRequest, context: Any
    ) -> Iterator[rpb.DownloadModelVersionFileResponse]:
        data = self.scenario.content(request.path)
        yield rpb.DownloadModelVersionFileResponse(
            metadata=rpb.FileDigest(path=request.path, size=len(data), sha256=sha(data))
        )
        yield rpb.DownloadModelVersionFileResponse(chunk=data)


@dataclass
class Fakes:
    tracking: HostileTracking
    registry: HostileRegistry
    target: str

    def play(self, scenario: Scenario) -> None:
        self.tracking.scenario = self.registry.scenario = scenario


@pytest.fixture(scope="module")
def fakes() -> Iterator[Fakes]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    tracking, registry = HostileTracking(), HostileRegistry()
    tpb_grpc.add_TrackingServiceServicer_to_server(tracking, server)
    rpb_grpc.add_RegistryServiceServicer_to_server(registry, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield Fakes(tracking, registry, f"127.0.0.1:{port}")
    finally:
        server.stop(None).wait()


@dataclass(frozen=True)
class Layout:
    """tmp_path/work/{dst, sibling/} and tmp_path/home/{cache, sibling/}: the client may write
    only in dst and cache."""

    root: Path

    @property
    def dst(self) -> Path:
        return self.root / "work" / "dst"

    @property
    def cache(self) -> Path:
        return self.root / "home" / "cache"

    def plant(self) -> None:
        for sibling in (self.root / "work" / "sibling", self.root / "home" / "sibling"):
            sibling.mkdir(parents=True)
            (sibling / "sentinel.txt").write_bytes(SENTINEL)
        (self.root / "work" / "beside.txt").write_bytes(SENTINEL)
        self.cache.mkdir(parents=True)

    def snapshot(self) -> dict[str, object]:
        """Everything outside dst and the cache: path → content, symlink target or 'dir'."""
        seen: dict[str, object] = {}
        for parent, dirs, names in os.walk(self.root):
            here = Path(parent)
            dirs[:] = [d for d in dirs if here / d not in (self.dst, self.cache)]
            for name in [*dirs, *names]:
                path = here / name
                rel = path.relative_to(self.root).as_posix()
                if path.is_symlink():
                    seen[rel] = ("link", os.readlink(path))
                elif path.is_dir():
                    seen[rel] = "dir"
                else:
                    seen[rel] = path.read_bytes()
        return seen


class Payload:
    """Unpickling this creates ``path``: proof that a file without a digest was deserialized."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (self.path, "w"))


# Each case: the scenario (built from the layout, for paths that name it), the path the error must
# name, and the ways the client is driven against it.
Build = Callable[[Layout], Scenario]
MODEL_DRIVERS = ("fetch", "fetch_dst", "pyfunc", "cli")
RUNS_DRIVERS = ("fetch_runs", "cli_runs")
CASES: dict[str, tuple[Build, str, tuple[str, ...]]] = {
    "lineage artifact_path climbs out": (
        lambda _: Scenario(artifact_path="../../../../x"),
        "../../../../x",
        MODEL_DRIVERS,
    ),
    "lineage artifact_path absolute": (lambda _: Scenario(artifact_path="/tmp/.."), "/tmp/..", MODEL_DRIVERS),
    "recorded file reaches the dst sibling": (
        lambda _: Scenario(recorded={"../../sibling/sentinel.txt": EVIL}),
        "../../sibling/sentinel.txt",
        MODEL_DRIVERS,
    ),
    "recorded file reaches the cache sibling": (
        lambda _: Scenario(recorded={"../../../../sibling/sentinel.txt": EVIL}),
        "../../../../sibling/sentinel.txt",
        MODEL_DRIVERS,
    ),
    "recorded file with an absolute path": (
        lambda layout: Scenario(recorded={str(layout.root / "work" / "sibling" / "new.txt"): EVIL}),
        "/sibling/new.txt",
        MODEL_DRIVERS,
    ),
    "recorded file with '..' inside": (
        lambda _: Scenario(recorded={"a/../../../sibling/x": EVIL}),
        "a/../../../sibling/x",
        MODEL_DRIVERS,
    ),
    "recorded file with backslashes": (
        lambda _: Scenario(recorded={"..\\..\\sibling\\x": EVIL}),
        "..\\..\\sibling",
        MODEL_DRIVERS,
    ),
    "model_file climbs out": (
        lambda _: Scenario(
            files={
                METADATA_FILE: metadata(
                    model_file="../../sibling/sentinel.txt",
                    files={"../../sibling/sentinel.txt": sha(SENTINEL)},
                )
            }
        ),
        "../../sibling/sentinel.txt",
        MODEL_DRIVERS,
    ),
    "model_file absolute": (
        lambda layout: Scenario(
            files={METADATA_FILE: metadata(model_file=str(layout.root / "work" / "sibling" / "sentinel.txt"))}
        ),
        "/sibling/sentinel.txt",
        MODEL_DRIVERS,
    ),
    "input_example climbs out": (
        lambda _: Scenario(
            files={
                METADATA_FILE: metadata(input_example="../sibling/sentinel.txt"),
                "model.skops": b"weights",
            }
        ),
        "../sibling/sentinel.txt",
        MODEL_DRIVERS,
    ),
    "model_file has no digest in files": (
        lambda layout: Scenario(
            files={
                METADATA_FILE: metadata(serialization="pickle", model_file="other.pkl"),
                "model.skops": b"weights",
                "other.pkl": pickle.dumps(Payload(layout.root / "work" / "sibling" / "pwned")),
            }
        ),
        "model_file 'other.pkl'",
        MODEL_DRIVERS,
    ),
    "files key climbs out": (
        lambda _: Scenario(
            files={
                METADATA_FILE: metadata(
                    files={"model.skops": sha(b"weights"), "../../sibling/sentinel.txt": "0"}
                ),
                "model.skops": b"weights",
            }
        ),
        "../../sibling/sentinel.txt",
        MODEL_DRIVERS,
    ),
    "listing outside the requested directory": (
        lambda _: Scenario(listing=[f"{MODEL_DIR}/{METADATA_FILE}", "other/evil"]),
        "other/evil",
        (*RUNS_DRIVERS, "artifacts"),
    ),
    "listing climbs out of the model directory": (
        lambda _: Scenario(
            listing=[f"{MODEL_DIR}/{METADATA_FILE}", f"{MODEL_DIR}/../../sibling/sentinel.txt"]
        ),
        "../../sibling/sentinel.txt",
        (*RUNS_DRIVERS, "artifacts"),
    ),
    "listing with an absolute path": (
        lambda layout: Scenario(
            listing=[f"{MODEL_DIR}/{METADATA_FILE}", str(layout.root / "work" / "sibling" / "new.txt")]
        ),
        "/sibling/new.txt",
        (*RUNS_DRIVERS, "artifacts"),
    ),
    "stat names another file": (
        lambda _: Scenario(stat=("../sibling/sentinel.txt", False)),
        "../sibling/sentinel.txt",
        ("artifacts",),
    ),
}


def drive(
    driver: str,
    fakes: Fakes,
    layout: Layout,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Exception | str:
    """Runs the client one way; returns what it raised (or the CLI's stderr when it exited 1)."""
    models_uri, runs_uri = "models:/Hostile/1", f"runs:/{RUN}/{MODEL_DIR}"
    if driver.startswith("cli"):
        uri = runs_uri if driver == "cli_runs" else models_uri
        targets = ["--tracking-uri", fakes.target, "--registry-uri", fakes.target]
        code = cli.main(["download", uri, "-o", str(layout.dst), "--json", *targets])
        captured = capsys.readouterr()
        assert (code, captured.out) == (cli.EXIT_FAILED, ""), captured
        return captured.err
    try:
        with modelreg.Client(fakes.target, fakes.target) as client:
            if driver == "artifacts":
                layout.dst.mkdir()
                client.tracking.download_artifacts(RUN, MODEL_DIR, layout.dst)
            elif driver == "pyfunc":
                monkeypatch.setenv("MODELREG_TRACKING_URI", fakes.target)
                monkeypatch.setenv("MODELREG_REGISTRY_URI", fakes.target)
                modelreg.pyfunc.load_model(models_uri, allow_pickle=True)
            else:
                uri = runs_uri if driver == "fetch_runs" else models_uri
                dst = layout.dst if driver == "fetch_dst" else None
                fetch_model(uri, tracking=client.tracking, registry=client.registry, dst_path=dst)
    except DataLoss as exc:
        return exc
    raise AssertionError(f"{driver} accepted the hostile answer")


@pytest.mark.parametrize(
    ("case", "driver"),
    [(case, driver) for case, (_, _, drivers) in CASES.items() for driver in drivers],
)
def test_hostile_paths_are_refused_and_touch_nothing_outside(
    fakes: Fakes,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    case: str,
    driver: str,
) -> None:
    build, named, _ = CASES[case]
    layout = Layout(tmp_path)
    layout.plant()
    monkeypatch.setenv("MODELREG_CACHE_DIR", str(layout.cache))
    fakes.play(build(layout))
    before = layout.snapshot()

    raised = drive(driver, fakes, layout, monkeypatch, capsys)

    assert layout.snapshot() == before
    if isinstance(raised, str):
        assert raised.startswith(("error: MODEL_INTEGRITY_ERROR: ", "error: UNSAFE_PATH: ")), raised
    else:
        expected = UnsafePathError if driver == "artifacts" else ModelIntegrityError
        assert isinstance(raised, expected), repr(raised)
    assert named in str(raised), str(raised)


def test_a_symlink_planted_in_the_destination_is_not_followed(
    fakes: Fakes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """dst/model is a symlink to a sibling directory: the listing's honest paths would land there."""
    layout = Layout(tmp_path)
    layout.plant()
    layout.dst.mkdir()
    (layout.dst / MODEL_DIR).symlink_to(layout.root / "work" / "sibling")
    fakes.play(Scenario(files={"sentinel.txt": EVIL}))
    before = layout.snapshot()
    with modelreg.Client(fakes.target, fakes.target) as client, pytest.raises(UnsafePathError) as caught:
        client.tracking.download_artifacts(RUN, MODEL_DIR, layout.dst)
    assert "resolves outside" in caught.value.message and caught.value.path == f"{MODEL_DIR}/sentinel.txt"
    assert layout.snapshot() == before


def test_a_symlink_planted_as_the_cache_entry_is_neither_emptied_nor_followed_for_writing(
    fakes: Fakes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cache entry of the version is a symlink to a directory outside the cache: the failed check
    of the "cached" copy must not delete what it points at, nor may the download land there."""
    from modelreg.models.fetch import resolve_source

    layout = Layout(tmp_path)
    layout.plant()
    monkeypatch.setenv("MODELREG_CACHE_DIR", str(layout.cache))
    fakes.play(Scenario())
    with modelreg.Client(fakes.target, fakes.target) as client:
        source = resolve_source("models:/Hostile/1", client.tracking, client.registry)
        (layout.cache / "models").mkdir()
        (layout.cache / "models" / source.tree_digest).symlink_to(layout.root / "home" / "sibling")
        before = layout.snapshot()
        with pytest.raises(ModelIntegrityError):
            fetch_model("models:/Hostile/1", tracking=client.tracking, registry=client.registry)
    assert layout.snapshot() == before


def test_an_honest_fake_is_served(fakes: Fakes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The fakes themselves are sound: the same scenario without a hostile path downloads."""
    layout = Layout(tmp_path)
    layout.plant()
    monkeypatch.setenv("MODELREG_CACHE_DIR", str(layout.cache))
    fakes.play(Scenario())
    with modelreg.Client(fakes.target, fakes.target) as client:
        fetched = fetch_model("models:/Hostile/1", tracking=client.tracking, registry=client.registry)
        assert fetched.path.is_relative_to(layout.cache)
        ran = fetch_model(f"runs:/{RUN}/{MODEL_DIR}", tracking=client.tracking, registry=client.registry)
        assert ran.path == fetched.path  # same content, same cache entry
        assert client.tracking.download_artifacts(RUN, MODEL_DIR, layout.dst) == str(layout.dst / MODEL_DIR)
    assert sorted(p.name for p in (layout.dst / MODEL_DIR).iterdir()) == ["model.skops", METADATA_FILE]


def test_files_nobody_recorded_stay_out_of_the_cache(
    fakes: Fakes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The listing that fixed the digests and the one that drives the download differ: the extra
    file is downloaded into staging, dropped there, and nothing else is touched."""
    layout = Layout(tmp_path)
    layout.plant()
    monkeypatch.setenv("MODELREG_CACHE_DIR", str(layout.cache))
    fakes.play(Scenario(later=[f"{MODEL_DIR}/extra.bin", f"{MODEL_DIR}/sub/extra.bin"]))
    before = layout.snapshot()
    with modelreg.Client(fakes.target, fakes.target) as client:
        fetched = fetch_model(f"runs:/{RUN}/{MODEL_DIR}", tracking=client.tracking, registry=client.registry)
    assert sorted(p.relative_to(layout.cache).as_posix() for p in layout.cache.rglob("*")) == [
        "models",
        f"models/{fetched.path.name}",
        f"models/{fetched.path.name}/model.skops",
        f"models/{fetched.path.name}/{METADATA_FILE}",
    ]
    assert layout.snapshot() == before
