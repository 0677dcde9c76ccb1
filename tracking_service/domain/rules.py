"""Validation of names, ids, params, metrics, tags and artifact paths, and run-name generation.

Limits are MLflow's (see modelreg_server.validation). Every check raises InvalidArgumentError with the
reason the contract names and ``{"field": ...}`` metadata. TrackingService runs them before it calls
the store, so the store only ever sees valid input.
"""

from __future__ import annotations

import math
import re
import secrets
from collections.abc import Iterable, Mapping, Sequence

from modelreg_server.errors import InvalidArgumentError
from modelreg_server.validation import (
    MAX_EXPERIMENT_ID,
    MAX_PARAM_VALUE_LENGTH,
    MAX_TAG_VALUE_LENGTH,
    check_tags,
    mapping_bytes,
    require_key,
    require_name,
    require_run_id,
    require_value,
    text_bytes,
    within_limit,
)
from tracking_service.artifacts.base import STAGING_DIR
from tracking_service.domain.entities import Experiment, MetricPoint, Param, Run
from tracking_service.domain.errors import BatchTooLarge, InvalidArtifactPath, ParamValueConflict

MAX_BATCH_METRICS = 1000
MAX_BATCH_PARAMS = 100
MAX_BATCH_TAGS = 100
MAX_STREAM_BATCH_METRICS = 10_000
MAX_ARTIFACT_PATH_LENGTH = 1024
# A file name's limit on nearly every file system (NAME_MAX), and so where clients download to:
# a longer segment of a location or path could only ever fail, and on the server as INTERNAL.
MAX_SEGMENT_BYTES = 255
SEARCH_PAGE_DEFAULT, SEARCH_PAGE_MAX = 1000, 50_000
HISTORY_PAGE_DEFAULT, HISTORY_PAGE_MAX = 25_000, 100_000

# What one run or experiment may hold, so that any one of them serializes well under the 8 MiB
# gRPC message limit and under the 4 MiB a listing page may take (README, "Limits"). A write that
# would leave it over a cap is RESOURCE_EXHAUSTED and keeps nothing; the store counts what is
# stored, under the run's (experiment's) row lock, so concurrent writers cannot both slip under.
# Setting a key again replaces its value: it counts once. A run at its caps is at most
# 1 MiB of params and tags + 1,000 latest metrics (< 300 kB) + per-entry framing: < 1.5 MB.
MAX_RUN_TAGS = 1000
MAX_RUN_PARAMS = 1000
MAX_RUN_METRIC_KEYS = 1000
# UTF-8 bytes of the keys and values of a run's params and tags together.
MAX_RUN_DATA_BYTES = 1024 * 1024
# A run's artifact files and the UTF-8 bytes of their paths: ListArtifacts, SealArtifacts and the
# lineage of a version registered from the run list them (< 2 MB at the caps).
MAX_RUN_ARTIFACTS = 10_000
MAX_RUN_ARTIFACT_PATH_BYTES = 1024 * 1024
MAX_EXPERIMENT_TAGS = 1000
MAX_EXPERIMENT_TAG_BYTES = 1024 * 1024
# Page size estimates (modelreg_server.pagination): a row's fixed fields, and the framing of one
# map entry or metric around its text (field tags, lengths, a double and two varints).
ROW_OVERHEAD, ENTRY_OVERHEAD, METRIC_OVERHEAD = 128, 16, 48

_EXPERIMENT_ID = re.compile(r"[0-9]{1,10}")
# MLflow's metric-key alphabet: letters, digits, and _ - . space /.
_METRIC_KEY = re.compile(r"[\w\-. /]+")


def run_id(value: str, field: str = "run_id") -> str:
    return require_run_id(value, field)


def experiment_id(value: str, field: str = "experiment_id") -> int:
    if not _EXPERIMENT_ID.fullmatch(value) or int(value) > MAX_EXPERIMENT_ID:
        raise InvalidArgumentError(
            "INVALID_EXPERIMENT_ID",
            f"{field} must be a decimal id from 0 to {MAX_EXPERIMENT_ID}, got '{value[:64]}'",
            {"field": field},
        )
    return int(value)


_SHA256 = re.compile(r"[0-9a-fA-F]{64}")


def expected_sha256(value: str | None) -> str | None:
    """A digest an upload must match: None (none given) or 64 hex digits, checked before the
    upload is looked at, so a malformed one is named whatever else is wrong."""
    if value is not None and not _SHA256.fullmatch(value):
        raise InvalidArgumentError(
            "INVALID_SHA256", "expected_sha256 must be 64 hex digits", {"field": "expected_sha256"}
        )
    return value


def name(value: str, field: str = "name") -> str:
    return require_name(value, field)


def tags(values: Mapping[str, str], field: str = "tags") -> dict[str, str]:
    if len(values) > MAX_BATCH_TAGS:
        raise BatchTooLarge(field, len(values), MAX_BATCH_TAGS)
    return check_tags(values, field)


# MLflow's tags for a run's name and parent: modelreg keeps both in the run's columns (the client
# shows them as tags, searches map them to the columns: tracking_service.domain.filters).
RUN_NAME_TAG = "mlflow.runName"
PARENT_RUN_ID_TAG = "mlflow.parentRunId"


def column_tags(tags: dict[str, str], run_name: str, parent_run_id: str) -> tuple[str, str]:
    """The name and parent of a run being created, from its fields or, as MLflow's clients send
    them, from its ``mlflow.runName`` / ``mlflow.parentRunId`` tags (removed from ``tags``); a
    tag that differs from its field is INVALID_ARGUMENT."""
    fields = {RUN_NAME_TAG: ("run_name", run_name), PARENT_RUN_ID_TAG: ("parent_run_id", parent_run_id)}
    chosen: dict[str, str] = {}
    for tag_key, (field, value) in fields.items():
        tagged = tags.pop(tag_key, "")
        if value and tagged and tagged != value:
            raise InvalidArgumentError(
                "CONFLICTING_RUN_TAG",
                f"tag '{tag_key}' ('{tagged[:100]}') differs from {field} ('{value[:100]}')",
                {"field": f"tags.{tag_key}"},
            )
        chosen[field] = value or tagged
    return chosen["run_name"], chosen["parent_run_id"]


def no_column_tags(keys: Iterable[str], field: str = "tags") -> None:
    """Refuses ``mlflow.parentRunId`` (a run's parent is set when it is created) and, in a batch,
    ``mlflow.runName`` (rename a run with UpdateRun or SetTag): stored as tags they would be shadowed
    by the columns."""
    for key in keys:
        if key == RUN_NAME_TAG:
            why = "the run's name: rename the run with UpdateRun or SetTag"
        elif key == PARENT_RUN_ID_TAG:
            why = "the run's parent, set when the run is created"
        else:
            continue
        raise InvalidArgumentError("RESERVED_TAG", f"tag '{key}' is {why}", {"field": field, "key": key})


def run_size_limits(run_id: str, data_bytes: int, *, params: int | None, tags: int | None) -> None:
    """RESOURCE_EXHAUSTED unless a run holding ``params`` params and ``tags`` tags (None: not
    written, so not checked) and ``data_bytes`` of both together is within the caps."""
    owner = f"run '{run_id}'"
    written = []
    for field, count, limit in (("params", params, MAX_RUN_PARAMS), ("tags", tags, MAX_RUN_TAGS)):
        if count is not None:
            written.append(field)
            within_limit(owner, count, field, limit, f"TOO_MANY_{field.upper()}", field)
    field = " and ".join(written)
    within_limit(owner, data_bytes, "bytes of params and tags", MAX_RUN_DATA_BYTES, "RUN_TOO_LARGE", field)


def run_metric_keys_limit(count: int, run_id: str) -> None:
    within_limit(f"run '{run_id}'", count, "metric keys", MAX_RUN_METRIC_KEYS, "TOO_MANY_METRICS", "metrics")


def run_artifacts_limit(run_id: str, count: int, path_bytes: int) -> None:
    """RESOURCE_EXHAUSTED unless a run whose manifest holds ``count`` files whose paths take
    ``path_bytes`` is within the caps."""
    owner = f"run '{run_id}'"
    within_limit(owner, count, "artifact files", MAX_RUN_ARTIFACTS, "TOO_MANY_ARTIFACTS", "path")
    within_limit(
        owner,
        path_bytes,
        "bytes of artifact paths",
        MAX_RUN_ARTIFACT_PATH_BYTES,
        "ARTIFACTS_TOO_LARGE",
        "path",
    )


def experiment_size_limits(count: int, tag_bytes: int, experiment: str) -> None:
    owner = f"experiment {experiment}"
    within_limit(owner, count, "tags", MAX_EXPERIMENT_TAGS, "TOO_MANY_TAGS", "tags")
    within_limit(owner, tag_bytes, "bytes of tags", MAX_EXPERIMENT_TAG_BYTES, "EXPERIMENT_TOO_LARGE", "tags")


def new_run_tags(values: Mapping[str, str]) -> dict[str, str]:
    """The tags of a run being created: a batch's bounds, and the run's byte cap (a batch of 100
    tags may hold up to 3.3 MB of UTF-8)."""
    checked = tags(values)
    run_size_limits("(new)", mapping_bytes(checked), params=None, tags=len(checked))
    return checked


def new_experiment_tags(values: Mapping[str, str]) -> dict[str, str]:
    checked = tags(values)
    experiment_size_limits(len(checked), mapping_bytes(checked), "(new)")
    return checked


def run_bytes(run: Run) -> int:
    """What ``run`` takes in a response, estimated from its text (for pages sized by bytes)."""
    info, data = run.info, run.data
    # Each kind's text joined and measured at once: a page of runs has tens of thousands of them.
    text = "".join([p.key + p.value for p in data.params] + [m.key for m in data.metrics])
    info_text = (
        info.run_id + info.experiment_id + info.run_name + info.artifact_uri + (info.parent_run_id or "")
    )
    entries = ENTRY_OVERHEAD * (len(data.params) + len(data.tags)) + METRIC_OVERHEAD * len(data.metrics)
    return ROW_OVERHEAD + text_bytes(info_text + text) + mapping_bytes(data.tags) + entries


def experiment_bytes(experiment: Experiment) -> int:
    text = text_bytes(experiment.experiment_id + experiment.name + experiment.artifact_location)
    tag_bytes = mapping_bytes(experiment.tags) + ENTRY_OVERHEAD * len(experiment.tags)
    return ROW_OVERHEAD + text + tag_bytes


def metric_bytes(key: str) -> int:
    """What one point of metric ``key`` takes in a response: the points of a history page share
    their key, so the page is cut by arithmetic rather than row by row."""
    return METRIC_OVERHEAD + text_bytes(key)


def tag_key(key: str) -> str:
    """A tag key to look up or delete: the same bounds as one being set, so an error naming it
    stays small."""
    return require_key(key, "key", "INVALID_TAG")


def tag(key: str, value: str) -> None:
    require_key(key, "key", "INVALID_TAG")
    require_value(value, f"value of tag '{key}'", "INVALID_TAG", MAX_TAG_VALUE_LENGTH)


def param(p: Param) -> None:
    require_key(p.key, "param key", "INVALID_PARAM")
    require_value(p.value, f"value of param '{p.key}'", "INVALID_PARAM", MAX_PARAM_VALUE_LENGTH)


def metric_key(key: str) -> None:
    require_key(key, "metric key", "INVALID_METRIC")
    if not _METRIC_KEY.fullmatch(key):
        raise InvalidArgumentError(
            "INVALID_METRIC",
            f"metric key '{key[:100]}' may hold only letters, digits and _ - . space /",
            {"field": "metric key", "key": key},
        )


def metric_history_key(key: str) -> str:
    """A metric key to read: bounded like one being logged (a key that was never logged simply
    has no history, whatever its characters)."""
    return require_key(key, "metric_key", "INVALID_METRIC")


def negative_timestamp(key: str) -> InvalidArgumentError:
    return InvalidArgumentError(
        "INVALID_METRIC", f"timestamp of metric '{key}' is negative", {"field": "timestamp", "key": key}
    )


def metrics(points: Sequence[MetricPoint], limit: int) -> None:
    """Validates a batch of at most ``limit`` points. One pass that checks each key once: it runs
    for every point logged, so it reads each point's key and timestamp and nothing else."""
    batch_size(len(points), limit, "metrics")
    checked: set[str] = set()
    for point in points:
        key = point.key
        if key not in checked:
            metric_key(key)
            checked.add(key)
        if point.timestamp < 0:
            raise negative_timestamp(key)


def batch_size(count: int, limit: int, field: str) -> None:
    if count > limit:
        raise BatchTooLarge(field, count, limit)


def params(values: Iterable[Param]) -> dict[str, str]:
    """Validates a batch; a key repeated with another value is a conflict, with the same value a no-op."""
    batch = list(values)
    batch_size(len(batch), MAX_BATCH_PARAMS, "params")
    merged: dict[str, str] = {}
    for p in batch:
        param(p)
        if p.key in merged and merged[p.key] != p.value:
            raise ParamValueConflict(p.key, merged[p.key], p.value)
        merged[p.key] = p.value
    return merged


# A location's segments below its root may not hold control characters (NUL included), '%', '?',
# '#' or '\\': other tools decode or split on them, so one spelling could name two places.
_UNSAFE_SEGMENT = re.compile(r"[\x00-\x1f\x7f%?#\\]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_LOCATION_SCHEMES = ("file://", "s3://")
# Default locations are <artifact root>/<experiment id>: no custom location may take those names.
_DEFAULT_DIRECTORY = re.compile(r"[0-9]+")


def _split_location(uri: str) -> tuple[str, ...] | None:
    """``("file://", *path segments)`` or ``("s3://", bucket, *key segments)``; None for another
    scheme, a file URI with a host or a relative path, an s3 URI without a bucket, or control
    characters. Locations and roots compare as these tuples, segment by segment, so ``/data/art``
    never covers ``/data/artifacts-evil``."""
    scheme = next((s for s in _LOCATION_SCHEMES if uri.startswith(s)), None)
    if scheme is None or _CONTROL.search(uri):
        return None
    rest = uri.removeprefix(scheme)
    if scheme == "file://":
        if not rest.startswith("/"):
            return None
        rest = rest[1:]
    segments = tuple(rest.split("/")) if rest else ()
    return None if scheme == "s3://" and not segments else (scheme, *segments)


def _clean_segment(segment: str) -> bool:
    return segment not in ("", ".", "..", STAGING_DIR) and not _UNSAFE_SEGMENT.search(segment)


def root_segments(root: str) -> tuple[str, ...] | None:
    """A configured root as locations are compared with it; None when it has a '.', '..' or empty
    segment. The root's own segments may hold '%' and the like: ``Path.as_uri()`` writes them, and
    the stores use names verbatim."""
    segments = _split_location(root.rstrip("/"))
    if segments is None or any(segment in ("", ".", "..") for segment in segments[1:]):
        return None
    return segments


def under_roots(uri: str, roots: Sequence[tuple[str, ...]]) -> bool:
    """Whether ``uri`` is one of ``roots`` (as root_segments gives them) or lies below one, every
    segment below it clean: no '.', '..', empty segment, staging area or _UNSAFE_SEGMENT."""
    segments = _split_location(uri)
    return segments is not None and any(
        segments[: len(root)] == root and all(map(_clean_segment, segments[len(root) :])) for root in roots
    )


def _long_segment(segments: Iterable[str]) -> int | None:
    """The UTF-8 length of the first segment over MAX_SEGMENT_BYTES, if any."""
    return next((n for segment in segments if (n := len(segment.encode())) > MAX_SEGMENT_BYTES), None)


def _default_place(segments: tuple[str, ...], root: tuple[str, ...]) -> bool:
    """Whether the location of ``segments`` is ``root``, above it, or ``<root>/<digits>[/...]``:
    it would then hold, or lie inside, a present or future experiment's default location."""
    if root[: len(segments)] == segments:
        return True
    return segments[: len(root)] == root and bool(_DEFAULT_DIRECTORY.fullmatch(segments[len(root)]))


def artifact_location(value: str, roots: Sequence[tuple[str, ...]]) -> str:
    """An experiment's artifact location without trailing '/'; "" (the default) stays "".

    Only a location at or cleanly under one of ``roots`` (the server's artifact roots, the
    artifact root first) is accepted, and not the places of default locations: the artifact root
    itself, what lies above it, or a first segment below it of digits only. The message never
    shows the roots: they are the operator's to publish. Overlap with existing experiments is the store's check (ArtifactLocationInUse)."""
    require_value(value, "artifact_location", "INVALID_ARTIFACT_LOCATION", MAX_ARTIFACT_PATH_LENGTH)
    if not value:
        return value
    location = value.rstrip("/")
    if not under_roots(location, roots):
        raise InvalidArgumentError(
            "INVALID_ARTIFACT_LOCATION",
            f"artifact_location '{value[:200]}' must be a file:/// or s3:// URI under the server's "
            "artifact root (or a root its operator lists), with no '.', '..' or empty segments, "
            "control characters, '%', '?', '#', '\\' or staging area below it; leave it empty "
            "for the default",
            {"field": "artifact_location"},
        )
    segments = _split_location(location) or ()
    if (size := _long_segment(segments[1:])) is not None:
        raise InvalidArgumentError(
            "INVALID_ARTIFACT_LOCATION",
            f"artifact_location has a segment of {size} bytes (UTF-8), the limit is {MAX_SEGMENT_BYTES}",
            {"field": "artifact_location"},
        )
    if _default_place(segments, roots[0]):
        raise InvalidArgumentError(
            "INVALID_ARTIFACT_LOCATION",
            f"artifact_location '{value[:200]}' is where default locations go (the artifact root, "
            "or a first segment of digits only below it); choose another name or leave it empty",
            {"field": "artifact_location"},
        )
    return location


def enclosing_locations(location: str) -> list[str]:
    """``location`` (as artifact_location returns it) and every location above it, segment by
    segment: ``s3://b/p/x`` gives ``s3://b``, ``s3://b/p`` and ``s3://b/p/x``."""
    scheme, *segments = _split_location(location) or ("",)
    lead = scheme + ("/" if scheme == "file://" else "")
    return [lead + "/".join(segments[:end]) for end in range(1, len(segments) + 1)]


def artifact_path(path: str, *, allow_root: bool = False) -> str:
    """A relative '/'-separated path: no leading '/', backslash, NUL, '.', '..' or empty segment,
    nor a segment over MAX_SEGMENT_BYTES. The root ("") is a path only where ``allow_root``
    (listing and stat)."""
    if not path:
        if allow_root:
            return path
        raise InvalidArtifactPath(path, "must not be empty")
    if len(path) > MAX_ARTIFACT_PATH_LENGTH:
        raise InvalidArtifactPath(path, f"is {len(path)} characters, the limit is {MAX_ARTIFACT_PATH_LENGTH}")
    if path.startswith("/"):
        raise InvalidArtifactPath(path, "must be relative (no leading '/')")
    if "\\" in path or "\0" in path:
        raise InvalidArtifactPath(path, "must not contain backslashes or NUL characters")
    segments = path.split("/")
    if any(segment in ("", ".", "..") for segment in segments):
        raise InvalidArtifactPath(path, "must not contain '.', '..' or empty segments")
    if (size := _long_segment(segments)) is not None:
        raise InvalidArtifactPath(
            path, f"has a segment of {size} bytes (UTF-8), the limit is {MAX_SEGMENT_BYTES}"
        )
    return path


def rank(step: int, timestamp: int, value: float) -> tuple[int, int, float]:
    """MLflow's latest-metric rule as a sort key: the point with the largest rank is the latest.

    Larger step wins, then larger timestamp, then larger value; NaN ranks as 0, as MLflow stores
    it, so the rule is a total order.
    """
    return (step, timestamp, 0.0 if math.isnan(value) else value)


_ADJECTIVES = (
    "agile", "bold", "brave", "bright", "calm", "clever", "crisp", "daring", "eager", "fast",
    "gentle", "glad", "golden", "keen", "lively", "lucky", "merry", "nimble", "proud", "quick",
    "quiet", "rare", "sharp", "shiny", "silent", "smooth", "steady", "swift", "tidy", "wise",
)  # fmt: skip
_NOUNS = (
    "ant", "bass", "bear", "bee", "cat", "crab", "crow", "deer", "dove", "eel", "finch", "fox",
    "frog", "goat", "hare", "hawk", "heron", "lark", "lynx", "mole", "moth", "newt", "otter",
    "owl", "panda", "seal", "shrew", "slug", "snail", "wolf",
)  # fmt: skip


def generate_run_name() -> str:
    """A readable name in MLflow's style, e.g. ``swift-otter-417``."""
    return f"{secrets.choice(_ADJECTIVES)}-{secrets.choice(_NOUNS)}-{secrets.randbelow(1000):03d}"
