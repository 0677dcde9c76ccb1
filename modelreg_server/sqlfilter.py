"""LIKE and ILIKE as SQLAlchemy expressions that select the same rows on SQLite, PostgreSQL and
MySQL/MariaDB, for both services' stores.

The pattern language is the filter grammar's (modelreg_server.filters): ``%`` is any run of
characters, ``_`` one character, a backslash makes the next ``%``, ``_`` or backslash literal, and
any other backslash (a trailing one included) is a literal backslash. The pattern is read once
into wildcards and literal text, then written out in each backend's own terms with an explicit
escape character, so no character of the caller's text keeps a meaning the backend gives it (a
trailing backslash, SQLite GLOB's ``*``, ``?`` and ``[``):

- LIKE is case-sensitive everywhere. PostgreSQL: ``LIKE ... ESCAPE``. MySQL/MariaDB: the pattern
  is put in the utf8mb4_bin collation, which wins over the column's, so a column with the
  server's default ``*_ci`` collation (the registry's TEXT columns) still compares case- and
  accent-sensitively, character by character. SQLite: its LIKE ignores ASCII case, so the
  pattern becomes a GLOB, with ``*``, ``?`` and ``[`` written as the bracket sets ``[*]``,
  ``[?]``, ``[[]``.
- ILIKE is case-insensitive everywhere. PostgreSQL: ``ILIKE``. Elsewhere ``lower(column) LIKE
  lower(pattern)`` (what SQLAlchemy's ilike renders), on MySQL/MariaDB in utf8mb4_bin so that
  ``a`` does not match ``ä`` there either. SQLite's lower() folds ASCII letters only; the other
  backends fold every letter.

The pattern always travels as a bound parameter: filters compile to expressions, never SQL text.
"""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import SQLCoreOperations

ESCAPE = "\\"
# A binary collation of the charset the MySQL/MariaDB connections use.
_MYSQL_BINARY = "utf8mb4_bin"
# A pattern, piece by piece: an escaped %, _ or backslash | a wildcard | literal text. A lone
# backslash (before anything else, or last) is literal text.
_PARTS = re.compile(r"\\([%_\\])|([%_])|([^%_\\]+|\\)")
_LIKE_SPECIAL = re.compile(r"([%_\\])")
_GLOB_SPECIAL = re.compile(r"([*?\[])")


def _rewrite(pattern: str, any_run: str, one: str, special: re.Pattern[str], literal: str) -> str:
    pieces: list[str] = []
    for escaped, wildcard, plain in _PARTS.findall(pattern):
        if wildcard:
            pieces.append(any_run if wildcard == "%" else one)
        else:
            pieces.append(special.sub(literal, escaped or plain))
    return "".join(pieces)


def like_pattern(pattern: str) -> str:
    """``pattern`` for SQL ``LIKE ... ESCAPE '\\'``: every literal %, _ and backslash escaped."""
    return _rewrite(pattern, "%", "_", _LIKE_SPECIAL, r"\\\1")


def glob_pattern(pattern: str) -> str:
    """``pattern`` as an SQLite GLOB: wildcards to * and ?, literal *, ? and [ bracketed."""
    return _rewrite(pattern, "*", "?", _GLOB_SPECIAL, r"[\1]")


def like(
    column: SQLCoreOperations[Any], pattern: str, dialect: str, *, case_sensitive: bool
) -> sa.ColumnElement[bool]:
    """``column LIKE pattern`` (``case_sensitive``) or ``column ILIKE pattern`` for the backend
    named by ``dialect`` (an engine's ``dialect.name``)."""
    if dialect == "sqlite" and case_sensitive:
        return column.op("GLOB", is_comparison=True)(glob_pattern(pattern))
    escaped = like_pattern(pattern)
    if dialect in ("mysql", "mariadb"):
        bound = sa.literal(escaped, sa.String)
        if case_sensitive:
            return column.like(bound.collate(_MYSQL_BINARY), escape=ESCAPE)
        return sa.func.lower(column).like(sa.func.lower(bound).collate(_MYSQL_BINARY), escape=ESCAPE)
    if case_sensitive:
        return column.like(escaped, escape=ESCAPE)
    return column.ilike(escaped, escape=ESCAPE)
