"""What the client returns: frozen dataclasses with the attribute names MLflow users read.

Timestamps are int64 milliseconds since the Unix epoch. Stages are MLflow's strings
(``"None"``, ``"Staging"``, ``"Production"``, ``"Archived"``); run statuses are
``"RUNNING"``, ``"SCHEDULED"``, ``"FINISHED"``, ``"FAILED"``, ``"KILLED"``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import ClassVar, TypeVar

T = TypeVar("T")


class RunStatus:
    """MLflow's ``RunStatus``: the run statuses, as the strings ``run.info.status`` holds."""

    RUNNING: ClassVar[str] = "RUNNING"
    SCHEDULED: ClassVar[str] = "SCHEDULED"
    FINISHED: ClassVar[str] = "FINISHED"
    FAILED: ClassVar[str] = "FAILED"
    KILLED: ClassVar[str] = "KILLED"
    _ALL: ClassVar[tuple[str, ...]] = (RUNNING, SCHEDULED, FINISHED, FAILED, KILLED)

    @staticmethod
    def is_terminated(status: str) -> bool:
        return status in (RunStatus.FINISHED, RunStatus.FAILED, RunStatus.KILLED)

    @staticmethod
    def all_status() -> list[str]:
        return list(RunStatus._ALL)


class ViewType:
    """MLflow's ``ViewType``: which runs or experiments a search returns. Searches take these ints
    or the names ("ACTIVE_ONLY", "DELETED_ONLY", "ALL")."""

    ACTIVE_ONLY: ClassVar[int] = 1
    DELETED_ONLY: ClassVar[int] = 2
    ALL: ClassVar[int] = 3


class Version(str):
    """A model version number as MLflow hands it out: the string ``"3"``, which also equals the
    int ``3`` (``mv.version == 3`` and ``mv.version == "3"`` both hold, and ``int(mv.version)``
    is the number). Ordering is a string's, as in MLflow: sort by ``int(v)``. Hashing is the
    string's too (no hash can agree with both ``"3"`` and ``3``): as a set member or dict key,
    ``v`` matches ``"3"``, not ``3``; look up int-keyed collections by ``int(v)``."""

    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        if isinstance(other, int) and not isinstance(other, bool):
            return str.__eq__(self, str(other))
        return str.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    __hash__ = str.__hash__

    def __repr__(self) -> str:
        return f"'{self}'"


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
    # Who created the run, as MLflow's ``run.info.user_id``: the ``mlflow.user`` tag the fluent
    # API sets ("" when the run has none).
    user_id: str = ""

    @property
    def run_uuid(self) -> str:
        """MLflow's older name for ``run_id``."""
        return self.run_id


@dataclass(frozen=True)
class RunData:
    metrics: Mapping[str, float] = field(default_factory=dict)
    params: Mapping[str, str] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)
    # The latest point of each metric with its timestamp and step (``metrics`` keeps only the
    # value, as MLflow's ``run.data.metrics``). It repeats ``metrics``, so equality ignores it.
    latest_metrics: tuple[Metric, ...] = field(default=(), compare=False)


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
    version: Version
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
    aliases: Mapping[str, Version] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelEvent:
    """One entry of a registered model's audit history.

    ``action`` is one of VERSION_CREATED, VERSION_DELETED, STAGE_TRANSITIONED, STAGE_ROLLED_BACK,
    ALIAS_SET, ALIAS_MOVED, ALIAS_DELETED, MODEL_CREATED, MODEL_DELETED, MODEL_RENAMED, the
    permission, tag and description events, GATE_SET, GATE_DELETED, APPROVAL_REQUESTED,
    APPROVAL_GRANTED, APPROVAL_REJECTED, PROMOTION_REFUSED, SERVING_LOADED and SERVING_LOAD_FAILED
    (the proto's EventAction; a serving report's to_value is the instance, comment its detail);
    ``version`` is 0 for model-level events. ``model_id`` is the registered model the event
    belongs to: a name deleted and created again names a new model, with a new id.
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
    model_id: int = 0
    # Where a watch resumes after this event (watch_model_events; empty from list_model_events).
    cursor: str = ""
    # A gated promotion or its PROMOTION_REFUSED event: the gate's checks, the approver, and
    # whether an admin overrode the gate.
    gate_results: tuple[GateResult, ...] = ()
    approver: str = ""
    gate_overridden: bool = False


@dataclass(frozen=True)
class RunEvent:
    """One entry of the runs' lifecycle log. ``action`` is FINISHED, FAILED, KILLED, DELETED or
    RESTORED; ``cursor`` is where a later ``list_run_events(cursor=...)`` resumes after it."""

    cursor: str
    run_id: str
    experiment_id: str
    action: str
    actor: str
    time: int
    request_id: str


@dataclass(frozen=True)
class RunEvents:
    """A batch of run lifecycle events and the cursor to ask with next (unchanged when empty)."""

    events: tuple[RunEvent, ...]
    next_cursor: str


@dataclass(frozen=True)
class GateResult:
    """One check of a promotion gate: ``clause`` as the gate reads it, whether it ``passed``,
    the values compared and a one-line ``message``."""

    clause: str
    passed: bool
    left: str
    right: str
    message: str


@dataclass(frozen=True)
class PromotionGate:
    """What a promotion of a version of ``name`` into ``target`` ("Staging", "Production" or
    "@alias") must satisfy (README, "Promotion gates and approvals")."""

    name: str
    target: str
    condition: str
    require_signature: bool
    require_digests: bool
    approvals_required: int
    updated_by: str
    updated_time: int


@dataclass(frozen=True)
class ApprovalRequest:
    """A request to promote one version into one target; ``status`` is PENDING, APPROVED,
    REJECTED, CONSUMED or EXPIRED."""

    request_id: int
    name: str
    version: int
    target: str
    status: str
    requested_by: str
    requested_time: int
    expires_time: int
    comment: str
    decided_by: str
    decided_time: int
    decision_comment: str


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
