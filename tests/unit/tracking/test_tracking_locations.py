"""Experiment artifact locations: only at or under the server's artifact roots, compared segment
by segment, never where default locations go, and refused before any store call; segments of
locations and artifact paths within a file name's limit; the extra roots setting that lists more
roots."""

from __future__ import annotations

import posixpath
import re
from typing import Any, cast
from urllib.parse import unquote

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from modelreg_server.context import CallContext
from modelreg_server.errors import InvalidArgumentError
from tests.unit.tracking.test_tracking_service import Unreachable
from tracking_service.artifacts import ArtifactStore
from tracking_service.config import ConfigError, Settings
from tracking_service.domain import rules
from tracking_service.domain.service import TrackingService
from tracking_service.store import TrackingStore

CTX = CallContext(actor="alice", request_id="req-test")
ROOTS = ("file:///data/art", "s3://bucket/prefix")
ROOT_SEGMENTS = tuple(segments for root in ROOTS if (segments := rules.root_segments(root)))

ACCEPTED = {
    "file:///data/art/team/exp-1": "file:///data/art/team/exp-1",
    "file:///data/art/team/": "file:///data/art/team",
    "file:///data/art/v2": "file:///data/art/v2",
    "file:///data/art/team/17": "file:///data/art/team/17",
    "file:///data/art/" + "é" * 127 + "a": "file:///data/art/" + "é" * 127 + "a",  # 255 bytes
    "s3://bucket/prefix": "s3://bucket/prefix",
    "s3://bucket/prefix/team/": "s3://bucket/prefix/team",
    "s3://bucket/prefix/7": "s3://bucket/prefix/7",  # digits: defaults go under the artifact root only
}
REFUSED = {
    "another directory": "file:///any/dir",
    "another bucket": "s3://another-bucket/x",
    "the root's name as a string prefix": "file:///data/artifacts-evil",
    "a key prefix as a string prefix": "s3://bucket/prefix-evil/x",
    "the bucket above the prefix": "s3://bucket",
    "the directory above the root": "file:///data",
    "a '..' segment": "file:///data/art/../etc",
    "a '..' at the end": "file:///data/art/team/..",
    "a '.' segment": "file:///data/art/./x",
    "an empty segment": "file:///data/art//x",
    "a percent-encoded '..'": "file:///data/art/%2e%2e/x",
    "a percent-encoded '/'": "file:///data/art%2F..%2Fx",
    "a NUL": "file:///data/art/a\x00b",
    "a control character": "file:///data/art/a\nb",
    "a query": "s3://bucket/prefix/x?versionId=1",
    "a fragment": "file:///data/art/x#y",
    "a backslash": "file:///data/art/..\\..\\x",
    "the staging area": "s3://bucket/prefix/.modelreg-staging",
    "inside the staging area": "file:///data/art/.modelreg-staging/x",
    "a file host": "file://host/data/art/x",
    "a relative file path": "file://data/art/x",
    "an upper-case scheme": "FILE:///data/art/x",
    "another scheme": "http://bucket/prefix/x",
    "no scheme": "/data/art/x",
    "the artifact root itself": "file:///data/art",
    "the artifact root with a '/'": "file:///data/art/",
    "the Default experiment's location": "file:///data/art/0",
    "inside a future default location": "file:///data/art/12/x",
    "a segment of 256 bytes": "file:///data/art/" + "é" * 128,
}


@pytest.fixture
def guarded() -> TrackingService:
    """A service over stores no call may reach: a location must be refused before the store."""
    return TrackingService(
        cast(TrackingStore, Unreachable()), cast(ArtifactStore, Unreachable()), artifact_roots=ROOTS
    )


@pytest.mark.parametrize(("location", "normal"), ACCEPTED.items(), ids=list(ACCEPTED))
def test_a_location_at_or_under_a_root_is_accepted(location: str, normal: str) -> None:
    assert rules.artifact_location(location, ROOT_SEGMENTS) == normal


@pytest.mark.parametrize("location", REFUSED.values(), ids=list(REFUSED))
def test_any_other_location_is_invalid_before_the_store(guarded: TrackingService, location: str) -> None:
    with pytest.raises(InvalidArgumentError) as refused:
        guarded.create_experiment(CTX, "e", location)
    error = refused.value
    assert (error.reason, error.metadata) == ("INVALID_ARTIFACT_LOCATION", {"field": "artifact_location"})
    assert "artifact_location" in error.message


def test_a_root_is_matched_verbatim_and_only_what_lies_below_it_must_be_clean() -> None:
    """``Path.as_uri()`` writes '%20' for a space, and the stores use names verbatim: such a root
    is one segment like any other, while a '%' below it is refused."""
    root = rules.root_segments("file:///home/a%20b/art")
    assert root is not None
    assert rules.artifact_location("file:///home/a%20b/art/x", [root]) == "file:///home/a%20b/art/x"
    for location in ("file:///home/a b/art/x", "file:///home/a%20b/art/%2e%2e", "file:///home/a%20b%2Fart/x"):
        with pytest.raises(InvalidArgumentError):
            rules.artifact_location(location, [root])


def test_the_message_does_not_reveal_the_roots(guarded: TrackingService) -> None:
    with pytest.raises(InvalidArgumentError) as refused:
        guarded.create_experiment(CTX, "e", "s3://another-bucket/x")
    assert "s3://another-bucket/x" in refused.value.message  # the caller's own value
    assert not any(part in refused.value.message for part in ("/data/art", "bucket/prefix"))


def _as_path(uri: str) -> str | None:
    """The URI as one absolute posix path, an s3 bucket being its first segment."""
    if uri.startswith("file://"):
        path = uri.removeprefix("file://")
        return path if path.startswith("/") else None
    return "/" + uri.removeprefix("s3://") if uri.startswith("s3://") else None


def _oracle(location: str) -> bool:
    """Independently of rules: the location is its own normal form (neither posix
    normalization nor percent-decoding changes it) and its path lies under a root's path, of the
    same scheme, outside the staging area and where defaults go: not at or above the artifact
    root's path, nor in a directory of digits right under it."""
    path = _as_path(location)
    if path is None or unquote(path) != path or any(c in path for c in "\\\x00?#"):
        return False
    if posixpath.normpath(path) != path or ".modelreg-staging" in path.split("/"):
        return False
    if location.startswith("file://"):  # ROOTS[0], the artifact root, is /data/art
        common = posixpath.commonpath([path, "/data/art"])
        first_below = posixpath.relpath(path, "/data/art").split("/")[0]
        if common == path or (common == "/data/art" and re.fullmatch("[0-9]+", first_below)):
            return False
    return any(
        location.startswith(root.split("://")[0] + "://")
        and posixpath.commonpath([path, root_path]) == root_path
        for root in ROOTS
        if (root_path := _as_path(root)) is not None
    )


# Locations built mostly from the roots and hostile segments, so most examples come close.
SEGMENT = st.sampled_from(
    ["", ".", "..", "art", "artifacts-evil", "prefix", "prefix-evil", "bucket", "data", "x", "%2e%2e",
     ".modelreg-staging", "a\x00", "b?c", "d#e", "\\..", "%2F", "0", "42", "4a"]
)  # fmt: skip
LOCATION = st.one_of(
    st.builds(
        lambda start, segments: "/".join([start, *segments]),
        st.sampled_from(
            ["file://", "file:///data", "file:///data/art", "s3://bucket", "s3://bucket/prefix", "s3:/"]
        ),
        st.lists(SEGMENT, max_size=4),
    ),
    st.text(alphabet="fiels3:/.%2eartxbucketprfix\x00\\", max_size=40),
)


@settings(database=None, deadline=None, max_examples=400)
@given(location=LOCATION)
def test_no_accepted_location_lies_outside_the_roots(location: str) -> None:
    try:
        accepted = rules.artifact_location(location, ROOT_SEGMENTS)
    except InvalidArgumentError:
        return
    assert accepted == location.rstrip("/")
    assert location == "" or _oracle(accepted), accepted  # "" is the default location


# Segments of one- to four-byte characters, on both sides of the 255-byte limit.
SEGMENTS = st.lists(st.text(alphabet="aé€𝄞", min_size=60, max_size=256), min_size=1, max_size=3)


@settings(database=None, deadline=None)
@given(segments=SEGMENTS)
@example(["é" * 127 + "a"]).via("255 bytes")
@example(["d", "é" * 128]).via("256 bytes")
def test_a_segment_over_255_bytes_is_refused_in_paths_and_locations(segments: list[str]) -> None:
    """Longer is no file name (ENAMETOOLONG): it would pass, then fail every upload as INTERNAL."""
    within = all(len(segment.encode()) <= rules.MAX_SEGMENT_BYTES for segment in segments)
    path = "/".join(segments)
    checks = {
        "path": lambda: rules.artifact_path(path),
        "artifact_location": lambda: rules.artifact_location(f"file:///data/art/team/{path}", ROOT_SEGMENTS),
    }
    for field, check in checks.items():
        try:
            check()
        except InvalidArgumentError as refused:
            assert not within
            assert refused.metadata == {"field": field}
            assert "255" in refused.message
        else:
            assert within


def _settings(**env: str) -> Settings:
    return Settings.from_env({"MODELREG_ARTIFACT_ROOT": "file:///data/art", **env})


def test_extra_roots_are_normalized_like_the_root() -> None:
    settings_ = _settings(MODELREG_ARTIFACT_EXTRA_ROOTS=" file:///old/art/ ,file:///mnt/more,")
    assert settings_.artifact_roots == ("file:///data/art", "file:///old/art", "file:///mnt/more")
    assert Settings().extra_artifact_roots == ()


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"MODELREG_ARTIFACT_EXTRA_ROOTS": "s3://bucket/x"}, "MODELREG_ARTIFACT_EXTRA_ROOTS"),
        ({"MODELREG_ARTIFACT_EXTRA_ROOTS": "gs://bucket/x"}, "MODELREG_ARTIFACT_EXTRA_ROOTS"),
        ({"MODELREG_ARTIFACT_ROOT": "s3://bucket/a/../b"}, "MODELREG_ARTIFACT_ROOT"),
        ({"MODELREG_ARTIFACT_ROOT": "s3://bucket/a//b"}, "MODELREG_ARTIFACT_ROOT"),
    ],
)
def test_a_root_the_store_cannot_serve_is_a_settings_error(env: dict[str, str], names: str) -> None:
    s3: dict[str, Any] = {
        "MODELREG_S3_ENDPOINT": "h:1",
        "MODELREG_S3_ACCESS_KEY": "k",
        "MODELREG_S3_SECRET_KEY": "s",
    }
    with pytest.raises(ConfigError, match=names):
        _settings(**env, **s3)
