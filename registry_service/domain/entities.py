"""The registry's entities: frozen dataclasses that the store returns and the api converts."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Generic, NewType, TypeVar

T = TypeVar("T")


class Stage(enum.Enum):
    """MLflow's deployment stages; the value is the display name."""

    NONE = "None"
    STAGING = "Staging"
    PRODUCTION = "Production"
    ARCHIVED = "Archived"


class VersionStatus(enum.Enum):
    PENDING_REGISTRATION = "PENDING_REGISTRATION"
    FAILED_REGISTRATION = "FAILED_REGISTRATION"
    READY = "READY"


class EventAction(enum.Enum):
    """What a history event records (the proto's EventAction without the prefix)."""

    VERSION_CREATED = "VERSION_CREATED"
    VERSION_DELETED = "VERSION_DELETED"
    STAGE_TRANSITIONED = "STAGE_TRANSITIONED"
    STAGE_ROLLED_BACK = "STAGE_ROLLED_BACK"
    ALIAS_SET = "ALIAS_SET"
    ALIAS_MOVED = "ALIAS_MOVED"
    ALIAS_DELETED = "ALIAS_DELETED"
    MODEL_CREATED = "MODEL_CREATED"
    MODEL_DELETED = "MODEL_DELETED"
    MODEL_RENAMED = "MODEL_RENAMED"


@dataclass(frozen=True)
class FileDigest:
    """One file of a model: path relative to the model's source directory, size, sha256 hex."""

    path: str
    size: int
    sha256: str


@dataclass(frozen=True)
class LineageRecord:
    """Where a version came from, copied from the tracking service at registration."""

    run_id: str
    experiment_id: str
    run_name: str
    artifact_path: str
    params: Mapping[str, str] = field(default_factory=dict)
    metrics: Mapping[str, float] = field(default_factory=dict)
    run_tags: Mapping[str, str] = field(default_factory=dict)
    files: tuple[FileDigest, ...] = ()


EncodedLineage = NewType("EncodedLineage", bytes)
"""A LineageRecord in its stored form (see registry_service.lineage_codec). Domain and store only
carry it: reads hand it to the response as it is instead of rebuilding it for every version."""


@dataclass(frozen=True)
class ModelVersion:
    name: str
    version: int
    creation_time: int
    last_updated_time: int
    current_stage: Stage
    description: str
    source: str
    run_id: str
    status: VersionStatus
    status_message: str
    user_id: str
    tags: Mapping[str, str] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()
    lineage: EncodedLineage | None = None


@dataclass(frozen=True)
class RegisteredModel:
    name: str
    creation_time: int
    last_updated_time: int
    description: str
    tags: Mapping[str, str] = field(default_factory=dict)
    # The newest version in each stage that has one, ordered by stage.
    latest_versions: tuple[ModelVersion, ...] = ()
    # alias -> version number
    aliases: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelEvent:
    """An immutable history entry; ``name`` is the model's name when the event happened."""

    event_id: int
    name: str
    version: int  # 0 for model-level events
    action: EventAction
    from_value: str
    to_value: str
    actor: str
    time: int
    comment: str


@dataclass(frozen=True)
class NewEvent:
    """An event about to be appended; the store fills in id, model and time."""

    action: EventAction
    version: int = 0
    from_value: str = ""
    to_value: str = ""
    comment: str = ""


@dataclass(frozen=True)
class RollbackResult:
    restored: ModelVersion
    archived: ModelVersion | None


@dataclass(frozen=True)
class Page(Generic[T]):
    items: tuple[T, ...]
    next_page_token: str
