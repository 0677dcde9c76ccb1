"""What every MLflow REST handler shares: reading a request's fields, MLflow's error JSON.

MLflow's client sends GET parameters in the query string (repeated fields as repeated keys) and
every other request's fields as a JSON object; int64 fields may arrive as JSON numbers or decimal
strings, as protobuf's JSON mapping allows. :class:`Fields` reads both the same way, each getter
naming the field in its error, and refuses fields an endpoint does not declare (a typo'd field is
an error, not silently ignored).

Errors are MLflow's JSON, ``{"error_code": ..., "message": ...}``, with the HTTP status MLflow's
client expects for the code. A modelreg client error becomes the MLflow code of its gRPC status
(:data:`modelreg.exceptions.MLFLOW_ERROR_CODES`); nothing a caller can send produces a 500.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from modelreg.exceptions import ModelregError

# MLflow's ErrorCode name → HTTP status. As MLflow's server, except INVALID_STATE: MLflow answers
# it 500, which its client retries; here it is the caller's request that is at odds with the
# resource's state (a version's stage, a finished run), so 400.
HTTP_STATUS: dict[str, int] = {
    "INVALID_PARAMETER_VALUE": 400,
    "BAD_REQUEST": 400,
    "INVALID_STATE": 400,
    "RESOURCE_ALREADY_EXISTS": 400,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "RESOURCE_DOES_NOT_EXIST": 404,
    "ENDPOINT_NOT_FOUND": 404,
    "RESOURCE_CONFLICT": 409,
    "REQUEST_LIMIT_EXCEEDED": 429,
    "RESOURCE_EXHAUSTED": 429,
    "CANCELLED": 499,
    "INTERNAL_ERROR": 500,
    "DATA_LOSS": 500,
    "NOT_IMPLEMENTED": 501,
    "TEMPORARILY_UNAVAILABLE": 503,
    "DEADLINE_EXCEEDED": 504,
}


# RESOURCE_EXHAUSTED reasons that pass: the service was busy, not the request too large.
TRANSIENT_REASONS = frozenset({"TOO_MANY_STREAMS"})


class MlflowError(Exception):
    """An MLflow error response: ``error_code`` (MLflow's name) and ``message``."""

    def __init__(self, error_code: str, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.error_code = error_code
        self.message = message
        self.status = status if status is not None else HTTP_STATUS.get(error_code, 500)

    def body(self) -> dict[str, str]:
        return {"error_code": self.error_code, "message": self.message}

    @classmethod
    def invalid(cls, message: str) -> MlflowError:
        return cls("INVALID_PARAMETER_VALUE", message)

    @classmethod
    def not_found(cls, message: str) -> MlflowError:
        return cls("RESOURCE_DOES_NOT_EXIST", message)

    @classmethod
    def from_modelreg(cls, error: ModelregError) -> MlflowError:
        """The MLflow error for a modelreg client error. A service that cannot be reached is
        TEMPORARILY_UNAVAILABLE (503), which MLflow's client retries with backoff; so is 429, which
        only a busy service's TOO_MANY_STREAMS deserves: a cap (too many tags, a run too large)
        stays exceeded however often the request is sent, so it is a 400."""
        if error.code == "RESOURCE_EXHAUSTED" and error.reason not in TRANSIENT_REASONS:
            return cls(error.error_code, error.message, status=400)
        return cls(error.error_code, error.message)


INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
_INT64_TEXT = re.compile(r"-?[0-9]{1,19}")
_NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def int64(text: str) -> int | None:
    """``text`` as an int64 when it is one in decimal (an optional ``-``, 1 to 19 ASCII digits, in
    range), else None. The one way a string becomes an integer here: ``int()`` alone takes
    ``" 5"``, Arabic-Indic digits and ``"1_0"``, and raises on a string past Python's digit limit."""
    if not _INT64_TEXT.fullmatch(text):
        return None
    value = int(text)
    return value if INT64_MIN <= value <= INT64_MAX else None


def load_json(text: str | bytes | bytearray) -> Any:
    """``json.loads``, raising ValueError for anything it cannot read: besides malformed text, an
    integer literal past Python's digit limit (ValueError already) and nesting past the recursion
    limit (RecursionError, made a ValueError here)."""
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("nested too deeply") from None


@dataclass
class Fields:
    """The fields of one request: a JSON object's members, or a query string's parameters (each a
    list of the values given)."""

    values: Mapping[str, Any]
    from_query: bool = False
    path: str = ""
    _read: set[str] = field(default_factory=set)

    def _name(self, name: str) -> str:
        return f"{self.path}{name}"

    def _raw(self, name: str) -> Any:
        self._read.add(name)
        value = self.values.get(name)
        if self.from_query and isinstance(value, list):
            if len(value) > 1:
                raise MlflowError.invalid(f"{self._name(name)}: given {len(value)} times, expected once")
            return value[0] if value else None
        return value

    def has(self, name: str) -> bool:
        return self.values.get(name) not in (None, [])

    def string(self, name: str, *, required: bool = False, default: str = "") -> str:
        value = self._raw(name)
        if value is None or value == "":
            if required:
                raise MlflowError.invalid(f"Missing value for required parameter '{self._name(name)}'.")
            return default
        if not isinstance(value, str):
            raise MlflowError.invalid(f"{self._name(name)}: expected a string, got {type(value).__name__}")
        return self._text(name, value)

    def _text(self, name: str, value: str) -> str:
        """``value`` when it is text UTF-8 can carry: JSON's ``\\ud800`` escapes decode to lone
        surrogates, which no protobuf string can hold."""
        try:
            value.encode()
        except UnicodeEncodeError:
            raise MlflowError.invalid(
                f"{self._name(name)}: not valid Unicode text (a lone surrogate)"
            ) from None
        return value

    def optional_string(self, name: str) -> str | None:
        return self.string(name) if self.has(name) else None

    def integer(self, name: str, *, required: bool = False, default: int | None = None) -> int | None:
        """An int64: a JSON integer, or a decimal string (protobuf's JSON form of int64)."""
        value = self._raw(name)
        if value is None or value == "":
            if required:
                raise MlflowError.invalid(f"Missing value for required parameter '{self._name(name)}'.")
            return default
        if isinstance(value, bool):
            raise MlflowError.invalid(f"{self._name(name)}: expected an integer, got a boolean")
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, str):
            parsed = int64(value)
            if parsed is None:
                raise MlflowError.invalid(f"{self._name(name)}: expected a 64-bit integer, got {value!r:.80}")
            value = parsed
        if not isinstance(value, int):
            raise MlflowError.invalid(f"{self._name(name)}: expected an integer, got {value!r:.80}")
        if not INT64_MIN <= value <= INT64_MAX:
            raise MlflowError.invalid(f"{self._name(name)}: {value} is outside the 64-bit integer range")
        return value

    def number(self, name: str, *, required: bool = False) -> float | None:
        """A double: a JSON number, a numeric string, or "NaN", "Infinity", "-Infinity"."""
        value = self._raw(name)
        if value is None or value == "":
            if required:
                raise MlflowError.invalid(f"Missing value for required parameter '{self._name(name)}'.")
            return None
        if isinstance(value, str):
            if value in _NON_FINITE:
                return _NON_FINITE[value]
            try:
                return float(value)
            except ValueError:
                raise MlflowError.invalid(
                    f"{self._name(name)}: expected a number, got {value!r:.80}"
                ) from None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise MlflowError.invalid(f"{self._name(name)}: expected a number, got {type(value).__name__}")
        try:
            return float(value)
        except OverflowError:  # a JSON integer literal past the double range
            raise MlflowError.invalid(
                f"{self._name(name)}: an integer outside the range of a double"
            ) from None

    def boolean(self, name: str, *, default: bool = False) -> bool:
        value = self._raw(name)
        if value is None or value == "":
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise MlflowError.invalid(f"{self._name(name)}: expected true or false, got {value!r:.80}")

    def strings(self, name: str) -> list[str]:
        """A repeated string field (a JSON array, or the query key repeated)."""
        self._read.add(name)
        value = self.values.get(name)
        if value is None:
            return []
        if self.from_query and isinstance(value, list):
            return [self._text(name, str(v)) for v in value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise MlflowError.invalid(f"{self._name(name)}: expected a list of strings")
        return [self._text(name, v) for v in value]

    def objects(self, name: str, allowed: Sequence[str]) -> list[Fields]:
        """A repeated message field: each element's fields, restricted to ``allowed``."""
        self._read.add(name)
        value = self.values.get(name)
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise MlflowError.invalid(f"{self._name(name)}: expected a list of objects")
        items = [Fields(v, path=f"{self._name(name)}[{i}].") for i, v in enumerate(value)]
        for item in items:
            item.refuse_unknown(allowed)
        return items

    def object(self, name: str, allowed: Sequence[str]) -> Fields | None:
        """A message field: its fields, restricted to ``allowed``; None when absent."""
        self._read.add(name)
        value = self.values.get(name)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise MlflowError.invalid(f"{self._name(name)}: expected an object")
        item = Fields(value, path=f"{self._name(name)}.")
        item.refuse_unknown(allowed)
        return item

    def refuse_unknown(self, allowed: Sequence[str]) -> None:
        """INVALID_PARAMETER_VALUE naming the first field not in ``allowed``."""
        for name in self.values:
            if name not in allowed:
                raise MlflowError.invalid(f"{self._name(name)}: unknown field")
