"""What a watch of the event log is: its filters, its cursors and its limits."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from modelreg_server import event_log
from registry_service.domain import errors, rules
from registry_service.domain.entities import EventAction, ModelEvent

MAX_ACTIONS, MAX_STAGES, MAX_ALIASES = 64, 4, 100
# The actions whose from/to values are stages, and those about an alias (and where it is).
_STAGE_ACTIONS = frozenset(
    {EventAction.VERSION_CREATED, EventAction.VERSION_DELETED, EventAction.STAGE_TRANSITIONED}
)
_ACTION_PREFIX = "EVENT_ACTION_"


@dataclass(frozen=True)
class WatchLimits:
    """MODELREG_MAX_WATCHERS, MODELREG_WATCH_MAX_SECONDS, MODELREG_WATCH_HEARTBEAT_SECONDS."""

    max_watchers: int = 1_000
    max_seconds: float = 900.0
    heartbeat_seconds: float = 10.0


@dataclass(frozen=True)
class WatchItem:
    """An event and the cursor after it, or a heartbeat (no event) and the cursor of the log's
    position examined."""

    event: ModelEvent | None
    cursor: str


@dataclass(frozen=True)
class WatchQuery:
    """Which events a watch sends: of ``model_id`` (None: every model), of ``actions`` (empty:
    all), and of ``stages`` or ``aliases`` when either is given."""

    model_id: int | None
    actions: frozenset[EventAction]
    stages: frozenset[str]
    aliases: frozenset[str]
    # The model's name when the watch started (for messages).
    name: str = ""

    def matches(self, event: ModelEvent) -> bool:
        if self.model_id is not None and event.model_id != self.model_id:
            return False
        if self.actions and event.action not in self.actions:
            return False
        if not self.stages and not self.aliases:
            return True
        return self._of_stage(event) or self._of_alias(event)

    def _of_stage(self, event: ModelEvent) -> bool:
        return event.action in _STAGE_ACTIONS and bool({event.from_value, event.to_value} & self.stages)

    def _of_alias(self, event: ModelEvent) -> bool:
        match event.action:
            case EventAction.ALIAS_SET:
                return event.to_value in self.aliases
            case EventAction.ALIAS_DELETED:
                return event.from_value in self.aliases
            case EventAction.ALIAS_MOVED:  # the alias travels in the comment
                return event.comment in self.aliases
        return False


def query(actions: Sequence[str], stages: Sequence[str], aliases: Sequence[str]) -> WatchQuery:
    """The filters of a watch, checked (``actions`` are EventAction names, with or without the
    proto's prefix); the model is set once it is found."""
    for values, field, limit in ((actions, "actions", MAX_ACTIONS), (stages, "stages", MAX_STAGES)):
        if len(values) > limit:
            raise errors.TooManyFilters(f"{field} holds {len(values)} entries, at most {limit}", field)
    if len(aliases) > MAX_ALIASES:
        raise errors.TooManyFilters(f"aliases holds {len(aliases)} entries, at most {MAX_ALIASES}", "aliases")
    return WatchQuery(
        model_id=None,
        actions=frozenset(map(_action, actions)),
        stages=frozenset(rules.stage(stage, "stages").value for stage in stages),
        aliases=frozenset(rules.alias_name(alias) for alias in aliases),
    )


def _action(name: str) -> EventAction:
    found = EventAction.__members__.get(name.removeprefix(_ACTION_PREFIX))
    if found is None:
        shown = name[:64]
        raise errors.InvalidAction(f"actions: '{shown}' is not an event action", "actions")
    return found


def decode_cursor(cursor: str, from_beginning: bool) -> int | None:
    """The position a watch starts after: the cursor's, 0 from the beginning, None from now."""
    if not cursor:
        return 0 if from_beginning else None
    if from_beginning:
        raise errors.InvalidCursor("cursor and from_beginning exclude each other", "cursor")
    return event_log.decode_cursor(cursor)
