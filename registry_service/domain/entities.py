"""The registry's entities: frozen dataclasses that the store returns and the api converts."""

from __future__ import annotations

import enum
from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from typing import Generic, NewType, TypeVar

from modelreg_server.access.policy import Grant, GrantEvent, Level

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
    PERMISSION_SET = "PERMISSION_SET"
    PERMISSION_DELETED = "PERMISSION_DELETED"
    PROTECTION_SET = "PROTECTION_SET"
    MODEL_TAG_SET = "MODEL_TAG_SET"
    MODEL_TAG_DELETED = "MODEL_TAG_DELETED"
    MODEL_DESCRIPTION_UPDATED = "MODEL_DESCRIPTION_UPDATED"
    VERSION_TAG_SET = "VERSION_TAG_SET"
    VERSION_TAG_DELETED = "VERSION_TAG_DELETED"
    VERSION_DESCRIPTION_UPDATED = "VERSION_DESCRIPTION_UPDATED"
    GATE_SET = "GATE_SET"
    GATE_DELETED = "GATE_DELETED"
    APPROVAL_REQUESTED = "APPROVAL_REQUESTED"
    APPROVAL_GRANTED = "APPROVAL_GRANTED"
    APPROVAL_REJECTED = "APPROVAL_REJECTED"
    PROMOTION_REFUSED = "PROMOTION_REFUSED"
    SERVING_LOADED = "SERVING_LOADED"
    SERVING_LOAD_FAILED = "SERVING_LOAD_FAILED"


@dataclass(frozen=True)
class FileDigest:
    """One file of a model: path relative to the model's source directory, size, sha256 hex."""

    path: str
    size: int
    sha256: str


@dataclass(frozen=True)
class ModelFile:
    """One registered file of a version on its way out: its digest as registered, then its bytes."""

    digest: FileDigest
    chunks: Generator[bytes, None, None]  # close it to stop the download early


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
class GateResult:
    """One check of a promotion gate: the clause as written back, whether it held, the values
    compared (registry_service.domain.gates)."""

    clause: str
    passed: bool
    left: str = ""
    right: str = ""
    message: str = ""


@dataclass(frozen=True)
class ModelEvent:
    """An immutable history entry; ``name`` is the model's name when the event happened and
    ``model_id`` the model it belongs to (a name deleted and created again is a new model)."""

    event_id: int
    name: str
    version: int  # 0 for model-level events
    action: EventAction
    from_value: str
    to_value: str
    actor: str
    time: int
    comment: str
    model_id: int
    # What a gated promotion (or its refusal) recorded: the gate's results, who approved it,
    # whether an admin overrode the gate.
    gate_results: tuple[GateResult, ...] = ()
    approver: str = ""
    gate_overridden: bool = False


@dataclass(frozen=True)
class NewEvent:
    """An event about to be appended; the store fills in id, model and time."""

    action: EventAction
    version: int = 0
    from_value: str = ""
    to_value: str = ""
    comment: str = ""


@dataclass(frozen=True)
class ModelProtection:
    """Which changes need MANAGE rather than EDIT: moving a version into or out of Production
    (``production``), and setting, moving or deleting one of ``aliases`` (sorted)."""

    production: bool = True
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class ModelAccess:
    """What a permission check needs of one model: the highest level its grants give the caller
    (None: no grant) and its protection."""

    granted: Level | None
    protection: ModelProtection


@dataclass(frozen=True)
class ModelPermissions:
    """The grants on a model (users first, then groups, each by name), its protection, and the
    history of both (oldest first)."""

    grants: tuple[Grant, ...]
    protection: ModelProtection
    events: tuple[GrantEvent, ...]


@dataclass(frozen=True)
class RollbackResult:
    restored: ModelVersion
    archived: ModelVersion | None


@dataclass(frozen=True)
class Page(Generic[T]):
    items: tuple[T, ...]
    next_page_token: str
