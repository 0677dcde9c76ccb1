"""Frozen entities the store returns and the api layer converts to protos."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from modelreg_server.access.policy import Level, Subject
from modelreg_server.context import CallContext

T = TypeVar("T")


class LifecycleStage(enum.StrEnum):
    ACTIVE = "active"
    DELETED = "deleted"


class RunStatus(enum.StrEnum):
    RUNNING = "RUNNING"
    SCHEDULED = "SCHEDULED"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    KILLED = "KILLED"


class ViewType(enum.Enum):
    ACTIVE_ONLY = "active_only"
    DELETED_ONLY = "deleted_only"
    ALL = "all"

    @property
    def stages(self) -> tuple[LifecycleStage, ...]:
        if self is ViewType.ACTIVE_ONLY:
            return (LifecycleStage.ACTIVE,)
        if self is ViewType.DELETED_ONLY:
            return (LifecycleStage.DELETED,)
        return (LifecycleStage.ACTIVE, LifecycleStage.DELETED)


DEFAULT_EXPERIMENT_ID = "0"
DEFAULT_EXPERIMENT_NAME = "Default"


@dataclass(frozen=True)
class Experiment:
    experiment_id: str
    name: str
    artifact_location: str
    lifecycle_stage: LifecycleStage
    creation_time: int
    last_update_time: int
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Metric:
    key: str
    value: float
    timestamp: int
    step: int = 0


class MetricPoint(Protocol):
    """What the domain validates and the store reads from a metric it logs: a Metric, or anything
    with the same fields, such as the generated Metric message.

    The api layer hands the decoded protos over as they are, and nothing below it needs to know
    they are protos: on the LogMetrics path (10,000 points a message) a copy into a Metric per
    point would cost more than the database insert.
    """

    @property
    def key(self) -> str: ...
    @property
    def value(self) -> float: ...
    @property
    def timestamp(self) -> int: ...
    @property
    def step(self) -> int: ...


@dataclass(frozen=True)
class Param:
    key: str
    value: str


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    experiment_id: str
    run_name: str
    status: RunStatus
    start_time: int
    end_time: int | None
    artifact_uri: str
    lifecycle_stage: LifecycleStage
    parent_run_id: str | None = None


@dataclass(frozen=True)
class RunData:
    metrics: tuple[Metric, ...] = ()
    params: tuple[Param, ...] = ()
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Run:
    info: RunInfo
    data: RunData


@dataclass(frozen=True)
class ArtifactFile:
    """A file recorded in a run's artifact manifest, or a directory derived from the paths."""

    path: str
    is_dir: bool
    size: int = 0
    sha256: str = ""


class RunEventAction(enum.StrEnum):
    """What a run lifecycle event records (the proto's RunEventAction without its prefix)."""

    FINISHED = "FINISHED"
    FAILED = "FAILED"
    KILLED = "KILLED"
    DELETED = "DELETED"
    RESTORED = "RESTORED"


# The status changes that are lifecycle events: a run reaching a terminal status.
TERMINAL_STATUS_EVENTS = {
    RunStatus.FINISHED: RunEventAction.FINISHED,
    RunStatus.FAILED: RunEventAction.FAILED,
    RunStatus.KILLED: RunEventAction.KILLED,
}


@dataclass(frozen=True, slots=True)
class RunEvent:
    """An entry of the runs' lifecycle log; ``position`` orders the log in commit order."""

    position: int
    run_id: str
    experiment_id: int
    action: RunEventAction
    actor: str
    time: int
    request_id: str


@dataclass(frozen=True)
class Page(Generic[T]):
    items: tuple[T, ...]
    next_page_token: str


@dataclass(frozen=True, slots=True)
class ExperimentAccess:
    """What a permission check needs to know of an experiment (or of a run's experiment): its id,
    and the highest level granted to the caller or its groups (None without a grant)."""

    experiment_id: int
    granted: Level | None


@dataclass(frozen=True, slots=True)
class NewGrant:
    """A grant to write: to whom, which level, and the call making it (the grant's ``granted_by``
    and its event's actor and request id)."""

    subject: Subject
    level: Level
    ctx: CallContext
