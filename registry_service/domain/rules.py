"""Input rules: names, aliases, stages, sources and model URIs."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from modelreg_server.errors import InvalidArgumentError
from modelreg_server.validation import (
    CONTROL_CHARACTERS,
    INT64_MAX,
    MAX_DESCRIPTION_LENGTH,
    check_tags,
    mapping_bytes,
    require_key,
    require_name,
    require_run_id,
    require_value,
    text_bytes,
    within_limit,
)
from registry_service.domain import errors
from registry_service.domain.entities import ModelEvent, ModelProtection, ModelVersion, RegisteredModel, Stage

MAX_ALIAS_LENGTH = 255
MAX_SOURCE_LENGTH = 4096
MAX_PROTECTED_ALIASES = 100
RESERVED_ALIAS = "latest"
# A serving report (ReportServingStatus): one line of detail, and the instance that reports it.
MAX_SERVING_DETAIL_LENGTH = 1024
MAX_SERVING_INSTANCE_LENGTH = 128
# Reports one caller may make on one model in any 60 s (MODELREG_SERVING_REPORTS_PER_MINUTE): a
# READ token is enough to report, and each report is an event kept in the history, sent to
# watches and webhooks. A serving process reports once per load attempt, so the bound is met only
# by a fleet of that many replicas sharing one token and reloading within the same minute.
SERVING_REPORTS_PER_MINUTE = 600

# What one registered model or version may hold, so that any one of them serializes well under
# the 8 MiB gRPC message limit and under the 4 MiB a listing page may take (README, "Limits").
# A write that would leave it over a cap is RESOURCE_EXHAUSTED and keeps nothing; the store counts
# what is stored under the model's row lock (a tag set again counts once). A RegisteredModel
# carries up to four latest versions besides its own tags and aliases, hence the tighter bytes:
# 5 x 256 KiB of tags + 2 x 1,000 aliases (~0.5 MB) + 5 descriptions (~0.3 MB) < 2.2 MB.
MAX_MODEL_TAGS = 1000
MAX_VERSION_TAGS = 1000
# UTF-8 bytes of the keys and values of a model's (a version's) tags.
MAX_MODEL_TAG_BYTES = 256 * 1024
MAX_VERSION_TAG_BYTES = 256 * 1024
MAX_MODEL_ALIASES = 1000
# Page size estimates (modelreg_server.pagination): a row's fixed fields, the framing of one map
# entry or alias around its text.
ROW_OVERHEAD, ENTRY_OVERHEAD = 128, 16
_ALIAS_RE = re.compile(r"[A-Za-z0-9_-]+")
# Aliases that read as version numbers would make models:/Name@3 and models:/Name/3 ambiguous.
_VERSION_LIKE_RE = re.compile(r"[vV]?\d+")
# ASCII digits only: str.isdigit() and \d also take "²" or "٣", which int() refuses or reads.
_VERSION_NUMBER_RE = re.compile(r"[0-9]+")
_STAGES = {stage.value.lower(): stage for stage in Stage}
# Stages a rollback can act on: the deployment stages that have one holder at a time.
ROLLBACK_STAGES = (Stage.STAGING, Stage.PRODUCTION)


def model_name(name: str, field: str = "name") -> str:
    """A registered model name: 1..250 characters, no '/' or '@' (they delimit model URIs)."""
    require_name(name, field, errors.InvalidName.reason_code)
    if "/" in name or "@" in name:
        raise errors.InvalidName(f"{field} must not contain '/' or '@'", field)
    return name


def version_number(version: int) -> int:
    if version < 1:
        raise errors.InvalidVersion(f"version must be >= 1, got {version}", "version")
    return version


def description(text: str, field: str = "description") -> str:
    """A description, or a comment on a stage change (``field="comment"``): the same limits."""
    return require_value(text, field, errors.InvalidDescription.reason_code, MAX_DESCRIPTION_LENGTH)


def tags(values: dict[str, str], owner: str = "model") -> dict[str, str]:
    """The tags of a model (``owner="model"``) or version being created, within their caps."""
    checked = check_tags(values, "tags", errors.InvalidTag.reason_code)
    tag_limits(owner, "(new)", len(checked), mapping_bytes(checked))
    return checked


def tag_limits(owner: str, name: str, count: int, tag_bytes: int) -> None:
    """RESOURCE_EXHAUSTED unless a model (``owner="model"``) or version holding ``count`` tags of
    ``tag_bytes`` is within the caps; ``name`` names it in the message."""
    limit, byte_limit = (
        (MAX_MODEL_TAGS, MAX_MODEL_TAG_BYTES)
        if owner == "model"
        else (MAX_VERSION_TAGS, MAX_VERSION_TAG_BYTES)
    )
    within_limit(f"{owner} {name}", count, "tags", limit, "TOO_MANY_TAGS", "tags")
    within_limit(
        f"{owner} {name}", tag_bytes, "bytes of tags", byte_limit, f"{owner.upper()}_TOO_LARGE", "tags"
    )


def alias_limit(name: str, count: int) -> None:
    owner = f"registered model '{name}'"
    within_limit(owner, count, "aliases", MAX_MODEL_ALIASES, "TOO_MANY_ALIASES", "alias")


def version_bytes(version: ModelVersion, with_lineage: bool = True) -> int:
    """What ``version`` takes in a response, estimated from its text (for pages sized by bytes):
    every text field of the message, ROW_OVERHEAD for its numbers, enums and framing."""
    text = text_bytes(
        version.name
        + version.description
        + version.source
        + version.run_id
        + version.status_message
        + version.user_id
    )
    tag_bytes = mapping_bytes(version.tags) + ENTRY_OVERHEAD * len(version.tags)
    alias_bytes = sum(text_bytes(alias) + ENTRY_OVERHEAD for alias in version.aliases)
    lineage = len(version.lineage) if with_lineage and version.lineage is not None else 0
    return ROW_OVERHEAD + text + tag_bytes + alias_bytes + lineage


def model_bytes(model: RegisteredModel) -> int:
    text = text_bytes(model.name) + text_bytes(model.description)
    tag_bytes = mapping_bytes(model.tags) + ENTRY_OVERHEAD * len(model.tags)
    alias_bytes = sum(text_bytes(alias) + ENTRY_OVERHEAD for alias in model.aliases)
    latest = sum(version_bytes(version, with_lineage=False) for version in model.latest_versions)
    return ROW_OVERHEAD + text + tag_bytes + alias_bytes + latest


def event_bytes(event: ModelEvent) -> int:
    text = (event.name, event.from_value, event.to_value, event.actor, event.comment, event.approver)
    results = sum(
        ENTRY_OVERHEAD
        + text_bytes(r.clause)
        + text_bytes(r.left)
        + text_bytes(r.right)
        + text_bytes(r.message)
        for r in event.gate_results
    )
    return ROW_OVERHEAD + sum(map(text_bytes, text)) + results


def tag(key: str, value: str) -> tuple[str, str]:
    checked = check_tags({key: value}, "tag", errors.InvalidTag.reason_code)
    return key, checked[key]


def tag_key(key: str) -> str:
    """A tag key to delete: the same bounds as one being set, so an error naming it stays small."""
    return require_key(key, "key", errors.InvalidTag.reason_code)


def alias_name(name: str) -> str:
    """An alias to look up or delete: any name an alias may have (and `latest`), bounded."""
    return require_name(name, "alias", errors.InvalidAlias.reason_code, MAX_ALIAS_LENGTH)


def source(text: str) -> str:
    if not text.strip():
        raise errors.InvalidSource("source must not be empty", "source")
    return require_value(text, "source", errors.InvalidSource.reason_code, MAX_SOURCE_LENGTH)


def alias(name: str) -> str:
    """An alias to set: letters, digits, '_' and '-'; not `latest`, not version-like."""
    if not name or len(name) > MAX_ALIAS_LENGTH or not _ALIAS_RE.fullmatch(name):
        raise errors.InvalidAlias(
            f"alias must be 1..{MAX_ALIAS_LENGTH} letters, digits, '_' or '-'",
            "alias",
        )
    if name.lower() == RESERVED_ALIAS or _VERSION_LIKE_RE.fullmatch(name):
        raise errors.InvalidAlias(f"alias '{name}' is reserved", "alias")
    return name


def protection(production: bool, aliases: list[str]) -> ModelProtection:
    """A model's protection: each alias one that could be set (rules.alias), sorted, unique."""
    if len(aliases) > MAX_PROTECTED_ALIASES:
        raise errors.InvalidAlias(f"at most {MAX_PROTECTED_ALIASES} aliases can be protected", "aliases")
    return ModelProtection(production, tuple(sorted({alias(name) for name in aliases})))


def stage(name: str, field: str = "stage") -> Stage:
    """Parses a stage name case-insensitively ("production", "Production", "PRODUCTION")."""
    found = _STAGES.get(name.strip().lower())
    if found is None:
        raise errors.InvalidStage(
            f"{field} '{name[:64]}' is not one of None, Staging, Production, Archived",
            field,
        )
    return found


def rollback_stage(name: str) -> Stage:
    parsed = stage(name)
    if parsed not in ROLLBACK_STAGES:
        raise errors.InvalidStage("only Staging and Production can be rolled back", "stage")
    return parsed


def run_id(value: str) -> str:
    """The run a version is registered from: only the tracking service's ids can name one."""
    return require_run_id(value)


def runs_uri_run_id(source_uri: str) -> str | None:
    """The run id of a ``runs:/<run_id>/<path>`` URI, None for any other URI."""
    if not source_uri.startswith("runs:/"):
        return None
    implied = source_uri.removeprefix("runs:/").split("/", 1)[0]
    if not implied:
        return None
    try:
        return require_run_id(implied)
    except InvalidArgumentError:
        raise errors.InvalidSource(
            f"source names run '{implied[:64]}', which is no run id", "source"
        ) from None


def file_path(path: str) -> str:
    """A path to look up among a version's files: bounded, and no NUL (as no stored path has)."""
    return require_value(path, "path", errors.InvalidPath.reason_code, MAX_SOURCE_LENGTH)


@dataclass(frozen=True)
class ModelUri:
    """A parsed ``models:/`` URI: exactly one of version, stage, alias or latest is set."""

    name: str
    version: int | None = None
    stage: Stage | None = None
    alias: str | None = None
    latest: bool = False


def model_uri(uri: str) -> ModelUri:
    """Parses models:/Name/<version>, models:/Name/<stage>, models:/Name@<alias>, models:/Name/latest.

    The name and alias follow the rules of names and aliases looked up elsewhere, and a version
    is an ASCII number from 1 to int64's maximum: anything else is INVALID_MODEL_URI, so no URI
    reaches a query that a backend would fail on (NUL, a number beyond BIGINT)."""

    def bad(why: str) -> Exception:
        return errors.InvalidModelUri(f"model URI '{uri[:300]}': {why}", "uri")

    def checked(part: str, check: Callable[[str], str]) -> str:
        try:
            return check(part)
        except InvalidArgumentError as error:
            raise bad(error.message) from None

    if not uri.startswith("models:/"):
        raise bad("must start with models:/")
    rest = uri.removeprefix("models:/")
    if "@" in rest:
        name, _, alias_part = rest.partition("@")
        if not name or "/" in name or not alias_part:
            raise bad("expected models:/<name>@<alias>")
        return ModelUri(name=checked(name, model_name), alias=checked(alias_part, alias_name))
    name, _, suffix = rest.rpartition("/")
    if not name or not suffix or "/" in name:
        raise bad("expected models:/<name>/<version|stage|latest>")
    name = checked(name, model_name)
    if _VERSION_NUMBER_RE.fullmatch(suffix):
        # The length first: int() refuses a string of over 4,300 digits.
        if len(suffix) > len(str(INT64_MAX)) or not 1 <= int(suffix) <= INT64_MAX:
            raise bad(f"version must be from 1 to {INT64_MAX}")
        return ModelUri(name=name, version=int(suffix))
    if suffix.lower() == RESERVED_ALIAS:
        return ModelUri(name=name, latest=True)
    parsed = _STAGES.get(suffix.lower())
    if parsed is None:
        raise bad(f"'{suffix[:64]}' is not a version number, a stage or 'latest'")
    return ModelUri(name=name, stage=parsed)


def one_line(text: str, field: str, error: type[errors.InvalidField], max_length: int) -> str:
    """Text recorded in the history as one line (a serving report's detail and instance): within
    ``max_length`` characters, and nothing that could end the line, move the cursor or hide text
    where it is shown (CLI, webhook receivers' logs)."""
    if len(text) > max_length:
        raise error(f"{field} is {len(text)} characters, the limit is {max_length}", field)
    if CONTROL_CHARACTERS.search(text):
        raise error(f"{field} must be one line without control characters", field)
    return text
