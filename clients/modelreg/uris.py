"""Model URIs: parsing and validation, client-side, before any call is made.

Accepted forms (the ones MLflow users write):

- ``models:/<name>/<version>``  e.g. ``models:/HousePricePredictor/3``
- ``models:/<name>/<stage>``    ``None``, ``Staging``, ``Production`` or ``Archived`` (any case)
- ``models:/<name>/latest``     the newest version
- ``models:/<name>@<alias>``    e.g. ``models:/HousePricePredictor@champion``
- ``runs:/<run_id>/<path>``     a model directory under a run's artifacts

A malformed URI raises :class:`modelreg.exceptions.InvalidArgument` with reason
``INVALID_MODEL_URI`` (the reason the registry uses for the same mistake), so callers branch on one
reason whether the client or the server caught it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from modelreg.exceptions import InvalidArgument

MODELS_SCHEME = "models:/"
RUNS_SCHEME = "runs:/"
INVALID_MODEL_URI = "INVALID_MODEL_URI"

# Same limits as the registry: names of 1..250 characters without '/' or '@'.
_MAX_NAME_LENGTH = 250
_STAGES = {"none": "None", "staging": "Staging", "production": "Production", "archived": "Archived"}
_ALIAS = re.compile(r"[A-Za-z0-9_-]{1,255}")
_VERSION = re.compile(r"[1-9][0-9]{0,17}")
_RUN_ID = re.compile(r"[0-9a-f]{32}")

RefKind = Literal["version", "stage", "alias", "latest"]


@dataclass(frozen=True)
class ModelsUri:
    """A ``models:/`` URI: a registered model and which of its versions."""

    name: str
    kind: RefKind
    # The version number as text, the canonical stage name, the alias, or "latest".
    ref: str

    @property
    def uri(self) -> str:
        """The canonical spelling (stage names capitalized), as sent to the registry."""
        separator = "@" if self.kind == "alias" else "/"
        return f"{MODELS_SCHEME}{self.name}{separator}{self.ref}"


@dataclass(frozen=True)
class RunsUri:
    """A ``runs:/`` URI: a directory under a run's artifact root."""

    run_id: str
    artifact_path: str

    @property
    def uri(self) -> str:
        return f"{RUNS_SCHEME}{self.run_id}/{self.artifact_path}"


ModelUri = ModelsUri | RunsUri


def _invalid(uri: str, why: str) -> InvalidArgument:
    return InvalidArgument(
        f"invalid model URI {uri!r}: {why}",
        code="INVALID_ARGUMENT",
        reason=INVALID_MODEL_URI,
        metadata={"uri": uri},
    )


def _check_name(uri: str, name: str) -> str:
    if not name or not name.strip():
        raise _invalid(uri, "the model name is empty")
    if len(name) > _MAX_NAME_LENGTH:
        raise _invalid(uri, f"the model name exceeds {_MAX_NAME_LENGTH} characters")
    return name


def _parse_models(uri: str) -> ModelsUri:
    rest = uri[len(MODELS_SCHEME) :]
    if "@" in rest:
        name, alias = rest.split("@", 1)
        if "/" in name:
            raise _invalid(uri, "expected models:/<name>@<alias>")
        if not _ALIAS.fullmatch(alias):
            raise _invalid(uri, "an alias is 1..255 letters, digits, '_' or '-'")
        return ModelsUri(_check_name(uri, name), "alias", alias)
    parts = rest.split("/")
    if len(parts) != 2:
        raise _invalid(uri, "expected models:/<name>/<version|stage|latest> or models:/<name>@<alias>")
    name, ref = _check_name(uri, parts[0]), parts[1]
    if _VERSION.fullmatch(ref):
        return ModelsUri(name, "version", ref)
    if ref.lower() == "latest":
        return ModelsUri(name, "latest", "latest")
    if ref.lower() in _STAGES:
        return ModelsUri(name, "stage", _STAGES[ref.lower()])
    raise _invalid(uri, f"{ref!r} is neither a version number, a stage nor 'latest'")


def _parse_runs(uri: str) -> RunsUri:
    run_id, _, path = uri[len(RUNS_SCHEME) :].partition("/")
    if not _RUN_ID.fullmatch(run_id):
        raise _invalid(uri, "a run id is 32 lowercase hex characters")
    path = path.rstrip("/")
    segments = path.split("/")
    if not path or any(s in ("", ".", "..") for s in segments):
        raise _invalid(uri, "expected runs:/<run_id>/<path> with a relative path (no '..', no empty parts)")
    return RunsUri(run_id, path)


def parse_model_uri(uri: str) -> ModelUri:
    """Parses and validates a model URI; raises InvalidArgument (INVALID_MODEL_URI) when malformed."""
    if uri.startswith(MODELS_SCHEME):
        return _parse_models(uri)
    if uri.startswith(RUNS_SCHEME):
        return _parse_runs(uri)
    raise _invalid(uri, "a model URI starts with models:/ or runs:/")
