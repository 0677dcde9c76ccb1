"""The self-describing model directory shared by every flavor, and fetching one by URI.

- :mod:`~modelreg.models.model_dir`: the directory layout and ``modelreg-model.json``.
- :mod:`~modelreg.models.signature`: input/output signatures inferred from an example.
- :mod:`~modelreg.models.fetch`: resolving ``models:/`` and ``runs:/`` URIs, the local cache, and
  the digest checks that refuse a tampered model.
"""

from modelreg.models.errors import ModelIntegrityError, PickleNotAllowedError, UntrustedTypesError
from modelreg.models.model_dir import METADATA_FILE, ModelMetadata
from modelreg.models.signature import ColSpec, ModelSignature, infer_signature

__all__ = [
    "METADATA_FILE",
    "ColSpec",
    "ModelIntegrityError",
    "ModelMetadata",
    "ModelSignature",
    "PickleNotAllowedError",
    "UntrustedTypesError",
    "infer_signature",
]
