"""The self-describing model directory shared by every flavor, and fetching one by URI.

- :mod:`~modelreg.models.model_dir`: the directory layout and ``modelreg-model.json``.
- :mod:`~modelreg.models.signature`: input/output signatures inferred from an example.
- :mod:`~modelreg.models.fetch`: resolving ``models:/`` and ``runs:/`` URIs, the local cache, and
  the digest checks that refuse a tampered model.
- :mod:`~modelreg.models.python_model`: custom Python models stored as code (``set_model``,
  ``ModelConfig``), as MLflow's models from code.
- :mod:`~modelreg.models.info`: MLflow's ``Model`` and ``get_model_info``.
"""

from modelreg.models.errors import (
    CodeNotAllowedError,
    ModelIntegrityError,
    PickleNotAllowedError,
    UntrustedTypesError,
)
from modelreg.models.info import Model, get_model_info
from modelreg.models.model_dir import METADATA_FILE, ModelMetadata
from modelreg.models.python_model import ModelConfig, set_model
from modelreg.models.signature import ColSpec, ModelSignature, infer_signature

__all__ = [
    "METADATA_FILE",
    "CodeNotAllowedError",
    "ColSpec",
    "Model",
    "ModelConfig",
    "ModelIntegrityError",
    "ModelMetadata",
    "ModelSignature",
    "PickleNotAllowedError",
    "UntrustedTypesError",
    "get_model_info",
    "infer_signature",
    "set_model",
]
