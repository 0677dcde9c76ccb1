"""One MLflow REST endpoint: its method, its path, the fields it takes and the function that serves it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from mlflow_gateway.protocol import Fields
from modelreg import RegistryClient, TrackingClient

Json = dict[str, Any]


@dataclass(frozen=True)
class Services:
    """The modelreg clients every handler calls through (one channel each, shared by all requests)."""

    tracking: TrackingClient
    registry: RegistryClient


@dataclass(frozen=True)
class Call:
    """One request as a handler sees it: its fields (query or JSON body), the path's parameters,
    and the services. The caller's credentials travel with every call it makes
    (:func:`modelreg.wire.calling_as`), so handlers never handle them."""

    fields: Fields
    path_params: Mapping[str, str]
    services: Services


Handler = Callable[[Call], Json]


@dataclass(frozen=True)
class Endpoint:
    """``method`` and ``path`` as in MLflow's service definitions, below the ``/api/2.0`` (and
    ``/api/3.0``, ``/ajax-api/...``) prefix, e.g. ``("POST", "/mlflow/runs/create")``; ``{name}``
    marks a path parameter. ``fields``: every field the endpoint accepts; any other is refused."""

    method: str
    path: str
    handler: Handler
    fields: tuple[str, ...] = ()
