"""delete_tree, tree_usage and remove_empty_directory of both artifact stores: a tree goes whole,
what lies beside it stays, and the file store never follows a link nor leaves its roots."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from modelreg_server.errors import InvalidArgumentError
from tests.unit.artifacts.conftest import Target, file_target
from tracking_service.artifacts import TreeUsage


def test_delete_tree_removes_the_tree_and_nothing_beside_it(target: Target) -> None:
    for name, content in [
        ("0/run/artifacts/a.txt", b"abc"),
        ("0/run/artifacts/d/b.bin", b"12345"),
        ("0/run/artifacts-other/c", b"x"),
        ("0/run2/artifacts/e", b"yy"),
    ]:
        target.store.write(target.uri(name), [content])

    assert target.store.tree_usage(target.uri("0/run/artifacts")) == TreeUsage(2, 8)
    assert target.store.delete_tree(target.uri("0/run/artifacts")) == TreeUsage(2, 8)

    assert target.inventory() == {"0/run/artifacts-other/c", "0/run2/artifacts/e"}
    assert target.store.delete_tree(target.uri("0/run/artifacts")) == TreeUsage()  # nothing left: no error
    assert target.store.tree_usage(target.uri("0/absent/artifacts")) == TreeUsage()


def test_remove_empty_directory_removes_only_an_empty_one(tmp_path: Path) -> None:
    target = file_target(tmp_path / "artifacts")
    target.store.write(target.uri("5/run/artifacts/a"), [b"a"])
    target.store.delete_tree(target.uri("5/run/artifacts"))

    assert not target.store.remove_empty_directory(target.uri("5"))  # still holds 5/run
    assert target.store.remove_empty_directory(target.uri("5/run"))
    assert target.store.remove_empty_directory(target.uri("5"))
    assert not (tmp_path / "artifacts" / "5").exists()
    assert not target.store.remove_empty_directory(target.uri("5"))  # gone already


def test_links_are_removed_never_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious").write_bytes(b"keep me")
    target = file_target(tmp_path / "artifacts")
    target.store.write(target.uri("0/run/artifacts/model.bin"), [b"w"])
    run = tmp_path / "artifacts" / "0" / "run" / "artifacts"
    os.symlink(outside, run / "dir-link")
    os.symlink(outside / "precious", run / "file-link")

    assert target.store.delete_tree(target.uri("0/run/artifacts")) == TreeUsage(1, 1)

    assert not run.exists()
    assert (outside / "precious").read_bytes() == b"keep me"


def test_a_tree_reached_through_a_link_or_outside_the_roots_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    (outside / "run" / "artifacts").mkdir(parents=True)
    (outside / "run" / "artifacts" / "precious").write_bytes(b"keep me")
    target = file_target(tmp_path / "artifacts")
    (tmp_path / "artifacts").mkdir()
    os.symlink(outside, tmp_path / "artifacts" / "7")

    for uri in (target.uri("7/run/artifacts"), outside.as_uri() + "/run/artifacts", target.root):
        with pytest.raises(InvalidArgumentError):
            target.store.delete_tree(uri)
    assert (outside / "run" / "artifacts" / "precious").read_bytes() == b"keep me"
