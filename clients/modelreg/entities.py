"""What the client returns: frozen dataclasses with the attribute names MLflow users read.

Timestamps are int64 milliseconds since the Unix epoch. Stages are MLflow's strings
(``"None"``, ``"Staging"``, ``"Production"``, ``"Archived"``); run statuses are
``"RUNNING"``, ``"SCHEDULED"``, ``"FINISHED"``, ``"FAILED"``, ``"KILLED"``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Metric:
    key: str
    value: float
    timestamp: int
    step: int = 0


@dataclass(frozen=True)
class Param:
    key: str
    value: str


@dataclass(frozen=True)
class RunTag:
    key: str
    value: str


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    experiment_id: str
    run_name: str
    status: str
    start_time: int
    end_time: int | None
    artifact_uri: str
    lifecycle_stage: str
    parent_run_id: str | None = None

    @property
    def run_uuid(self) -> str:
        """MLflow's older name for ``run_id``."""
        return self.run_id


@dataclass(frozen=True)
class RunData:
    metrics: Mapping[str, float] = field(default_factory=dict)
    params: Mapping[str, str] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Run:
    info: RunInfo
    data: RunData


@dataclass(frozen=True)
class Experiment:
    experiment_id: str
    name: str
    artifact_location: str
    lifecycle_stage: str
    creation_time: int
    last_update_time: int
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class FileInfo:
    """A file or directory under a run's artifact root; directories have size 0 and no sha256."""

    path: str
    is_dir: bool
    file_size: int
    sha256: str


@dataclass(frozen=True)
class FileDigest:
    path: str
    size: int
    sha256: str


@dataclass(frozen=True)
class Lineage:
    """Where a model version came from, as recorded by the registry at registration."""

    run_id: str
    experiment_id: str
    run_name: str
    params: Mapping[str, str]
    metrics: Mapping[str, float]
    run_tags: Mapping[str, str]
    artifact_path: str
    files: tuple[FileDigest, ...]


@dataclass(frozen=True)
class ModelVersion:
    name: str
    version: int
    creation_timestamp: int
    last_updated_timestamp: int
    current_stage: str
    description: str
    source: str
    run_id: str | None
    status: str
    status_message: str
    tags: Mapping[str, str] = field(default_factory=dict)
    aliases: list[str] = field(default_factory=list)
    lineage: Lineage | None = None
    user_id: str = ""


@dataclass(frozen=True)
class RegisteredModel:
    name: str
    creation_timestamp: int
    last_updated_timestamp: int
    description: str
    tags: Mapping[str, str] = field(default_factory=dict)
    latest_versions: list[ModelVersion] = field(default_factory=list)
    aliases: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelEvent:
    """One entry of a registered model's audit history.

    ``action`` is one of VERSION_CREATED, VERSION_DELETED, STAGE_TRANSITIONED, STAGE_ROLLED_BACK,
    ALIAS_SET, ALIAS_MOVED, ALIAS_DELETED, MODEL_CREATED, MODEL_DELETED, MODEL_RENAMED;
    ``version`` is 0 for model-level events.
    """

    event_id: int
    name: str
    version: int
    action: str
    from_value: str
    to_value: str
    actor: str
    time: int
    comment: str


@dataclass(frozen=True)
class RollbackResult:
    """The outcome of a stage rollback: the version restored and the one archived (if any)."""

    restored: ModelVersion
    archived: ModelVersion | None


@dataclass(frozen=True)
class VersionSeal:
    """What sealing one registered version's source did (``Client.seal_registered_versions``).

    ``status`` is ``SEALED`` (``files`` files are sealed now: sealed just now or before, sealing
    being idempotent), ``FAILED`` (``code`` and ``reason`` as the tracking service answered, e.g.
    ``FAILED_PRECONDITION`` / ``RUN_DELETED``, and its ``message``) or ``SKIPPED`` (reason
    ``NO_LINEAGE``: registered without a run, so tracking holds none of its files).
    """

    name: str
    version: int
    run_id: str | None
    artifact_path: str | None
    status: str
    files: int = 0
    code: str = ""
    reason: str = ""
    message: str = ""


class PagedList(list[T]):
    """A list of results plus ``token``, the page token of the next page (None at the end).

    MLflow's ``PagedList`` has the same shape, so ``for mv in client.search_model_versions(...)``
    and ``page.token`` work as MLflow users expect.
    """

    def __init__(self, items: Iterable[T] = (), token: str | None = None) -> None:
        super().__init__(items)
        self.token = token


@dataclass(frozen=True)
class User:
    """A user of services with access control on (``modelreg users``)."""

    name: str
    admin: bool
    service: bool
    disabled: bool
    groups: tuple[str, ...]
    created_at: int
    created_by: str


@dataclass(frozen=True)
class Token:
    """An API token, never its secret. ``expires_at``/``revoked_at`` are None when not set."""

    id: str
    user: str
    description: str
    created_at: int
    created_by: str
    expires_at: int | None
    revoked_at: int | None


@dataclass(frozen=True)
class CreatedToken:
    """A new token: ``secret`` is the bearer string, shown only this once."""

    token: Token
    secret: str


@dataclass(frozen=True)
class Identity:
    """Who a service takes the caller to be (``modelreg whoami``)."""

    name: str
    groups: tuple[str, ...]
    admin: bool
    service: bool
    authenticated_by: str


@dataclass(frozen=True)
class AccessEvent:
    """One change to users or tokens: USER_CREATED, USER_UPDATED, TOKEN_CREATED, TOKEN_REVOKED."""

    time: int
    actor: str
    action: str
    target: str
    detail: str
    request_id: str


@dataclass(frozen=True)
class Permission:
    """A grant on an experiment or a registered model: to ``user`` or ``group`` (one is empty)."""

    user: str
    group: str
    level: str  # READ, EDIT or MANAGE
    granted_by: str
    granted_at: int


@dataclass(frozen=True)
class PermissionEvent:
    """One change to the grants of a resource: ``action`` SET, DELETE or PROTECTION."""

    time: int
    actor: str
    action: str
    user: str
    group: str
    level: str
    request_id: str


@dataclass(frozen=True)
class ModelProtection:
    """Which changes to a registered model need MANAGE rather than EDIT: moving a version into or
    out of Production (``production``), and setting, moving or deleting the named ``aliases``."""

    production: bool
    aliases: tuple[str, ...]
