"""The MLflow scoring protocol: request bodies in, a pandas DataFrame out; predictions back to JSON.

Accepted as ``mlflow models serve`` accepts them:

- ``application/json`` with exactly one of ``dataframe_split`` (``{"columns", "data", "index"?}``),
  ``dataframe_records`` (a list of objects), ``instances`` (a list of objects or of rows) or
  ``inputs`` (a list of objects, an object of columns, or a list of rows), and optionally ``params``
  (an object handed to ``predict``). Any other top-level key is refused (MLflow ignores unknown keys;
  a misspelt ``param`` would otherwise be dropped silently). ``NaN``/``Infinity`` literals are read
  as MLflow reads them (Python's ``json``);
- ``text/csv``: a header line then rows, as ``DataFrame.to_csv(index=False)`` writes them.

Rows without column names (a list of rows, a split without ``columns``, a CSV is always named) take
the signature's input names by position when there are as many values as inputs.

Against the model's signature (``ModelSignature``, numpy dtype names or MLflow type names): a
missing input column is refused naming it; extra columns are dropped, as MLflow drops them; each
column is converted to its signature type where MLflow converts safely (integers to floating
point, floating point to a narrower float) and refused otherwise (floats to integers, a missing
value in an integer or boolean column, text in a numeric one), naming the column and the type.

Every refusal is a :class:`ScoringError` carrying MLflow's error JSON
(``{"error_code": "BAD_REQUEST", "message": ...}``) and an HTTP status (400, or 415 for a content
type other than the two above); nothing a caller sends raises anything else.

Predictions become ``{"predictions": [...]}``: a DataFrame as a list of records, a Series or array
as a list; numpy and pandas scalars as JSON numbers, strings and booleans; NaN and infinities as
``null`` (MLflow writes bare ``NaN``, which is not JSON).
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from modelreg.models.signature import ColSpec, ModelSignature

if TYPE_CHECKING:
    import pandas as pd

JSON_TYPE = "application/json"
CSV_TYPE = "text/csv"
CONTENT_TYPES = (JSON_TYPE, CSV_TYPE)
INPUT_KEYS = ("dataframe_split", "dataframe_records", "instances", "inputs")
PARAMS_KEY = "params"
SPLIT_KEYS = ("columns", "data", "index")
BAD_REQUEST = "BAD_REQUEST"
INVALID_PARAMETER_VALUE = "INVALID_PARAMETER_VALUE"
# How much of a caller's value or an error is quoted back in a message.
_QUOTE_CHARS = 200
# Records with differing keys make a frame of every record by every key seen: a small body could
# otherwise ask for billions of cells. Other formats are bounded by the body size itself.
MAX_COLUMNS = 10_000
MAX_RECORD_CELLS = 10_000_000

# MLflow's signature type names, for models whose signature uses them instead of numpy's.
_MLFLOW_TYPES = {
    "double": "float64",
    "float": "float32",
    "long": "int64",
    "integer": "int32",
    "boolean": "bool",
    "string": "object",
    "binary": "object",
    "datetime": "datetime64[ns]",
}


class ScoringError(Exception):
    """A request the scoring protocol refuses: MLflow's error JSON and the HTTP status."""

    def __init__(self, message: str, *, status: int = 400, error_code: str = BAD_REQUEST) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.error_code = error_code

    def to_json(self) -> dict[str, str]:
        return {"error_code": self.error_code, "message": self.message}


@dataclass(frozen=True)
class ScoringRequest:
    data: pd.DataFrame
    params: dict[str, Any] | None


def _quote(value: object) -> str:
    text = repr(value)
    return text if len(text) <= _QUOTE_CHARS else f"{text[:_QUOTE_CHARS]}..."


def media_type(content_type: str | None) -> str:
    """``application/json; charset=utf-8`` -> ``application/json``."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def parse_request(body: bytes, content_type: str | None, signature: ModelSignature | None) -> ScoringRequest:
    """The DataFrame (conformed to ``signature``) and params of one /invocations body."""
    kind = media_type(content_type)
    if kind not in CONTENT_TYPES:
        raise ScoringError(
            f"This predictor only supports the following content types: {list(CONTENT_TYPES)}. "
            f"Got {_quote(content_type or '')}.",
            status=415,
        )
    if not body.strip():
        raise ScoringError("The request body is empty; send a JSON document or CSV rows.")
    if kind == CSV_TYPE:
        return ScoringRequest(conform(parse_csv(body), signature), None)
    frame, params = parse_json(body, signature)
    return ScoringRequest(conform(frame, signature), params)


def parse_csv(body: bytes) -> pd.DataFrame:
    import pandas as pd

    try:
        return pd.read_csv(io.BytesIO(body))
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise ScoringError(
            "Failed to parse input as a Pandas DataFrame. Ensure that the input is a valid CSV-formatted "
            f"Pandas DataFrame produced using the `pandas.DataFrame.to_csv()` method: {_quote(str(exc))}"
        ) from None


def parse_json(
    body: bytes, signature: ModelSignature | None = None
) -> tuple[pd.DataFrame, dict[str, Any] | None]:
    """The DataFrame (not yet conformed) and params of a JSON body."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise ScoringError(f"Invalid input. The request body is not valid JSON: {_quote(str(exc))}") from None
    if not isinstance(document, dict):
        raise _key_error(document)
    unknown = sorted(set(document) - {*INPUT_KEYS, PARAMS_KEY})
    given = [key for key in INPUT_KEYS if key in document]
    if unknown or len(given) != 1:
        raise _key_error(document)
    params = document.get(PARAMS_KEY)
    if params is not None and not isinstance(params, dict):
        raise ScoringError(
            f"'params' must be a JSON object of parameter names to values, got {_quote(params)}"
        )
    names = [] if signature is None else signature.input_names
    try:
        frame = _FORMATS[given[0]](document[given[0]], names)
    except ScoringError:
        raise
    except (ValueError, TypeError, KeyError, IndexError, OverflowError, AttributeError) as exc:
        # pandas' own refusals of a shape it cannot frame (ragged columns, mixed dicts and scalars...).
        raise ScoringError(f"Invalid input for {given[0]!r}: {_quote(str(exc))}") from None
    return frame, params


def _key_error(document: object) -> ScoringError:
    keys = sorted(document) if isinstance(document, dict) else type(document).__name__
    return ScoringError(
        f"The input must be a JSON dictionary with exactly one of the input fields {list(INPUT_KEYS)} "
        f"(and optionally 'params'). Received: {_quote(keys)}."
    )


def _split(value: Any, names: list[str]) -> pd.DataFrame:
    import pandas as pd

    if not isinstance(value, dict) or "data" not in value or set(value) - set(SPLIT_KEYS):
        raise ScoringError(
            "'dataframe_split' must be an object with 'data' (a list of rows) and optionally 'columns' "
            "and 'index'."
        )
    rows = _rows(value["data"], "dataframe_split.data")
    columns = value.get("columns")
    if columns is not None:
        if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
            raise ScoringError("'dataframe_split.columns' must be a list of column names (strings).")
        if len(set(columns)) != len(columns):
            raise ScoringError(f"'dataframe_split.columns' names a column twice: {_quote(columns)}")
        if rows and len(rows[0]) != len(columns):
            raise ScoringError(
                f"'dataframe_split' has {len(columns)} columns but its rows have {len(rows[0])} values."
            )
    index = value.get("index")
    if index is not None and (
        not isinstance(index, list)
        or len(index) != len(rows)
        or not all(isinstance(i, str | int) and not isinstance(i, bool) for i in index)
    ):
        raise ScoringError("'dataframe_split.index' must be a list of strings or integers, one per row.")
    if columns is None:
        return _positional(pd.DataFrame(rows, index=index), names)
    return pd.DataFrame(rows, columns=columns, index=index)


def _rows(value: Any, where: str) -> list[list[Any]]:
    """A non-empty rectangular list of rows."""
    if not isinstance(value, list) or not value:
        raise ScoringError(f"{where!r} must be a non-empty list of rows.")
    if not all(isinstance(row, list) for row in value):
        raise ScoringError(f"Each row of {where!r} must be a list of values.")
    widths = {len(row) for row in value}
    if len(widths) != 1 or 0 in widths:
        raise ScoringError(f"The rows of {where!r} must all have the same, non-zero number of values.")
    return value


def _records(value: Any, where: str) -> pd.DataFrame:
    import pandas as pd

    if not isinstance(value, list) or not value:
        raise ScoringError(f"{where!r} must be a non-empty list of records (objects of column to value).")
    if not all(isinstance(record, dict) for record in value):
        raise ScoringError(f"Each record of {where!r} must be an object of column to value.")
    columns: set[str] = set()
    for record in value:
        columns.update(record)
        if len(columns) > MAX_COLUMNS:
            raise ScoringError(f"The records of {where!r} have more than {MAX_COLUMNS} distinct columns.")
    if len(columns) * len(value) > MAX_RECORD_CELLS:
        raise ScoringError(
            f"The records of {where!r} name {len(columns)} distinct columns over {len(value)} records: "
            f"more than {MAX_RECORD_CELLS} values in all; send records with the same columns."
        )
    return pd.DataFrame.from_records(value)


def _instances(value: Any, names: list[str]) -> pd.DataFrame:
    return _list_input(value, names, "instances")


def _inputs(value: Any, names: list[str]) -> pd.DataFrame:
    import pandas as pd

    if isinstance(value, dict):
        if not value:
            raise ScoringError("'inputs' must not be an empty object.")
        if all(not isinstance(v, list | dict) for v in value.values()):
            return pd.DataFrame([value])  # one row, as MLflow reads {"a": 1, "b": 2}
        lengths = {len(v) if isinstance(v, list) else 1 for v in value.values()}
        if any(isinstance(v, dict) for v in value.values()) or len(lengths) != 1 or 0 in lengths:
            raise ScoringError(
                "'inputs' as an object must map each column to a list of values, all of one length."
            )
        return pd.DataFrame(value)
    return _list_input(value, names, "inputs")


def _list_input(value: Any, names: list[str], key: str) -> pd.DataFrame:
    import pandas as pd

    if not isinstance(value, list) or not value:
        raise ScoringError(
            f"{key!r} must be a non-empty list (of records or of rows) or an object of columns."
        )
    if isinstance(value[0], dict):
        return _records(value, key)
    if isinstance(value[0], list):
        return _positional(pd.DataFrame(_rows(value, key)), names)
    if any(isinstance(v, list | dict) for v in value):
        raise ScoringError(f"{key!r} mixes single values with rows or records.")
    return _positional(pd.DataFrame({0: value}), names)  # a list of scalars: one column


def _positional(frame: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """Unnamed columns take the signature's input names when there are as many."""
    if names and len(frame.columns) == len(names):
        frame.columns = list(names)
    return frame


_FORMATS = {
    "dataframe_split": _split,
    "dataframe_records": lambda value, names: _records(value, "dataframe_records"),
    "instances": _instances,
    "inputs": _inputs,
}


# Signature enforcement


def conform(frame: pd.DataFrame, signature: ModelSignature | None) -> pd.DataFrame:
    """``frame`` with the signature's input columns, in its order and types (extra columns dropped)."""
    if signature is None:
        return frame
    names = signature.input_names
    if not names:  # a tensor signature (or none named): the model takes the frame as it is
        return frame
    present = {str(c) for c in frame.columns}
    missing = [name for name in names if name not in present]
    if missing:
        raise ScoringError(
            f"Model is missing inputs {missing}; the model's signature takes {names}.",
            error_code=INVALID_PARAMETER_VALUE,
        )
    if not all(isinstance(c, str) for c in frame.columns):
        frame = frame.rename(columns=str)
    if frame.columns.duplicated().any():
        raise ScoringError(f"The input names a column twice: {_quote(list(frame.columns))}")
    specs = {spec.name: spec for spec in signature.inputs if spec.name is not None}
    given = {name: frame[name] for name in names}
    converted = {name: _convert(given[name], specs[name]) for name in names}
    if all(converted[name] is given[name] for name in names):
        return frame[names]  # the usual case, every column already of its type: no rebuilding
    import pandas as pd

    return pd.DataFrame(converted, index=frame.index)


def _mismatch(spec: ColSpec, series: pd.Series, why: str) -> ScoringError:
    return ScoringError(
        f"Incompatible input types for column {spec.name!r}: expected {spec.type}, got {why}.",
        error_code=INVALID_PARAMETER_VALUE,
    )


def _convert(series: pd.Series, spec: ColSpec) -> pd.Series:
    import numpy as np
    import pandas as pd

    try:
        target = np.dtype(_MLFLOW_TYPES.get(spec.type, spec.type))
    except TypeError:
        return series  # a type numpy does not name (an extension type): the model checks it
    if series.dtype == target:
        return series
    values = series
    if values.dtype == object:
        values = _unboxed(series, spec)
    kind = values.dtype.kind
    if target.kind == "f":
        if kind in "iuf":
            return values.astype(target)
        raise _mismatch(spec, series, _described(series))
    if target.kind in "iu":
        if kind in "iu":
            info = np.iinfo(target)
            if len(values) and (values.min() < info.min or values.max() > info.max):
                raise _mismatch(spec, series, "a value out of its range")
            return values.astype(target)
        if kind == "f" and values.isna().any():
            raise _mismatch(spec, series, "a missing value")
        raise _mismatch(spec, series, _described(series))
    if target.kind == "b":
        if kind == "b":
            return values
        raise _mismatch(spec, series, _described(series))
    if target.kind == "M":
        try:
            return pd.to_datetime(series)
        except (ValueError, TypeError, OverflowError):
            raise _mismatch(spec, series, "a value that is not a date and time") from None
    if target.kind in "OSU" and spec.type == "string":
        if all(isinstance(v, str) for v in series):
            return series
        raise _mismatch(spec, series, _described(series))
    return series  # object columns take any value, as the model decides


def _unboxed(series: pd.Series, spec: ColSpec) -> pd.Series:
    """An object column of JSON scalars as the numeric or boolean column it holds, when it holds one
    kind only (None counting as a missing float)."""
    import numpy as np
    import pandas as pd

    values = list(series)
    if values and all(isinstance(v, bool | np.bool_) for v in values):
        return series.astype(bool)
    if values and all(isinstance(v, int | np.integer) and not isinstance(v, bool | np.bool_) for v in values):
        try:
            return pd.Series(np.array(values, dtype=np.int64), index=series.index)
        except OverflowError:
            raise _mismatch(spec, series, "a value out of its range") from None
    numeric = all(
        v is None
        or (isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool | np.bool_))
        for v in values
    )
    if values and numeric:
        try:
            return pd.Series(
                np.array([math.nan if v is None else v for v in values], dtype=np.float64), index=series.index
            )
        except OverflowError:
            raise _mismatch(spec, series, "a value out of its range") from None
    return series


def _described(series: pd.Series) -> str:
    if series.dtype != object:
        return f"{series.dtype}"
    kinds = sorted({type(v).__name__ for v in series})
    return f"values of type {', '.join(kinds)}"


# Predictions


def predictions_json(predictions: Any) -> bytes:
    """``{"predictions": ...}`` for a model's output, as MLflow writes it (NaN as null)."""
    return json.dumps({"predictions": _plain(predictions)}, allow_nan=False, separators=(",", ":")).encode()


def _plain(value: Any) -> Any:
    import numpy as np
    import pandas as pd

    if isinstance(value, pd.DataFrame):
        return [_plain(row) for row in value.to_dict(orient="records")]
    if isinstance(value, pd.Series | pd.Index):
        return _plain(value.to_numpy())
    if isinstance(value, np.ndarray):
        if value.dtype.kind == "f" and not np.isfinite(value).all():
            finite = np.isfinite(value)
            value = value.astype(object)
            value[~finite] = None
        if value.dtype.kind in "biuf":
            return value.tolist()
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return _plain(value.item())
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if value is None or isinstance(value, str | int | bool):
        return value
    if isinstance(value, bytes):
        import base64

        return base64.b64encode(value).decode()
    if value is pd.NaT or value is pd.NA:
        return None
    return str(value)
