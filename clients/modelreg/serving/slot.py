"""The model a ``modelreg serve`` process serves, and its hot swap.

A :class:`ModelSlot` resolves its model URI through the registry (``models:/Name/N`` pinned,
``models:/Name@alias``, ``models:/Name/Stage``, ``models:/Name/latest``) or the tracking service
(``runs:/...``), brings the files into the digest-verified cache (:mod:`modelreg.models.fetch`) and
loads them as a pyfunc model. A candidate is checked before it is served: it loads (known flavor,
every digest passes), its signature is recorded (or its absence), and when the model directory
stores an input example the model predicts on it and, with a signature, the example conforms to
it. A model that stores no example skips that step; ``metadata["checks"]`` says which ran.

Following: for ``@alias``, ``/Stage`` and ``/latest`` URIs a daemon thread watches the model's
events (``watch_model_events``, which reconnects by itself) and, on any event that can move the
target (and once per (re)connection, to catch up), a second daemon thread resolves the URI again
and, when it names another version, downloads, loads and checks it, then swaps it in: one
reference assignment under a lock. Leases count the requests in flight per version; the old
version's references are dropped when its last lease ends, so requests in flight finish on it. A
version that fails the check is never served: the old one stays, a ``load_failed`` event is
emitted (and the registry told, when the client can), and that version is not tried again until
the target moves to another one.

Offline: after every version served from the registry the slot records, under the cache directory
(``serving/<sha256 of the URI>.json``), what the URI resolved to: name, version, tree digest and
the sha256 of every file. When the registry (or tracking, for ``runs:/``) is unreachable at start,
the record of the URI (for a pinned URI, of that version served under any URI) names the cache
entry to load, whose files must verify against the digests recorded there; the record is read as
untrusted input (fields validated, paths kept inside the cache). The slot then serves that
version, emits ``offline_start`` and swaps as soon as the registry answers again.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import hashlib
import json
import logging
import os
import re
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from modelreg import pyfunc
from modelreg.client import Client
from modelreg.entities import ModelVersion
from modelreg.exceptions import DeadlineExceeded, ModelregError, Unavailable, UnsafePathError
from modelreg.models.fetch import (
    FetchedModel,
    ModelSource,
    cache_root,
    cached_model,
    fetch_source,
    resolve_source,
    version_source,
)
from modelreg.models.model_dir import read_input_example
from modelreg.models.signature import ModelSignature
from modelreg.paths import check_relative
from modelreg.pyfunc import PyFuncModel
from modelreg.uris import ModelsUri, RunsUri, parse_model_uri

log = logging.getLogger("modelreg.serving")

# Events that can move each kind of target; the watch is filtered to them. A rename or deletion of
# the model is included: the URI then names nothing, and the slot keeps serving what it has.
_MODEL_GONE = ("MODEL_RENAMED", "MODEL_DELETED", "VERSION_DELETED")
_MOVING_ACTIONS: Mapping[str, tuple[str, ...]] = {
    "alias": ("ALIAS_SET", "ALIAS_MOVED", "ALIAS_DELETED", *_MODEL_GONE),
    "stage": ("STAGE_TRANSITIONED", "STAGE_ROLLED_BACK", *_MODEL_GONE),
    "latest": ("VERSION_CREATED", *_MODEL_GONE),
}
# The errors that mean "the service is not reachable now" (the client has already retried them per
# MODELREG_RETRY_SECONDS), as opposed to an answer (NOT_FOUND, PERMISSION_DENIED, ...).
_UNREACHABLE = (Unavailable, DeadlineExceeded)
# Pause between two attempts to open the watch after it gave up (it retries by itself before).
FOLLOW_RETRY_SECONDS = 5.0
# What ReportServingStatus takes: one line of at most 1,024 characters without control or bidi
# characters, and an instance name of at most 128.
REPORT_DETAIL_CHARS = 1024
START_REPORT_SECONDS = 5.0
_NOT_REPORTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
INSTANCE = _NOT_REPORTABLE.sub("?", socket.gethostname())[:128]
# Bounds of a serving record (an untrusted file): its size, its number of files, a name's length.
MAX_RECORD_BYTES = 8 * 1024 * 1024
MAX_RECORD_FILES = 100_000
_MAX_NAME_LENGTH = 250
_SHA256 = re.compile(r"[0-9a-f]{64}")
_RUN_ID = re.compile(r"[0-9a-f]{32}")
RECORD_FORMAT = 1

EventKind = Literal["loaded", "swapped", "load_failed", "offline_start", "follow_lost", "follow_restored"]


class ServingLoadError(Exception):
    """Nothing can be served; the message is one clear line."""


class NotLoadedError(ServingLoadError):
    """A lease was asked for before a model was loaded (before ``start`` succeeded)."""


@dataclass(frozen=True)
class LoadedVersion:
    name: str | None  # registered model name (None for runs:/ URIs)
    version: int | None  # registry version number (None for runs:/ URIs)
    model: PyFuncModel
    signature: ModelSignature | None
    # JSON-able, for GET /metadata: model_uri (as asked), served_uri, name, version, run_id,
    # source, flavor, tree_digest, files {path: sha256}, signature, loaded_at (RFC 3339),
    # from_cache_offline, checks {"signature": "present"|"absent",
    # "input_example": "predicted"|"not stored"}.
    metadata: Mapping[str, Any]


@dataclass(frozen=True)
class SlotEvent:
    kind: EventKind
    version: int | None  # the version concerned
    previous: int | None  # for "swapped"
    seconds: float | None  # load+check duration (loaded/swapped/load_failed)
    detail: str  # one human line (error message for load_failed / offline warning)


class _CheckFailed(Exception):
    """A candidate loaded but failed its check (the message says which)."""


class _Stopped(Exception):
    """Raised from the watch's status callback to end the watch when the slot stops."""


class _Held:
    """One served version and its leases; ``loaded`` is dropped when it is no longer current and
    its last lease ends."""

    def __init__(self, loaded: LoadedVersion) -> None:
        self.loaded: LoadedVersion | None = loaded
        self.leases = 0


def _now_rfc3339() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _one_line(error: BaseException) -> str:
    text = str(error) or type(error).__name__
    return " ".join(text.split())


class ModelSlot:
    """The served model of one URI; see the module docstring.

    ``trusted_types``, ``allow_pickle`` and ``allow_code`` are passed to the loader (see
    :func:`modelreg.pyfunc.load_model`): by default only skops scikit-learn models load.
    ``on_event`` is called from the slot's threads (and from ``start``); what it raises is logged
    and otherwise ignored.
    """

    def __init__(
        self,
        model_uri: str,
        client: Client,
        *,
        on_event: Callable[[SlotEvent], None] = lambda event: None,
        trusted_types: Sequence[str] = (),
        allow_pickle: bool = False,
        allow_code: bool = False,
        follow_retry_seconds: float = FOLLOW_RETRY_SECONDS,
    ) -> None:
        try:
            self._parsed = parse_model_uri(model_uri)
        except ModelregError as exc:
            raise ServingLoadError(_one_line(exc)) from None
        self.model_uri = model_uri
        self._client = client
        self._on_event = on_event
        self._load_options: dict[str, Any] = {
            "trusted_types": tuple(trusted_types),
            "allow_pickle": allow_pickle,
            "allow_code": allow_code,
        }
        self._follow_retry_seconds = follow_retry_seconds
        self._lock = threading.Lock()
        self._held: _Held | None = None
        self._retired: list[_Held] = []  # no longer current, still leased
        self._following = False
        self._ever_lost = False
        self._stop = threading.Event()
        self._wake = threading.Event()  # the target may have moved: resolve again
        self._threads: list[threading.Thread] = []
        # Versions that failed their check, not tried again until the target moves elsewhere.
        self._failed: set[int] = set()
        self._last_target: int | None = None

    # Public API

    @property
    def current(self) -> LoadedVersion | None:
        held = self._held
        return None if held is None else held.loaded

    @property
    def following(self) -> bool:
        """True while the watch stream is connected (False for URIs that are not followed)."""
        return self._following

    @property
    def follows(self) -> bool:
        """Whether this URI is followed at all (``@alias``, ``/Stage``, ``/latest``)."""
        return isinstance(self._parsed, ModelsUri) and self._parsed.kind != "version"

    @property
    def failed_versions(self) -> frozenset[int]:
        """Versions refused by the check and not retried until the target moves elsewhere."""
        with self._lock:
            return frozenset(self._failed)

    def in_flight(self) -> dict[int | None, int]:
        """Leases held now, by version (the current and the retired versions still leased)."""
        with self._lock:
            held = [h for h in (self._held, *self._retired) if h is not None and h.loaded is not None]
            counts: dict[int | None, int] = {}
            for h in held:
                assert h.loaded is not None
                counts[h.loaded.version] = counts.get(h.loaded.version, 0) + h.leases
            return counts

    def start(self) -> None:
        """Loads the model (from the cache when the services are unreachable, see the module
        docstring), then starts following for ``@alias``, ``/Stage`` and ``/latest`` URIs.
        Raises ServingLoadError when nothing can be served."""
        if self._held is not None:
            return
        began = time.monotonic()
        try:
            version, source = self._resolve()
        except _UNREACHABLE as exc:
            self._start_offline(exc)
        except ModelregError as exc:
            raise ServingLoadError(f"cannot resolve {self.model_uri}: {_one_line(exc)}") from None
        else:
            try:
                loaded = self._load(source, version)
            except _UNREACHABLE as exc:
                self._start_offline(exc)
            except Exception as exc:  # whatever stops a candidate from loading or passing its check
                number = None if version is None else int(version.version)
                # The process exits on this error: give the report a moment to reach the registry.
                self._report_status(number, False, _one_line(exc), wait_seconds=START_REPORT_SECONDS)
                raise ServingLoadError(
                    f"cannot serve {self.model_uri}{_version_text(number)}: {_one_line(exc)}"
                ) from None
            else:
                self._last_target = loaded.version
                self._install(loaded)
                self._record(loaded, source)
                self._emit("loaded", loaded.version, None, time.monotonic() - began, _describe(loaded))
                self._report_status(loaded.version, True, f"serving {_describe(loaded)}")
        if self.follows:
            self._start_threads()

    def stop(self, timeout: float = 10.0) -> None:
        """Stops following (idempotent). The served model stays loaded for leases."""
        self._stop.set()
        self._wake.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._following = False

    @contextlib.contextmanager
    def lease(self) -> Iterator[LoadedVersion]:
        """The current version, kept alive until the block exits (a swap meanwhile does not
        affect it). NotLoadedError before a model is loaded."""
        with self._lock:
            held = self._held
            if held is None or held.loaded is None:
                raise NotLoadedError(f"no model of {self.model_uri} is loaded yet")
            held.leases += 1
            loaded = held.loaded
        try:
            yield loaded
        finally:
            with self._lock:
                held.leases -= 1
                if held is not self._held and held.leases == 0:
                    self._release(held)

    # Loading and checking

    def _resolve(self) -> tuple[ModelVersion | None, ModelSource]:
        if isinstance(self._parsed, ModelsUri):
            version = self._client.registry.resolve_model_uri(self._parsed.uri)
            return version, version_source(version)
        return None, resolve_source(self._parsed.uri, self._client.tracking, self._client.registry)

    def _load(self, source: ModelSource, version: ModelVersion | None) -> LoadedVersion:
        """Downloads (unless cached), loads and checks a candidate; raises when it cannot be served."""
        fetched = fetch_source(source, self._client.tracking, self._client.registry)
        name = version.name if version is not None else None
        number = int(version.version) if version is not None else None
        return self._loaded(fetched, name, number, from_cache_offline=False)

    def _loaded(
        self, fetched: FetchedModel, name: str | None, number: int | None, *, from_cache_offline: bool
    ) -> LoadedVersion:
        model = pyfunc.load_fetched(fetched, self._parsed.uri, **self._load_options)
        checks = self._check(model, fetched)
        return _loaded_version(self.model_uri, name, number, model, fetched, checks, from_cache_offline)

    def _check(self, model: PyFuncModel, fetched: FetchedModel) -> dict[str, str]:
        metadata = model.metadata
        signature = metadata.signature
        checks = {"signature": "absent" if signature is None else "present"}
        if metadata.input_example is None:
            checks["input_example"] = "not stored"
            return checks
        try:
            example = read_input_example(fetched.path, metadata)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise _CheckFailed(f"its input example cannot be read: {_one_line(exc)}") from None
        if signature is not None:
            _conforms(example, signature)
        try:
            model.predict(example)
        except Exception as exc:  # any failure of the model's own code refuses it
            raise _CheckFailed(f"prediction on its input example failed: {_one_line(exc)}") from None
        checks["input_example"] = "predicted"
        return checks

    # Serving state

    def _install(self, loaded: LoadedVersion) -> LoadedVersion | None:
        """Makes ``loaded`` current (the atomic swap); returns the previous version."""
        new = _Held(loaded)
        with self._lock:
            old, self._held = self._held, new
            if old is None:
                return None
            previous = old.loaded
            if old.leases == 0:
                self._release(old)
            else:
                self._retired.append(old)
            return previous

    def _release(self, held: _Held) -> None:
        """Drops the references of a version no longer current and no longer leased (lock held)."""
        held.loaded = None
        if held in self._retired:
            self._retired.remove(held)

    # Following

    def _start_threads(self) -> None:
        for target, name in ((self._follow, "follow"), (self._reconcile_loop, "reconcile")):
            thread = threading.Thread(target=target, name=f"modelreg-slot-{name}", daemon=True)
            self._threads.append(thread)
            thread.start()

    def _on_watch_status(self, connected: bool) -> None:
        if self._stop.is_set():
            raise _Stopped
        if connected == self._following:
            return
        self._following = connected
        if connected:
            self._wake.set()  # catch up on what the watch may not have seen
            if self._ever_lost:
                self._emit(
                    "follow_restored", self._current_version(), None, None, "following the registry again"
                )
        else:
            self._ever_lost = True
            self._emit(
                "follow_lost",
                self._current_version(),
                None,
                None,
                "lost the registry's event stream; still serving",
            )

    def _follow(self) -> None:
        assert isinstance(self._parsed, ModelsUri)
        actions = _MOVING_ACTIONS[self._parsed.kind]
        while not self._stop.is_set():
            try:
                watch = self._client.watch_model_events(
                    self._parsed.name, actions=actions, on_status=self._on_watch_status
                )
                try:
                    for _event in watch:
                        self._wake.set()
                finally:
                    with contextlib.suppress(Exception):
                        watch.close()
            except _Stopped:
                return
            except ModelregError as exc:
                self._on_status_quietly(False)
                log.warning("following %s: %s; trying again", self.model_uri, _one_line(exc))
            except Exception:  # never let the follower die: serving goes on, following resumes
                self._on_status_quietly(False)
                log.exception("following %s failed; trying again", self.model_uri)
            self._stop.wait(self._follow_retry_seconds)

    def _on_status_quietly(self, connected: bool) -> None:
        with contextlib.suppress(_Stopped):
            self._on_watch_status(connected)

    def _reconcile_loop(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self._reconcile()
            except Exception:  # serving goes on with the current version
                log.exception("updating %s failed; still serving the current version", self.model_uri)

    def _reconcile(self) -> None:
        """Resolves the URI again and swaps in the version it names when that one differs."""
        try:
            version = self._client.registry.resolve_model_uri(self._models_uri())
        except ModelregError as exc:
            log.warning("resolving %s: %s; still serving the current version", self.model_uri, _one_line(exc))
            return
        number = int(version.version)
        with self._lock:
            if number != self._last_target:
                self._failed.clear()  # the target moved: a version refused before may be tried again
                self._last_target = number
            if number in self._failed:
                return
        source = version_source(version)
        current = self.current
        if current is not None and current.version == number:
            if not current.metadata["from_cache_offline"]:
                return
            if current.metadata["tree_digest"] == source.tree_digest:
                # The registry vouches again for what was served from the cache: same files, same model.
                confirmed = {**current.metadata, "from_cache_offline": False}
                self._install(dataclasses.replace(current, metadata=confirmed))
                self._record(current, source)
                log.info("the registry confirms %s, served from the cache", _describe(current))
                return
            # Otherwise the same number names other files now: load what the registry names.
        began = time.monotonic()
        try:
            loaded = self._load(source, version)
        except _UNREACHABLE as exc:
            log.warning("loading %s version %d: %s; will try again", self.model_uri, number, _one_line(exc))
            return
        except Exception as exc:  # a version that cannot be loaded or checked is never served
            with self._lock:
                self._failed.add(number)
            detail = f"version {number} of {version.name} refused: {_one_line(exc)}"
            log.error("%s; still serving%s", detail, _version_text(self._current_version()))
            self._report_status(number, False, detail)
            self._emit("load_failed", number, None, time.monotonic() - began, detail)
            return
        previous = self._install(loaded)
        self._record(loaded, source)
        seconds = time.monotonic() - began
        previous_number = None if previous is None else previous.version
        self._emit("swapped", number, previous_number, seconds, f"now serving {_describe(loaded)}")
        self._report_status(number, True, f"serving {_describe(loaded)}")

    def _models_uri(self) -> str:
        assert isinstance(self._parsed, ModelsUri)
        return self._parsed.uri

    def _current_version(self) -> int | None:
        current = self.current
        return None if current is None else current.version

    # Offline start

    def _start_offline(self, cause: BaseException) -> None:
        began = time.monotonic()
        why = _one_line(cause)
        record = _read_record(self._parsed)
        if record is None:
            raise ServingLoadError(
                f"cannot serve {self.model_uri}: the registry is unreachable ({why}) and no earlier "
                "start recorded what it resolved to"
            )
        try:
            loaded = self._load_recorded(record)
        except Exception as exc:  # whatever stops it from loading or passing its check
            raise ServingLoadError(
                f"cannot serve {self.model_uri}: the registry is unreachable ({why}) and the cached "
                f"{_record_text(record)} cannot be served: {_one_line(exc)}"
            ) from None
        self._last_target = loaded.version
        self._ever_lost = True  # the first connection to the registry is a restored one
        self._install(loaded)
        detail = (
            f"registry unreachable ({why}): serving {_record_text(record)} from the local cache, as "
            f"last resolved for {self.model_uri}; it may be out of date"
        )
        log.warning(detail)
        self._emit("offline_start", loaded.version, None, time.monotonic() - began, detail)

    def _load_recorded(self, record: _Record) -> LoadedVersion:
        source = ModelSource(record.run_id, record.artifact_path, record.files)
        fetched = cached_model(source)
        if fetched is None:
            raise ServingLoadError("its files are not in the local cache, or fail their recorded digests")
        return self._loaded(fetched, record.name, record.version, from_cache_offline=True)

    def _record(self, loaded: LoadedVersion, source: ModelSource) -> None:
        record = _Record(
            uri=self._parsed.uri,
            name=loaded.name,
            version=loaded.version,
            run_id=source.run_id,
            artifact_path=source.artifact_path,
            files=dict(source.digests),
        )
        try:
            for key in {self._parsed.uri, str(loaded.metadata["served_uri"])}:
                _write_record(key, record)
        except OSError as exc:  # serving goes on; only an offline start later would miss it
            log.warning("could not record what %s resolved to: %s", self.model_uri, exc)

    # Events

    def _emit(
        self, kind: EventKind, version: int | None, previous: int | None, seconds: float | None, detail: str
    ) -> None:
        try:
            self._on_event(SlotEvent(kind, version, previous, seconds, detail))
        except Exception:
            log.exception("the slot's event callback failed on %s", kind)

    def _report_status(
        self, version: int | None, loaded: bool, message: str, *, wait_seconds: float = 0.0
    ) -> None:
        """Records in the registry's history that this process loaded (or refused) ``version``, in
        a thread of its own: a slow or unreachable registry never delays serving or a swap. A
        caller about to exit waits up to ``wait_seconds`` for it (daemon threads die at exit)."""
        if not isinstance(self._parsed, ModelsUri) or version is None:
            return
        name = self._parsed.name

        def report() -> None:
            try:
                self._client.report_serving_status(
                    name,
                    version,
                    loaded=loaded,
                    detail=_NOT_REPORTABLE.sub("?", message)[:REPORT_DETAIL_CHARS],
                    instance=INSTANCE,
                )
            except Exception as exc:  # reporting must never stop serving
                log.warning("could not report serving status of version %s: %s", version, _one_line(exc))

        reporter = threading.Thread(target=report, name="modelreg-serving-report", daemon=True)
        reporter.start()
        reporter.join(wait_seconds)


def _version_text(version: int | None) -> str:
    return "" if version is None else f" (version {version})"


def _describe(loaded: LoadedVersion) -> str:
    return str(loaded.metadata["served_uri"])


def _loaded_version(
    model_uri: str,
    name: str | None,
    version: int | None,
    model: PyFuncModel,
    fetched: FetchedModel,
    checks: Mapping[str, str],
    from_cache_offline: bool,
) -> LoadedVersion:
    source = fetched.source
    assert source is not None
    served_uri = (
        f"models:/{name}/{version}" if name is not None else f"runs:/{source.run_id}/{source.artifact_path}"
    )
    signature = model.metadata.signature
    metadata: dict[str, Any] = {
        "model_uri": model_uri,
        "served_uri": served_uri,
        "name": name,
        "version": version,
        "run_id": source.run_id,
        "source": f"runs:/{source.run_id}/{source.artifact_path}",
        "flavor": model.metadata.flavor,
        "tree_digest": source.tree_digest,
        "files": dict(sorted(source.digests.items())),
        "signature": None if signature is None else signature.to_dict(),
        "loaded_at": _now_rfc3339(),
        "from_cache_offline": from_cache_offline,
        "checks": dict(checks),
    }
    return LoadedVersion(name, version, model, signature, metadata)


def _conforms(example: Any, signature: ModelSignature) -> None:
    """Checks the stored input example against the signature's inputs: every named column present,
    with a type that casts safely to the recorded one (tensors: dtype and fixed dimensions)."""
    import numpy as np
    import pandas as pd

    def castable(actual: Any, expected: str) -> bool:
        try:
            return str(actual) == expected or bool(np.can_cast(actual, np.dtype(expected), "same_kind"))
        except TypeError:
            return False

    for spec in signature.inputs:
        if spec.shape is not None:
            array = np.asarray(example)
            fixed = [(i, d) for i, d in enumerate(spec.shape) if i > 0 and d != -1]
            if array.ndim != len(spec.shape) or any(array.shape[i] != d for i, d in fixed):
                raise _CheckFailed(
                    f"its input example's shape {list(array.shape)} is not the signature's {list(spec.shape)}"
                )
            if not castable(array.dtype, spec.type):
                raise _CheckFailed(
                    f"its input example's type {array.dtype} is not the signature's {spec.type}"
                )
            continue
        if spec.name is None:
            continue
        if not isinstance(example, pd.DataFrame) or spec.name not in example.columns:
            raise _CheckFailed(f"its input example lacks the signature's column {spec.name!r}")
        if not castable(example[spec.name].dtype, spec.type):
            raise _CheckFailed(
                f"its input example's column {spec.name!r} is {example[spec.name].dtype}, "
                f"the signature's is {spec.type}"
            )


# Serving records: what a URI resolved to, for an offline start.


@dataclass(frozen=True)
class _Record:
    uri: str
    name: str | None
    version: int | None
    run_id: str
    artifact_path: str
    files: Mapping[str, str]

    @property
    def tree_digest(self) -> str:
        return ModelSource(self.run_id, self.artifact_path, self.files).tree_digest

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": RECORD_FORMAT,
            "uri": self.uri,
            "name": self.name,
            "version": self.version,
            "run_id": self.run_id,
            "artifact_path": self.artifact_path,
            "tree_digest": self.tree_digest,
            "files": dict(sorted(self.files.items())),
        }


def _record_text(record: _Record) -> str:
    if record.name is not None:
        return f"version {record.version} of {record.name}"
    return f"runs:/{record.run_id}/{record.artifact_path}"


def _record_path(key: str) -> Path:
    return cache_root() / "serving" / f"{hashlib.sha256(key.encode()).hexdigest()}.json"


def _write_record(key: str, record: _Record) -> None:
    path = _record_path(key)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = json.dumps({**record.to_dict(), "uri": key}, indent=1).encode()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)  # readers see the old record or the new one, never half of one
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _read_record(parsed: ModelsUri | RunsUri) -> _Record | None:
    """The valid record of the URI (for a pinned one, of that version served under any URI), or
    None; an invalid one is logged and ignored."""
    path = _record_path(parsed.uri)
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_RECORD_BYTES + 1)
    except FileNotFoundError:
        return None
    except OSError as exc:
        log.warning("serving record %s unreadable: %s", path, exc)
        return None
    try:
        return _parse_record(raw, parsed.uri, parsed)
    except ValueError as exc:
        log.warning("serving record %s ignored: %s", path, exc)
        return None


def _parse_record(raw: bytes, key: str, parsed: ModelsUri | RunsUri) -> _Record:
    """Validates a record read from disk (untrusted) against the URI it is for; ValueError says why."""
    if len(raw) > MAX_RECORD_BYTES:
        raise ValueError(f"larger than {MAX_RECORD_BYTES} bytes")
    data = json.loads(raw.decode("utf-8"))  # JSONDecodeError and UnicodeDecodeError are ValueErrors
    if not isinstance(data, dict) or data.get("format") != RECORD_FORMAT or data.get("uri") != key:
        raise ValueError("not a serving record of this URI")
    name, version = data.get("name"), data.get("version")
    run_id, artifact_path, files = data.get("run_id"), data.get("artifact_path"), data.get("files")
    if isinstance(parsed, ModelsUri):
        if name != parsed.name or not isinstance(version, int) or isinstance(version, bool):
            raise ValueError("name or version missing or not the URI's")
        if not 1 <= version < 10**18 or (parsed.kind == "version" and version != int(parsed.ref)):
            raise ValueError(f"version {version!r} out of range or not the URI's")
    else:
        if name is not None or version is not None or run_id != parsed.run_id:
            raise ValueError("a runs:/ record names no model, and the URI's run")
        if artifact_path != parsed.artifact_path:
            raise ValueError("artifact_path is not the URI's")
    if not isinstance(run_id, str) or not _RUN_ID.fullmatch(run_id):
        raise ValueError("run_id is not a run id")
    if not isinstance(artifact_path, str) or len(artifact_path) > 1024:
        raise ValueError("artifact_path is not a path")
    if artifact_path:
        try:
            check_relative(artifact_path)
        except UnsafePathError as exc:
            raise ValueError(f"artifact_path {artifact_path!r} {exc.why}") from None
    if isinstance(name, str) and len(name) > _MAX_NAME_LENGTH:
        raise ValueError("name too long")
    if not isinstance(files, dict) or not files or len(files) > MAX_RECORD_FILES:
        raise ValueError(f"files must map 1..{MAX_RECORD_FILES} paths to sha256 digests")
    for path, digest in files.items():
        if not isinstance(digest, str) or not _SHA256.fullmatch(digest):
            raise ValueError(f"files[{path!r}] is not a sha256 digest")
        try:
            check_relative(path)
        except UnsafePathError as exc:
            raise ValueError(f"files: {path!r} {exc.why}") from None
    record = _Record(key, name, version, run_id, artifact_path, {str(k): v for k, v in files.items()})
    if data.get("tree_digest") != record.tree_digest:
        raise ValueError("tree_digest does not match its files")
    return record
