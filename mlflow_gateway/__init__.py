"""The MLflow-compatible REST endpoint: the unmodified ``mlflow`` client against modelreg.

A stateless ASGI application (Starlette, served by uvicorn) that speaks MLflow's REST API
(``/api/2.0/mlflow/...``, ``/api/3.0/mlflow/...``, ``/ajax-api/...``, the ``mlflow-artifacts``
proxy) and translates each request into calls to the tracking and registry services through the
modelreg client. It holds no state and opens no database: everything it answers comes from the
services, so any number of replicas may run, and every guarantee the services give (lineage-checked
registrations, numbered versions, history, digests, access control) holds for what comes through it.

Modules: :mod:`.protocol` (request fields, MLflow's error JSON), :mod:`.convert` (modelreg entities
as MLflow's JSON), one module per area (:mod:`.tracking`, :mod:`.registry`, :mod:`.artifacts`,
:mod:`.logged_models`), :mod:`.app` (routing, credentials, limits) and :mod:`.server` (uvicorn).
"""
