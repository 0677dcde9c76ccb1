"""Fetching a model directory by URI, with a local cache and digest checks on every load.

Where the expected digests come from (the trust anchor):

- ``models:/...``: ONE registry call (ResolveModelUri) returns the version with its lineage, which
  holds the sha256 of every file of the model recorded at registration;
- ``runs:/<run_id>/<path>``: the tracking service's listing, i.e. the sha256 it recorded at upload.

Files then come into the cache, ``$MODELREG_CACHE_DIR`` (default ``~/.cache/modelreg``): those of
a registered version through the registry (DownloadModelVersionFile, one call per recorded file),
so READ on the model is enough to load it with access control on; those of a ``runs:/`` URI from
the tracking service (READ on the experiment). They land under ``models/<tree digest>/`` where the tree digest is the sha256 of the
sorted (path, sha256) list: the same content always lands in the same place, so loading a version
again downloads nothing. A download is staged in a temporary directory beside the cache entry, every
file is checked against the expected digests, and only then is the directory renamed into place, so
a cache entry is complete or absent. Every load (cache hit or not) hashes every file again and
compares it with the expected digests and with the model's own ``files`` map: a mismatch raises
:class:`~modelreg.models.errors.ModelIntegrityError` naming the file. A cache entry that fails the
check is local damage: it is dropped and fetched once more, and the fresh copy must pass.

Every path the servers send (the lineage's artifact path, the recorded files' paths, a listing's
paths) is untrusted: each must be a plain relative path that stays inside the directory it is
written to (:func:`modelreg.paths.safe_join`), else ModelIntegrityError names it and nothing outside
the staging directory is written, moved or deleted.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from modelreg.config import ClientSettings
from modelreg.entities import ModelVersion
from modelreg.exceptions import DataLoss, NotFound, UnsafePathError
from modelreg.models.errors import ModelIntegrityError
from modelreg.models.model_dir import (
    METADATA_FILE,
    ModelMetadata,
    check_files,
    model_path,
    read_metadata,
    sha256_file,
    unsafe_model_path,
    verify_model_dir,
)
from modelreg.paths import check_relative
from modelreg.registry_client import RegistryClient
from modelreg.tracking_client import Progress, TrackingClient
from modelreg.uris import MODELS_SCHEME, RUNS_SCHEME, ModelsUri, parse_model_uri


def cache_root() -> Path:
    """``$MODELREG_CACHE_DIR``, else ``$XDG_CACHE_HOME/modelreg``, else ``~/.cache/modelreg``."""
    return ClientSettings.from_env().cache_dir


@dataclass(frozen=True)
class ModelSource:
    """Where a model's files are and what their digests must be."""

    run_id: str
    artifact_path: str
    # sha256 by path relative to the model directory.
    digests: Mapping[str, str]
    model_version: ModelVersion | None = None

    @property
    def tree_digest(self) -> str:
        listing = "".join(f"{path}\0{sha}\n" for path, sha in sorted(self.digests.items()))
        return hashlib.sha256(listing.encode()).hexdigest()


@dataclass(frozen=True)
class FetchedModel:
    path: Path
    metadata: ModelMetadata
    # None for a local directory, which is checked against its own metadata only.
    source: ModelSource | None


def resolve_source(model_uri: str, tracking: TrackingClient, registry: RegistryClient) -> ModelSource:
    """Resolves a URI to a run's artifact directory and the digests its files must have."""
    parsed = parse_model_uri(model_uri)
    if isinstance(parsed, ModelsUri):
        return version_source(registry.resolve_model_uri(parsed.uri))
    prefix = parsed.artifact_path + "/"
    listed = tracking.list_artifacts(parsed.run_id, parsed.artifact_path, recursive=True)
    if (stray := next((f.path for f in listed if not f.path.startswith(prefix)), None)) is not None:
        raise ModelIntegrityError(stray, f"listed for {model_uri} but not below {parsed.artifact_path!r}")
    digests = _checked_keys({f.path.removeprefix(prefix): f.sha256 for f in listed if not f.is_dir})
    if METADATA_FILE not in digests:
        raise NotFound(
            f"{model_uri} holds no {METADATA_FILE}: not a modelreg model directory",
            code="NOT_FOUND",
            reason="MODEL_NOT_FOUND",
            metadata={"uri": model_uri},
        )
    return ModelSource(parsed.run_id, parsed.artifact_path, digests)


def version_source(version: ModelVersion) -> ModelSource:
    """The files of a registered version (as ResolveModelUri or GetModelVersion returned it) and
    the digests its lineage recorded; ModelIntegrityError when it recorded none."""
    lineage = version.lineage
    if lineage is None or not lineage.files:
        # Without recorded digests nothing can vouch for the bytes: refuse rather than trust them.
        raise ModelIntegrityError(
            METADATA_FILE, f"version {version.version} of {version.name} has no recorded file digests"
        )
    digests = {f.path: f.sha256 for f in lineage.files}
    return ModelSource(lineage.run_id, _checked(lineage.artifact_path), _checked_keys(digests), version)


def _checked(path: str) -> str:
    """A server-supplied path, refused (ModelIntegrityError) unless plain and relative."""
    try:
        return check_relative(path)
    except UnsafePathError as exc:
        raise unsafe_model_path(exc) from None


def _checked_keys(digests: dict[str, str]) -> dict[str, str]:
    for path in digests:
        _checked(path)
    return digests


def _verify(directory: Path, digests: Mapping[str, str]) -> None:
    for path, expected in digests.items():
        local = model_path(directory, path)
        if not local.is_file():
            raise ModelIntegrityError(path, "has a recorded digest but is missing", expected=expected)
        actual = sha256_file(local)
        if actual != expected:
            raise ModelIntegrityError(
                path, "content differs from the recorded sha256", expected=expected, actual=actual
            )


def _download_version(
    version: ModelVersion, registry: RegistryClient, staged: Path, progress: Progress | None
) -> None:
    """Each recorded file of a registered version, through the registry."""
    assert version.lineage is not None
    total, done = sum(f.size for f in version.lineage.files), 0

    def advance(n: int) -> None:
        nonlocal done
        done += n
        if progress is not None:
            progress(done, total)

    for f in version.lineage.files:
        registry.download_model_version_file(
            version.name, version.version, f.path, model_path(staged, f.path), on_bytes=advance
        )


def _download(
    source: ModelSource,
    tracking: TrackingClient,
    registry: RegistryClient,
    target: Path,
    progress: Progress | None,
) -> None:
    """Downloads into a staging directory beside ``target``, verifies, then renames into place."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.staging-"))
    try:
        try:
            if source.model_version is not None:
                staged = staging / "model"
                _download_version(source.model_version, registry, staged, progress)
            else:
                staged = Path(
                    tracking.download_artifacts(
                        source.run_id, source.artifact_path, staging, progress=progress
                    )
                )
        except UnsafePathError as exc:  # a listing that names paths outside what was asked for
            raise unsafe_model_path(exc) from None
        except DataLoss as exc:  # the stored bytes no longer match what was recorded
            stored = exc.metadata.get("path", "")
            path = stored.removeprefix(source.artifact_path + "/")
            raise ModelIntegrityError(
                path or source.artifact_path, f"damaged in the artifact store ({exc.message})"
            ) from None
        _verify(staged, source.digests)
        # Files nobody recorded were not vouched for: they do not enter the cache, nor do directories
        # they leave empty. Only the staging directory made above is walked (os.walk follows no
        # symlink), never a path a server named.
        for parent, dirs, names in os.walk(staging, topdown=False):
            here = Path(parent)
            for name in names:
                extra = here / name
                if (
                    not extra.is_relative_to(staged)
                    or extra.relative_to(staged).as_posix() not in source.digests
                ):
                    extra.unlink()
            for name in dirs:
                with contextlib.suppress(OSError):  # not empty: it holds recorded files
                    (here / name).rmdir()
        try:
            staged.rename(target)
        except OSError:
            if not target.is_dir():
                raise
            # Another process renamed the same content into place first: keep theirs, once checked.
            _verify(target, source.digests)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _download_over(
    source: ModelSource,
    tracking: TrackingClient,
    registry: RegistryClient,
    target: Path,
    progress: Progress | None,
) -> None:
    """Into a directory that holds files: everything is downloaded and verified beside it first,
    then each model file replaces the file of its name in ``target``; other files stay."""
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.staging-"))
    try:
        staged = staging / "model"
        _download(source, tracking, registry, staged, progress)
        for path in source.digests:
            destination = model_path(target, path)  # refuses a symlink in target that leads out
            destination.parent.mkdir(parents=True, exist_ok=True)
            model_path(staged, path).replace(destination)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def fetch_model(
    model_uri: str,
    *,
    tracking: TrackingClient | None = None,
    registry: RegistryClient | None = None,
    dst_path: str | os.PathLike[str] | None = None,
    progress: Progress | None = None,
    overwrite: bool = False,
) -> FetchedModel:
    """Brings a model directory to local disk, verified; see the module docstring.

    ``model_uri`` may also be a local model directory, checked against its own ``files`` map.
    With ``dst_path`` the model's files are written into that directory instead of the cache: it
    must be absent or empty (FileExistsError otherwise) unless ``overwrite``, which writes the
    model's files over those of the same name and leaves the others. The clients default to the
    process-wide ones that ``modelreg.set_tracking_uri`` / ``set_registry_uri`` configure.
    """
    if not model_uri.startswith((MODELS_SCHEME, RUNS_SCHEME)) and Path(model_uri).is_dir():
        return FetchedModel(Path(model_uri), verify_model_dir(Path(model_uri)), None)
    from modelreg import fluent  # imported here: fluent sits above the flavors in the import graph

    tracking = tracking or fluent.tracking_client()
    registry = registry or fluent.registry_client()
    source = resolve_source(model_uri, tracking, registry)
    if dst_path is not None:
        target = Path(dst_path)
        if target.exists() and not target.is_dir():
            raise NotADirectoryError(f"{target} exists and is not a directory")
        if target.is_dir() and any(target.iterdir()):
            if not overwrite:
                raise FileExistsError(f"{target} exists and is not empty")
            _download_over(source, tracking, registry, target, progress)
        else:
            _download(source, tracking, registry, target, progress)
    else:
        return fetch_source(source, tracking, registry, progress)
    return _fetched(target, source)


def cached_model(source: ModelSource) -> FetchedModel | None:
    """The cache entry of ``source``, every file verified, without any network call; None when
    there is none. An entry that fails the check is local damage: it is dropped (None)."""
    target = cache_root() / "models" / source.tree_digest
    if not target.is_dir():
        return None
    try:
        _verify(target, source.digests)
    except ModelIntegrityError:
        shutil.rmtree(target, ignore_errors=True)
        return None
    return _fetched(target, source)


def fetch_source(
    source: ModelSource, tracking: TrackingClient, registry: RegistryClient, progress: Progress | None = None
) -> FetchedModel:
    """The files of an already resolved ``source`` in the cache (downloaded unless a verified
    entry is there), checked as :func:`fetch_model` checks them."""
    fetched = cached_model(source)
    if fetched is not None:
        return fetched
    target = cache_root() / "models" / source.tree_digest
    _download(source, tracking, registry, target, progress)
    return _fetched(target, source)


def _fetched(target: Path, source: ModelSource) -> FetchedModel:
    metadata = read_metadata(target)
    check_files(metadata, source.digests)
    return FetchedModel(target, metadata, source)
