"""``modelreg.tracking``: MLflow's ``mlflow.tracking`` names (``MlflowClient``), and the generated
stubs of the tracking service under ``modelreg.tracking.v1``."""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    # Imported on first use: the client imports the stubs of this package, so importing it here
    # at import time would be circular.
    if name == "MlflowClient":
        from modelreg.client import Client

        return Client
    raise AttributeError(f"module 'modelreg.tracking' has no attribute {name!r}")


__all__ = ["MlflowClient"]
