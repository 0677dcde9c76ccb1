"""JSON log lines of ``modelreg serve`` on stderr: one object per line.

Every line has ``ts`` (RFC 3339, UTC), ``level`` and ``msg``; request lines add ``request_id``,
``method``, ``path``, ``version``, ``status`` and ``ms``; slot events add ``event``, ``version``,
``previous``, ``seconds``. uvicorn's own lines go through the same formatter, and its access log
is off: the request lines replace it.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

from modelreg.serving.metrics import SlotEventLike

LOGGER_NAME = "modelreg.serving"
# The fields a record may carry through ``extra={"fields": {...}}``.
_FIELDS = "fields"

logger = logging.getLogger(LOGGER_NAME)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "msg": record.getMessage(),
        }
        line.update(getattr(record, _FIELDS, {}))
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def configure(stream: TextIO | None = None, level: int = logging.INFO) -> None:
    """Sends this package's and uvicorn's logs, as JSON lines, to ``stream`` (stderr)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    for name in (LOGGER_NAME, "uvicorn", "uvicorn.error"):
        target = logging.getLogger(name)
        target.handlers = [handler]
        target.setLevel(level)
        target.propagate = False
    # The request lines replace uvicorn's access log.
    logging.getLogger("uvicorn.access").disabled = True


def log(level: int, msg: str, **fields: Any) -> None:
    logger.log(level, msg, extra={_FIELDS: fields})


def log_event(event: SlotEventLike) -> None:
    """One line per slot event (``ModelSlot(on_event=...)``)."""
    level = logging.WARNING if event.kind in ("load_failed", "offline_start", "follow_lost") else logging.INFO
    log(
        level,
        event.detail or event.kind,
        event=event.kind,
        version=event.version,
        previous=event.previous,
        seconds=event.seconds,
    )
