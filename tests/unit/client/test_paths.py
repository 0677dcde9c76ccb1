"""modelreg.paths: a server-supplied path becomes a local one only inside the intended directory."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelreg.exceptions import DataLoss, UnsafePathError
from modelreg.paths import check_relative, safe_join

# Nothing written to disk (.hypothesis/), no per-example deadline on a busy machine.
PROPERTY: dict[str, Any] = {
    "database": None,
    "deadline": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
}

REFUSED = [
    "",
    "/etc/passwd",
    "/tmp/..",
    "../x",
    "../../../../x",
    "a/../../x",
    "a/..",
    "..",
    ".",
    "./a",
    "a/./b",
    "a//b",
    "a/",
    "a\\..\\..\\x",
    "..\\x",
    "C:/Windows",
    "c:x",
    "a\0b",
    "//server/share",
]


@pytest.mark.parametrize("path", REFUSED)
def test_refuses_paths_that_are_not_plain_and_relative(tmp_path: Path, path: str) -> None:
    with pytest.raises(UnsafePathError) as caught:
        safe_join(tmp_path, path)
    assert caught.value.path == path
    assert caught.value.reason == "UNSAFE_PATH"
    assert repr(path) in caught.value.message
    assert isinstance(caught.value, DataLoss)  # code catching a damaged download catches this too


@pytest.mark.parametrize("path", ["model.skops", "a/b/c.txt", "..a", "a..", ".hidden", "x y/é"])
def test_accepts_plain_relative_paths(tmp_path: Path, path: str) -> None:
    assert check_relative(path) == path
    assert safe_join(tmp_path, path) == tmp_path / path


def test_refuses_a_symlink_inside_the_base_that_points_out(tmp_path: Path) -> None:
    base, outside = tmp_path / "dst", tmp_path / "outside"
    base.mkdir()
    outside.mkdir()
    (base / "link").symlink_to(outside)
    (base / "file-link").symlink_to(outside / "victim")
    (base / "self").symlink_to(base)
    for path in ["link/x", "link", "file-link", "self"]:
        with pytest.raises(UnsafePathError, match="resolves outside"):
            safe_join(base, path)
    (base / "inner").mkdir()
    (base / "alias").symlink_to(base / "inner")
    assert safe_join(base, "alias/x") == base / "alias" / "x"  # a link that stays inside is fine


# Segments drawn so that generated paths are often hostile: traversal, separators, drive letters.
SEGMENTS = st.one_of(
    st.sampled_from(["", ".", "..", "...", "C:", "a", "link", "link2", "x\\..", "/", "\0"]),
    st.text(max_size=6),
)
PATHS = st.one_of(st.lists(SEGMENTS, max_size=6).map("/".join), st.text(max_size=20))


@pytest.fixture
def planted(tmp_path: Path) -> Path:
    """A base holding a symlink out of it and one that stays inside it."""
    base = tmp_path / "base"
    (base / "a").mkdir(parents=True)
    (tmp_path / "out").mkdir()
    (base / "link").symlink_to(tmp_path / "out")
    (base / "link2").symlink_to(base / "a")
    return base


@settings(**PROPERTY)
@given(path=PATHS)
def test_no_accepted_path_resolves_outside_the_base(planted: Path, path: str) -> None:
    try:
        joined = safe_join(planted, path)
    except UnsafePathError:
        return
    root = planted.resolve()
    resolved = joined.resolve()
    assert resolved != root and resolved.is_relative_to(root)
    assert os.path.commonpath([root, os.path.realpath(joined)]) == str(root)
    assert ".." not in path.split("/") and not path.startswith("/") and "\\" not in path


@settings(**PROPERTY)
@given(
    segments=st.lists(st.text(st.characters(exclude_characters="/\\\0"), min_size=1), min_size=1, max_size=5)
)
def test_plain_relative_paths_are_kept_as_they_are(tmp_path: Path, segments: list[str]) -> None:
    path = "/".join(segments)
    if any(s in (".", "..") for s in segments) or (
        len(path) > 1 and path[1] == ":" and path[0].isascii() and path[0].isalpha()
    ):
        with pytest.raises(UnsafePathError):
            check_relative(path)
    else:
        assert check_relative(path) == path
