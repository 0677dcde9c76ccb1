"""What the registry's searches accept, declared in the shared grammar (modelreg_server.filters).

Registered models: ``name`` and ``tags.<key>``. Model versions: ``name`` (the model's),
``run_id``, ``version`` (alias ``version_number``, an integer), ``source``, ``current_stage``
(any spelling of a stage: ``'production'`` becomes ``Production``) and ``tags.<key>``. Both order
by name and times, under MLflow's names (``creation_timestamp``) and ours (``creation_time``);
versions also by version number.
"""

from __future__ import annotations

from modelreg_server.errors import InvalidArgumentError
from modelreg_server.filters import (
    Attribute,
    Comparison,
    Entity,
    Kind,
    OrderBy,
    SearchSpec,
    parse_filter,
    parse_order_by,
)
from registry_service.domain import rules

__all__ = [
    "MODEL_SEARCH",
    "VERSION_SEARCH",
    "Comparison",
    "Entity",
    "OrderBy",
    "parse_filter",
    "parse_order_by",
]

_TEXT_OPS = frozenset({"=", "!=", "LIKE", "ILIKE"})
_ID_OPS = frozenset({"=", "!=", "IN"})
_NUMBER_OPS = frozenset({"=", "!=", "<", "<=", ">", ">=", "IN"})


def _stage_name(text: str) -> str | None:
    """The display name of the stage ``text`` names in any case, as the rules parse it."""
    try:
        return rules.stage(text).value
    except InvalidArgumentError:
        return None


_MODEL_ORDER = {
    "name": "name",
    "creation_timestamp": "creation_time",
    "creation_time": "creation_time",
    "last_updated_timestamp": "last_updated_time",
    "last_updated_time": "last_updated_time",
}

MODEL_SEARCH = SearchSpec(
    entity_ops={Entity.TAG: _TEXT_OPS},
    attributes=(Attribute("name", Kind.STRING, _TEXT_OPS),),
    orderable=_MODEL_ORDER,
)
VERSION_SEARCH = SearchSpec(
    entity_ops={Entity.TAG: _TEXT_OPS},
    attributes=(
        Attribute("name", Kind.STRING, _TEXT_OPS),
        Attribute("run_id", Kind.STRING, _ID_OPS),
        Attribute("version", Kind.INT, _NUMBER_OPS, aliases=("version_number",)),
        Attribute("source", Kind.STRING, frozenset({"=", "LIKE"})),
        Attribute("current_stage", Kind.ENUM, _ID_OPS, normalise=_stage_name),
    ),
    orderable={**_MODEL_ORDER, "version": "version", "version_number": "version"},
)
