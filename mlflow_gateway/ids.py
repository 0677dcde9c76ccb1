"""How MLflow's identifiers and URIs map onto modelreg's, in one place.

- A run's artifact root, as MLflow's client sees it: ``mlflow-artifacts:/<experiment>/<run>/artifacts``
  (MLflow's own layout). The proxy path ``<experiment>/<run>/artifacts/<path>`` names the run's
  file ``<path>``; the tracking service decides, by run id, whether the caller may read or write it.
- A LoggedModel (MLflow 3) is kept in the run that logged it (a LoggedModel logged outside a run
  gets a run of its own, named after it): its id is ``m-<run id><8 hex digits>``, so the id alone
  finds its run with no lookup table; its files are the run's ``logged-models/<model id>/``; its
  state (name, status, tags, params) is a run tag (:func:`state_tag`), and the run tag
  :data:`INDEX_TAG` marks the runs holding LoggedModels so a search finds them. The marker does
  not list the ids (the state tags' keys do): a list in one tag value would cap a run at ~180
  LoggedModels, and two LoggedModels created at once in one run would race to rewrite it.
  State longer than one tag value (8,000 characters: a run's params are copied into each
  LoggedModel MLflow's ``log_model`` makes) continues in :func:`state_part_tag` tags.
- A version registered from ``models:/<model id>`` is recorded by the registry with the source
  ``runs:/<run id>/logged-models/<model id>``: lineage-checked like any other; MLflow's client is
  shown ``models:/<model id>`` and the version's ``model_id``.
"""

from __future__ import annotations

import os
import re

from mlflow_gateway.protocol import MlflowError

LOGGED_MODELS_DIR = "logged-models"
STATE_TAG_PREFIX = "mlflow.loggedModel."
INDEX_TAG = "mlflow.loggedModels"
INDEX_TAG_VALUE = "true"
_MODEL_ID = re.compile(r"m-([0-9a-f]{32})[0-9a-f]{8}")
_STATE_TAG = re.compile(re.escape(STATE_TAG_PREFIX) + r"(m-[0-9a-f]{40})")
_RUN_ID = re.compile(r"[0-9a-f]{32}")
_EXPERIMENT_ID = re.compile(r"[0-9]{1,10}")
# The tracking service's limits on a run's file path (it checks them again): checked here first
# because the proxy names a local temporary file after the path's last segment.
MAX_FILE_PATH_LENGTH = 1024
MAX_SEGMENT_BYTES = 255
_LOGGED_SOURCE = re.compile(rf"runs:/([0-9a-f]{{32}})/{LOGGED_MODELS_DIR}/(m-[0-9a-f]{{40}})")


def new_model_id(run_id: str) -> str:
    return f"m-{run_id}{os.urandom(4).hex()}"


def run_of_model(model_id: str) -> str:
    """The run holding LoggedModel ``model_id``; RESOURCE_DOES_NOT_EXIST for an id this endpoint
    never handed out (an MLflow server's ids included)."""
    match = _MODEL_ID.fullmatch(model_id)
    if match is None:
        raise MlflowError.not_found(f"Logged model with ID '{model_id}' not found.")
    return match.group(1)


def state_tag(model_id: str) -> str:
    """The run tag holding LoggedModel ``model_id``'s state (its first part when split)."""
    return STATE_TAG_PREFIX + model_id


def state_part_tag(model_id: str, part: int) -> str:
    """The run tag holding part ``part`` (1, 2, ...) of a state split over several tags."""
    return f"{STATE_TAG_PREFIX}{model_id}.{part}"


def model_of_state_tag(key: str) -> str | None:
    """The LoggedModel id whose state tag (not a continuation part) ``key`` is, else None."""
    match = _STATE_TAG.fullmatch(key)
    return match.group(1) if match else None


def model_files(model_id: str) -> str:
    """The run-relative directory of a LoggedModel's files."""
    return f"{LOGGED_MODELS_DIR}/{model_id}"


def registry_source(model_id: str) -> str:
    """The modelreg version source of a version registered from ``models:/<model_id>``."""
    return f"runs:/{run_of_model(model_id)}/{model_files(model_id)}"


def logged_model_of_source(source: str) -> str | None:
    """The LoggedModel id of a modelreg version source made by :func:`registry_source`, else None."""
    match = _LOGGED_SOURCE.fullmatch(source)
    return match.group(2) if match else None


def run_artifact_uri(experiment_id: str, run_id: str) -> str:
    """A run's artifact root through the proxy."""
    return f"mlflow-artifacts:/{experiment_id}/{run_id}/artifacts"


def logged_model_artifact_uri(experiment_id: str, model_id: str) -> str:
    return f"{run_artifact_uri(experiment_id, run_of_model(model_id))}/{model_files(model_id)}"


def experiment_artifact_location(experiment_id: str) -> str:
    """Where MLflow's client puts an experiment's files: through this endpoint's artifact proxy,
    never the services' own storage URI (a client given ``file:///...`` or ``s3://...`` would write
    there directly, past the tracking service and its digests)."""
    return f"mlflow-artifacts:/{experiment_id}"


def proxy_path(path: str) -> tuple[str, str]:
    """``<experiment>/<run>/artifacts[/<file path>]`` → (run id, file path, "" for the root).

    INVALID_PARAMETER_VALUE for any other shape, and for a file path the tracking service would
    refuse (absolute, ``.``, ``..`` or empty segments, backslash, NUL, over its limits). The
    experiment id must be a decimal id but is not looked up: the run id alone names the files, and
    the service decides, by run, whether the caller may read or write them.
    """
    parts = path.split("/", 3)
    if (
        len(parts) < 3
        or parts[2] != "artifacts"
        or not _RUN_ID.fullmatch(parts[1])
        or not _EXPERIMENT_ID.fullmatch(parts[0])
    ):
        raise MlflowError.invalid(
            f"artifact path {path[:200]!r}: expected <experiment id>/<run id>/artifacts/<path>"
        )
    if len(parts) == 3:
        return parts[1], ""
    return parts[1], file_path(parts[3], field=f"artifact path {path[:200]!r}")


def file_path(path: str, *, field: str = "path") -> str:
    """A run-relative file path as the tracking service accepts it, else INVALID_PARAMETER_VALUE."""

    def refuse(why: str) -> MlflowError:
        return MlflowError.invalid(f"{field}: {why}")

    if len(path) > MAX_FILE_PATH_LENGTH:
        raise refuse(f"{len(path)} characters, the limit is {MAX_FILE_PATH_LENGTH}")
    if "\\" in path or "\0" in path:
        raise refuse("must not contain backslashes or NUL characters")
    segments = path.split("/")
    if any(segment in ("", ".", "..") for segment in segments):
        raise refuse("must be relative, without '.', '..' or empty segments")
    try:
        longest = max(len(segment.encode()) for segment in segments)
    except UnicodeEncodeError:
        raise refuse("is not valid Unicode text") from None
    if longest > MAX_SEGMENT_BYTES:
        raise refuse(f"has a segment of {longest} bytes (UTF-8), the limit is {MAX_SEGMENT_BYTES}")
    return path
