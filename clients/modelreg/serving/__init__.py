"""``modelreg serve``: a registered model behind MLflow's scoring protocol over HTTP.

Install with ``pip install 'modelreg[serve,sklearn]'``. :mod:`modelreg.serving.app` is the ASGI app,
:mod:`modelreg.serving.scoring` the request parsing and signature checks,
:mod:`modelreg.serving.metrics` and :mod:`modelreg.serving.logs` what it reports.
"""

from modelreg.serving.app import DEFAULT_MAX_BODY_BYTES, ServeSettings, create_app
from modelreg.serving.metrics import ServingMetrics
from modelreg.serving.scoring import ScoringError, ScoringRequest, parse_request, predictions_json
from modelreg.serving.slot import LoadedVersion, ModelSlot, NotLoadedError, ServingLoadError, SlotEvent

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "LoadedVersion",
    "ModelSlot",
    "NotLoadedError",
    "ScoringError",
    "ScoringRequest",
    "ServeSettings",
    "ServingLoadError",
    "ServingMetrics",
    "SlotEvent",
    "create_app",
    "parse_request",
    "predictions_json",
]
