"""Registered models, versions, tags, aliases, stages, latest versions, search, download URIs.

Every call goes to the registry service, which numbers versions, checks their lineage with the
tracking service and records history. Versions are MLflow's decimal strings on the wire and
modelreg's ints behind it; a version is READY once created (registration is synchronous).

Version sources. modelreg registers only files its tracking service holds (it records their
digests), so a version's source must name a run's files, in any of the forms MLflow's clients send:

- ``runs:/<run id>/<path>``: as is.
- ``models:/<model id>`` (an MLflow 3 LoggedModel): its files in the run that holds it
  (:func:`mlflow_gateway.ids.registry_source`); shown back as ``models:/<model id>`` with
  ``model_id`` set.
- ``mlflow-artifacts:/<experiment>/<run>/artifacts/<path>`` (the run's files through this
  endpoint's proxy: what MLflow's ``register_model("runs:/...")`` sends when the files are in the
  run, as after MLflow 2.x's ``log_model(registered_model_name=...)``): ``runs:/<run>/<path>``.
- ``models:/<name>/<version>`` (and ``@alias``, stages; ``copy_model_version``): the source and
  run of that version, as modelreg's ``copy_model_version`` registers a copy.

Any other URI (``file://``, ``s3://``, ``http(s)://`` ...) is refused: INVALID_PARAMETER_VALUE.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from mlflow_gateway import convert, ids, logged_models
from mlflow_gateway.endpoint import Call, Endpoint, Json
from mlflow_gateway.protocol import Fields, MlflowError, int64
from modelreg import entities as e

# MLflow's limits and defaults of max_results (mlflow.store.model_registry, its .proto defaults).
MODELS_MAX_RESULTS_DEFAULT, MODELS_MAX_RESULTS_MAX = 100, 1000
VERSIONS_MAX_RESULTS_DEFAULT, VERSIONS_MAX_RESULTS_MAX = 200_000, 200_000
TAG_FIELDS = ("key", "value")
PROMPT_TAG = "mlflow.prompt.is_prompt"  # MLflow's mark of a prompt (a registered model too)
NOT_A_PROMPT = f"tag.`{PROMPT_TAG}` != 'true'"
T = TypeVar("T")


# modelreg's entities as MLflow's JSON


def model_version(mv: e.ModelVersion) -> Json:
    """A version as MLflow's ``ModelVersion``: optional fields MLflow's server leaves unset
    (run_id of a version without a run, empty description and status message) are left out, so
    MLflow's client reads them as None, as it does from MLflow's server."""
    model_id = ids.logged_model_of_source(mv.source)
    json: Json = {
        "name": mv.name,
        "version": str(mv.version),
        "creation_timestamp": mv.creation_timestamp,
        "last_updated_timestamp": mv.last_updated_timestamp,
        "user_id": mv.user_id,
        "current_stage": mv.current_stage,
        "source": f"models:/{model_id}" if model_id else mv.source,
        "status": mv.status,
        "tags": convert.key_values(mv.tags),
        "aliases": list(mv.aliases),
    }
    if mv.description:
        json["description"] = mv.description
    if mv.run_id:
        json["run_id"] = mv.run_id
    if mv.status_message:
        json["status_message"] = mv.status_message
    if model_id:
        json["model_id"] = model_id
    return json


def registered_model(rm: e.RegisteredModel) -> Json:
    json: Json = {
        "name": rm.name,
        "creation_timestamp": rm.creation_timestamp,
        "last_updated_timestamp": rm.last_updated_timestamp,
        "latest_versions": [model_version(v) for v in rm.latest_versions],
        "tags": convert.key_values(rm.tags),
        "aliases": [{"alias": alias, "version": str(version)} for alias, version in rm.aliases.items()],
    }
    if rm.description:
        json["description"] = rm.description
    return json


# Request fields


def version_number(fields: Fields, name: str = "version") -> int:
    """A version: MLflow sends a decimal string; a positive int64."""
    text = fields.string(name, required=True)
    number = int64(text)
    if number is None or number < 1:
        raise MlflowError.invalid(f"{name}: expected a version number (a positive integer), got {text!r:.80}")
    return number


def tags(fields: Fields) -> dict[str, str]:
    """MLflow's repeated ``{key, value}`` tags; a key given twice keeps its last value, as MLflow."""
    return {
        tag.string("key", required=True): tag.string("value") for tag in fields.objects("tags", TAG_FIELDS)
    }


def max_results(fields: Fields, default: int, maximum: int) -> int:
    value = fields.integer("max_results")
    if value is None:
        return default
    if not 1 <= value <= maximum:
        raise MlflowError.invalid(f"max_results: must be between 1 and {maximum}, got {value}")
    return value


def page(items: list[Json], token: str | None, key: str) -> Json:
    json: Json = {key: items}
    if token:
        json["next_page_token"] = token
    return json


# Registered models


def create_registered_model(call: Call) -> Json:
    f = call.fields
    model = call.services.registry.create_registered_model(
        f.string("name", required=True), tags=tags(f), description=f.string("description")
    )
    return {"registered_model": registered_model(model)}


def rename_registered_model(call: Call) -> Json:
    f = call.fields
    model = call.services.registry.rename_registered_model(
        f.string("name", required=True), f.string("new_name", required=True)
    )
    return {"registered_model": registered_model(model)}


def update_registered_model(call: Call) -> Json:
    f = call.fields
    description = f.string("description") if f.has("description") else None
    model = call.services.registry.update_registered_model(f.string("name", required=True), description)
    return {"registered_model": registered_model(model)}


def delete_registered_model(call: Call) -> Json:
    call.services.registry.delete_registered_model(call.fields.string("name", required=True))
    return {}


def get_registered_model(call: Call) -> Json:
    model = call.services.registry.get_registered_model(call.fields.string("name", required=True))
    return {"registered_model": registered_model(model)}


def without_prompts_clause(filter_string: str) -> tuple[str, bool]:
    """``filter_string`` without the clause MLflow's client appends to leave prompts out, and
    whether it was there.

    MLflow's server reads ``tag.`mlflow.prompt.is_prompt` != 'true'`` as "not a prompt", a model
    without that tag included; modelreg reads a tag comparison as MLflow does for any other tag,
    as needing the tag, so the clause would leave every model out. Dropped here; the caller then
    leaves out the models tagged as prompts itself."""
    if filter_string == NOT_A_PROMPT:
        return "", True
    stripped = filter_string.removesuffix(f" AND {NOT_A_PROMPT}")
    return stripped, stripped != filter_string


def is_prompt(model: e.RegisteredModel) -> bool:
    return model.tags.get(PROMPT_TAG, "").lower() == "true"


def search_registered_models(call: Call) -> Json:
    f = call.fields
    filter_string, prompts_excluded = without_prompts_clause(f.string("filter"))
    pager = call.services.registry.search_registered_models(
        filter_string,
        max_results=max_results(f, MODELS_MAX_RESULTS_DEFAULT, MODELS_MAX_RESULTS_MAX),
        order_by=f.strings("order_by"),
        page_token=f.optional_string("page_token"),
    )
    # The token is known once the pager is exhausted. A page may come out shorter than asked by
    # the prompts it leaves out, as MLflow's pages may; its token still goes on from its end.
    models = [registered_model(m) for m in pager if not (prompts_excluded and is_prompt(m))]
    return page(models, pager.token, "registered_models")


def get_latest_versions(call: Call) -> Json:
    f = call.fields
    versions = call.services.registry.get_latest_versions(
        f.string("name", required=True), f.strings("stages")
    )
    return {"model_versions": [model_version(v) for v in versions]}


def set_registered_model_tag(call: Call) -> Json:
    f = call.fields
    call.services.registry.set_registered_model_tag(
        f.string("name", required=True), f.string("key", required=True), f.string("value")
    )
    return {}


def delete_registered_model_tag(call: Call) -> Json:
    f = call.fields
    call.services.registry.delete_registered_model_tag(
        f.string("name", required=True), f.string("key", required=True)
    )
    return {}


def set_registered_model_alias(call: Call) -> Json:
    f = call.fields
    call.services.registry.set_registered_model_alias(
        f.string("name", required=True), f.string("alias", required=True), version_number(f)
    )
    return {}


def delete_registered_model_alias(call: Call) -> Json:
    f = call.fields
    call.services.registry.delete_registered_model_alias(
        f.string("name", required=True), f.string("alias", required=True)
    )
    return {}


def get_model_version_by_alias(call: Call) -> Json:
    f = call.fields
    version = call.services.registry.get_model_version_by_alias(
        f.string("name", required=True), f.string("alias", required=True)
    )
    return {"model_version": model_version(version)}


# Model versions


def _refuse_other(name: str, given: str, expected: str, source: str) -> None:
    """MLflow's check that run_id and model_id, when given, name what the source names."""
    if given and given != expected:
        raise MlflowError.invalid(
            f"{name}: {given!r:.80} is not the {name} of source {source!r:.200} ({expected or 'none'!r})"
        )


def _below(source: str, scheme: str) -> str | None:
    """What follows ``<scheme>:/`` in ``source``; None for another scheme or a URI naming a host
    (``<scheme>://host/...``). Exact: the registry checks the run of ``runs:/`` only, not of
    ``RUNS:/``."""
    rest = source.removeprefix(f"{scheme}:/")
    return None if rest == source or rest.startswith("/") else rest


def registered_source(call: Call, source: str, run_id: str, model_id: str) -> tuple[str, str]:
    """(source, run id) of a new version as modelreg registers it, from MLflow's request fields
    (run id "": the run the source names)."""
    if (reference := _below(source, "models")) is not None:
        if "/" in reference or "@" in reference:  # a registered version: copy it
            copied = call.services.registry.resolve_model_uri(source)
            _refuse_other("run_id", run_id, copied.run_id or "", source)
            _refuse_other("model_id", model_id, ids.logged_model_of_source(copied.source) or "", source)
            return copied.source, copied.run_id or ""
        registered = _mapped(source, lambda: ids.registry_source(reference))
    elif _below(source, "runs") is not None:
        registered = source
    elif (proxy_path := _below(source, "mlflow-artifacts")) is not None:
        run, path = _mapped(source, lambda: ids.proxy_path(proxy_path))
        if not path:
            raise MlflowError.invalid(
                f"source {source!r:.200}: names a run's root, not the model's files in it"
            )
        registered = f"runs:/{run}/{path}"
    else:
        raise MlflowError.invalid(
            f"source {source!r:.200}: modelreg registers only files its tracking service holds; expected "
            "runs:/<run id>/<path>, models:/<model id>, models:/<name>/<version> or the "
            "mlflow-artifacts:/ URI of a run's files"
        )
    # A runs:/ source names its run: the registry takes the run from it and checks it.
    _refuse_other("run_id", run_id, registered.removeprefix("runs:/").split("/", 1)[0], source)
    logged_model = ids.logged_model_of_source(registered)
    _refuse_other("model_id", model_id, logged_model or "", source)
    if logged_model is not None:
        # A LoggedModel deleted (or never created) in its run is not registered from its files.
        logged_models.load(call.services.tracking, logged_model)
    return registered, run_id


def _mapped(source: str, mapping: Callable[[], T]) -> T:
    """A mapping of ``source`` onto modelreg's ids; its error (an id this endpoint never handed
    out, a malformed proxy path) names ``source``, as MLflow's does."""
    try:
        return mapping()
    except MlflowError as error:
        raise MlflowError.invalid(f"source {source!r:.200}: {error.message}") from None


def create_model_version(call: Call) -> Json:
    f = call.fields
    name = f.string("name", required=True)
    if f.string("run_link"):
        # The run is in this endpoint's tracking service, so there is no other server to link to,
        # and the registry keeps no link: refused rather than dropped.
        raise MlflowError.invalid("run_link: not supported; the version's run_id names its run")
    source, run_id = registered_source(
        call, f.string("source", required=True), f.string("run_id"), f.string("model_id")
    )
    version = call.services.registry.create_model_version(
        name, source, run_id=run_id or None, tags=tags(f), description=f.string("description")
    )
    return {"model_version": model_version(version)}


def update_model_version(call: Call) -> Json:
    f = call.fields
    description = f.string("description") if f.has("description") else None
    version = call.services.registry.update_model_version(
        f.string("name", required=True), version_number(f), description
    )
    return {"model_version": model_version(version)}


def transition_model_version_stage(call: Call) -> Json:
    f = call.fields
    # MLflow's default, False, whatever modelreg's client defaults to: the request says.
    version = call.services.registry.transition_model_version_stage(
        f.string("name", required=True),
        version_number(f),
        f.string("stage", required=True),
        archive_existing_versions=f.boolean("archive_existing_versions", default=False),
    )
    return {"model_version": model_version(version)}


def delete_model_version(call: Call) -> Json:
    f = call.fields
    call.services.registry.delete_model_version(f.string("name", required=True), version_number(f))
    return {}


def get_model_version(call: Call) -> Json:
    f = call.fields
    version = call.services.registry.get_model_version(f.string("name", required=True), version_number(f))
    return {"model_version": model_version(version)}


def search_model_versions(call: Call) -> Json:
    f = call.fields
    pager = call.services.registry.search_model_versions(
        f.string("filter"),
        max_results=max_results(f, VERSIONS_MAX_RESULTS_DEFAULT, VERSIONS_MAX_RESULTS_MAX),
        order_by=f.strings("order_by"),
        page_token=f.optional_string("page_token"),
    )
    versions = [model_version(v) for v in pager]
    return page(versions, pager.token, "model_versions")


def get_model_version_download_uri(call: Call) -> Json:
    """The version's registered files through the artifact proxy, where MLflow's client downloads
    them (the tracking service checks the caller may read the run). A version registered without
    a run (only possible through gRPC) has no files here: its source, as MLflow answers."""
    f = call.fields
    version = call.services.registry.get_model_version(f.string("name", required=True), version_number(f))
    lineage = version.lineage
    if lineage is None:
        return {"artifact_uri": version.source}
    root = ids.run_artifact_uri(lineage.experiment_id, lineage.run_id)
    return {"artifact_uri": f"{root}/{lineage.artifact_path}" if lineage.artifact_path else root}


def set_model_version_tag(call: Call) -> Json:
    f = call.fields
    call.services.registry.set_model_version_tag(
        f.string("name", required=True), version_number(f), f.string("key", required=True), f.string("value")
    )
    return {}


def delete_model_version_tag(call: Call) -> Json:
    f = call.fields
    call.services.registry.delete_model_version_tag(
        f.string("name", required=True), version_number(f), f.string("key", required=True)
    )
    return {}


_MODELS = "/mlflow/registered-models"
_VERSIONS = "/mlflow/model-versions"
_SEARCH_FIELDS = ("filter", "max_results", "order_by", "page_token")

ENDPOINTS: list[Endpoint] = [
    Endpoint("POST", f"{_MODELS}/create", create_registered_model, ("name", "tags", "description")),
    Endpoint("POST", f"{_MODELS}/rename", rename_registered_model, ("name", "new_name")),
    Endpoint("PATCH", f"{_MODELS}/update", update_registered_model, ("name", "description")),
    Endpoint("DELETE", f"{_MODELS}/delete", delete_registered_model, ("name",)),
    Endpoint("GET", f"{_MODELS}/get", get_registered_model, ("name",)),
    Endpoint("GET", f"{_MODELS}/search", search_registered_models, _SEARCH_FIELDS),
    Endpoint("POST", f"{_MODELS}/get-latest-versions", get_latest_versions, ("name", "stages")),
    Endpoint("GET", f"{_MODELS}/get-latest-versions", get_latest_versions, ("name", "stages")),
    Endpoint("POST", f"{_MODELS}/set-tag", set_registered_model_tag, ("name", "key", "value")),
    Endpoint("DELETE", f"{_MODELS}/delete-tag", delete_registered_model_tag, ("name", "key")),
    Endpoint("POST", f"{_MODELS}/alias", set_registered_model_alias, ("name", "alias", "version")),
    Endpoint("DELETE", f"{_MODELS}/alias", delete_registered_model_alias, ("name", "alias")),
    Endpoint("GET", f"{_MODELS}/alias", get_model_version_by_alias, ("name", "alias")),
    Endpoint(
        "POST",
        f"{_VERSIONS}/create",
        create_model_version,
        ("name", "source", "run_id", "tags", "run_link", "description", "model_id"),
    ),
    Endpoint("PATCH", f"{_VERSIONS}/update", update_model_version, ("name", "version", "description")),
    Endpoint(
        "POST",
        f"{_VERSIONS}/transition-stage",
        transition_model_version_stage,
        ("name", "version", "stage", "archive_existing_versions"),
    ),
    Endpoint("DELETE", f"{_VERSIONS}/delete", delete_model_version, ("name", "version")),
    Endpoint("GET", f"{_VERSIONS}/get", get_model_version, ("name", "version")),
    Endpoint("GET", f"{_VERSIONS}/search", search_model_versions, _SEARCH_FIELDS),
    Endpoint("GET", f"{_VERSIONS}/get-download-uri", get_model_version_download_uri, ("name", "version")),
    Endpoint("POST", f"{_VERSIONS}/set-tag", set_model_version_tag, ("name", "version", "key", "value")),
    Endpoint("DELETE", f"{_VERSIONS}/delete-tag", delete_model_version_tag, ("name", "version", "key")),
]
