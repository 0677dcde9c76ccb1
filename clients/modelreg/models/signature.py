"""Model signatures: the names and types of a model's inputs and outputs.

A signature is inferred from an input example and the model's prediction on it:

- a pandas DataFrame gives one entry per column: ``{"name": column, "type": dtype}``;
- a pandas Series gives one entry named after the series (``None`` when unnamed);
- anything array-like gives one unnamed tensor entry ``{"name": None, "type": dtype, "shape":
  [-1, ...]}`` where -1 is the batch dimension.

Types are NumPy dtype names (``float64``, ``int64``, ``bool``, ``object``, ``datetime64[ns]``, ...):
exact, and what scikit-learn sees.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ColSpec:
    """One input or output: a named column, or an unnamed tensor with a shape."""

    type: str
    name: str | None = None
    # For tensors: the shape with -1 for the batch dimension; None for columns.
    shape: tuple[int, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "type": self.type}
        if self.shape is not None:
            out["shape"] = list(self.shape)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ColSpec:
        shape = data.get("shape")
        return cls(
            type=str(data["type"]),
            name=None if data.get("name") is None else str(data["name"]),
            shape=None if shape is None else tuple(int(d) for d in shape),
        )


@dataclass(frozen=True)
class ModelSignature:
    inputs: tuple[ColSpec, ...]
    outputs: tuple[ColSpec, ...] = ()

    @property
    def input_names(self) -> list[str]:
        """The named input columns, in order (empty for tensor inputs)."""
        return [spec.name for spec in self.inputs if spec.name is not None and spec.shape is None]

    def to_dict(self) -> dict[str, Any]:
        return {
            "inputs": [spec.to_dict() for spec in self.inputs],
            "outputs": [spec.to_dict() for spec in self.outputs],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelSignature:
        return cls(
            inputs=tuple(ColSpec.from_dict(d) for d in data.get("inputs", ())),
            outputs=tuple(ColSpec.from_dict(d) for d in data.get("outputs", ())),
        )


def schema_of(data: Any) -> tuple[ColSpec, ...]:
    """The column or tensor specs of a DataFrame, Series or array-like value."""
    import numpy as np
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        return tuple(ColSpec(type=str(dtype), name=str(col)) for col, dtype in data.dtypes.items())
    if isinstance(data, pd.Series):
        return (ColSpec(type=str(data.dtype), name=None if data.name is None else str(data.name)),)
    array = np.asarray(data)
    return (ColSpec(type=str(array.dtype), shape=(-1, *array.shape[1:])),)


def infer_signature(model_input: Any, model_output: Any = None) -> ModelSignature:
    """Infers a signature from an input example and, optionally, the model's output on it."""
    outputs: Sequence[ColSpec] = () if model_output is None else schema_of(model_output)
    return ModelSignature(inputs=schema_of(model_input), outputs=tuple(outputs))
