"""The import swap, as a migrating MLflow user makes it: with this directory first on
``sys.path``, ``import mlflow`` is ``import modelreg as mlflow``, and MLflow's submodules a script
imports (``mlflow.sklearn``, ``mlflow.pyfunc``, ``mlflow.models``, ``mlflow.entities``,
``mlflow.exceptions``, ``mlflow.tracking``) are modelreg's modules of the same name. Nothing is
wrapped or translated: the scripts see modelreg's own objects."""

from __future__ import annotations

import importlib
import sys

import modelreg

SUBMODULES = ("sklearn", "pyfunc", "models", "entities", "exceptions", "tracking")

for _name in SUBMODULES:
    sys.modules[f"mlflow.{_name}"] = importlib.import_module(f"modelreg.{_name}")
# The import statement hands out what sys.modules holds once this file has run.
sys.modules[__name__] = modelreg
