"""Start-up failures of a service process: one line on stderr and an exit code, never a traceback.

A wrong setting (exit 2) is named by the variable that holds it; a failure to use what the
settings point at (exit 1: database unreachable or not at the migration head, artifact store
unusable, port in use) says what could not be reached and why, in the driver's own words.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import sqlalchemy as sa
from alembic.util.exc import CommandError

from modelreg_server.db import SchemaOutOfDate

EXIT_STARTUP = 1
EXIT_SETTINGS = 2

ErrorTypes = tuple[type[Exception], ...]
# Failures to use what the settings point at, whichever service runs.
_STARTUP_ERRORS: ErrorTypes = (SchemaOutOfDate, CommandError, sa.exc.SQLAlchemyError, OSError)


def one_line(exc: BaseException) -> str:
    """The first line of the error's message; a driver error without SQLAlchemy's wrapper text."""
    cause = exc.orig if isinstance(exc, sa.exc.DBAPIError) and exc.orig is not None else exc
    lines = str(cause).strip().splitlines()
    return lines[0].strip() if lines else type(cause).__name__


def run_service_command(
    prog: str, command: Callable[[], None], *, settings_errors: ErrorTypes, startup_errors: ErrorTypes = ()
) -> int:
    """Runs ``command``; known start-up failures become one stderr line and a non-zero exit code."""
    try:
        command()
    except settings_errors as exc:
        print(f"{prog}: invalid settings: {one_line(exc)}", file=sys.stderr)
        return EXIT_SETTINGS
    except _STARTUP_ERRORS + startup_errors as exc:
        print(f"{prog}: cannot start: {one_line(exc)}", file=sys.stderr)
        return EXIT_STARTUP
    return 0
