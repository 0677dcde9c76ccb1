"""Turning a path a server sent into a local path: every such path is untrusted.

A server (or anything between it and the client) chooses the artifact paths of a listing, the
paths of a version's recorded files and the paths a model's ``modelreg-model.json`` names. None of
them may make the client write, move, read or delete anything outside the directory it meant:
:func:`safe_join` is the one place that turns such a path into a local one.
"""

from __future__ import annotations

import re
from pathlib import Path

from modelreg.exceptions import UnsafePathError

_DRIVE = re.compile(r"[A-Za-z]:")


def check_relative(path: str) -> str:
    """``path`` itself when it is a plain relative '/'-separated path, else UnsafePathError.

    Refused: empty, absolute, a Windows drive (``C:``), a backslash or NUL anywhere, and any
    empty, ``.`` or ``..`` segment. Nothing is normalized: a path that needs normalizing is not
    one a well-behaved server sends, and accepting it would let two spellings name one file.
    """
    if not path:
        raise UnsafePathError(path, "is empty")
    if "\0" in path or "\\" in path:
        raise UnsafePathError(path, "holds a NUL or a backslash")
    if path.startswith("/") or _DRIVE.match(path):
        raise UnsafePathError(path, "is absolute")
    if any(segment in ("", ".", "..") for segment in path.split("/")):
        raise UnsafePathError(path, "has an empty, '.' or '..' segment")
    return path


def safe_join(base: Path, path: str) -> Path:
    """``base / path`` for an untrusted ``path``, once it is known to stay inside ``base``.

    ``path`` must pass :func:`check_relative`, and the joined path, with every symlink resolved,
    must still lie below ``base`` (resolved too): a symlink already inside ``base`` that points
    out is refused rather than followed. Raises UnsafePathError naming ``path``.
    """
    joined = base / check_relative(path)
    root = base.resolve()
    resolved = joined.resolve()
    if resolved == root or not resolved.is_relative_to(root):
        raise UnsafePathError(path, f"resolves outside {base}")
    return joined
