"""Flavor-independent loading for serving, as ``mlflow.pyfunc``: ``load_model(uri).predict(data)``.

``predict`` accepts a pandas DataFrame, a mapping of column → values, or an array-like. When the
model's signature names its input columns and a DataFrame comes in, the columns are checked and put
in the signature's order (extra columns are dropped, as MLflow does); a missing column raises
InvalidArgument (SCHEMA_MISMATCH) before the model sees the data.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from modelreg import sklearn as sklearn_flavor
from modelreg.entities import ModelVersion
from modelreg.exceptions import InvalidArgument
from modelreg.models.fetch import fetch_model
from modelreg.models.model_dir import ModelMetadata


class PyFuncModel:
    """A loaded model: ``predict``, plus where it came from (``model_uri``, ``metadata``,
    ``model_version`` for ``models:/`` URIs)."""

    def __init__(
        self,
        raw_model: Any,
        metadata: ModelMetadata,
        model_uri: str,
        model_version: ModelVersion | None = None,
        local_path: Path | None = None,
    ) -> None:
        self._model = raw_model
        self.metadata = metadata
        self.model_uri = model_uri
        self.model_version = model_version
        self.local_path = local_path

    def get_raw_model(self) -> Any:
        """The underlying scikit-learn estimator."""
        return self._model

    def predict(self, data: Any) -> Any:
        return self._model.predict(self._conform(data))

    def _conform(self, data: Any) -> Any:
        import pandas as pd

        if isinstance(data, Mapping):
            data = pd.DataFrame(data)
        signature = self.metadata.signature
        names = [] if signature is None else signature.input_names
        if names and isinstance(data, pd.DataFrame):
            missing = [name for name in names if name not in data.columns]
            if missing:
                raise InvalidArgument(
                    f"input lacks the column(s) {missing} of the model's signature {names}",
                    code="INVALID_ARGUMENT",
                    reason="SCHEMA_MISMATCH",
                    metadata={"missing": ",".join(missing)},
                )
            return data[names]
        return data

    def __repr__(self) -> str:
        return f"PyFuncModel(uri={self.model_uri!r}, flavor={self.metadata.flavor!r})"


def load_model(
    model_uri: str,
    dst_path: str | os.PathLike[str] | None = None,
    *,
    trusted_types: Sequence[str] = (),
    allow_pickle: bool = False,
) -> PyFuncModel:
    """Loads any modelreg model for prediction; URIs as in :func:`modelreg.sklearn.load_model`,
    and a pickled model only with ``allow_pickle=True``."""
    fetched = fetch_model(model_uri, dst_path=dst_path)
    raw = sklearn_flavor.load_local_model(
        fetched.path, fetched.metadata, trusted_types, allow_pickle=allow_pickle
    )
    version = None if fetched.source is None else fetched.source.model_version
    return PyFuncModel(raw, fetched.metadata, model_uri, version, fetched.path)
