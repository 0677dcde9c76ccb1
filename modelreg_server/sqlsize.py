"""SQL for the size caps (README, "Limits"): the UTF-8 bytes a text column holds, alike on every
backend.

PostgreSQL and MySQL/MariaDB have ``octet_length``; SQLite's ``length`` counts characters and
its ``octet_length`` is recent (3.43), so there the text is measured as a blob.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import GenericFunction


class byte_length(GenericFunction[int]):
    """``byte_length(column)``: the UTF-8 size of a text value."""

    type = sa.Integer()
    name = "octet_length"
    identifier = "modelreg_byte_length"
    inherit_cache = True


@compiles(byte_length, "sqlite")
def _sqlite_byte_length(element: byte_length, compiler: Any, **kw: Any) -> str:
    return f"length(CAST({compiler.process(element.clauses, **kw)} AS BLOB))"


def total_bytes(*columns: Any) -> sa.ColumnElement[int]:
    """The UTF-8 bytes of ``columns`` summed over the rows selected (0 for none)."""
    each: Any = sum((byte_length(column) for column in columns[1:]), byte_length(columns[0]))
    return sa.func.coalesce(sa.func.sum(each), 0)
