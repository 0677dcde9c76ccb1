"""What the tracking service's searches accept, declared in the shared grammar
(modelreg_server.filters), following MLflow's rules.

Runs: ``metrics.<key>`` (numbers), ``params.<key>`` and ``tags.<key>`` (strings), and the run
attributes; ordered by any metric, param or tag, or by an attribute. Experiments: ``name``,
``tags.<key>``, ids and times; ordered by those attributes.
"""

from __future__ import annotations

from modelreg_server.filters import (
    NUMERIC_OPS,
    STRING_OPS,
    Attribute,
    Comparison,
    Entity,
    Kind,
    OrderBy,
    SearchSpec,
    Value,
    parse_filter,
    parse_order_by,
)

__all__ = [
    "EXPERIMENT_SEARCH",
    "NUMERIC_OPS",
    "RUN_SEARCH",
    "STRING_OPS",
    "Comparison",
    "Entity",
    "OrderBy",
    "SearchSpec",
    "Value",
    "parse_filter",
    "parse_order_by",
]

# The attributes each search orders by.
_RUN_ORDERABLE = ("start_time", "end_time", "run_name", "status", "run_id", "artifact_uri")
_EXPERIMENT_ORDERABLE = ("name", "experiment_id", "creation_time", "last_update_time")

_EXPERIMENT_TEXT_OPS = frozenset({"=", "!=", "LIKE", "ILIKE"})

RUN_SEARCH = SearchSpec(
    entity_ops={Entity.METRIC: NUMERIC_OPS, Entity.PARAM: STRING_OPS, Entity.TAG: STRING_OPS},
    attributes=(
        Attribute("run_id", Kind.STRING, STRING_OPS),
        Attribute("run_name", Kind.STRING, STRING_OPS),
        Attribute("status", Kind.STRING, STRING_OPS),
        Attribute("artifact_uri", Kind.STRING, STRING_OPS),
        Attribute("start_time", Kind.NUMBER, NUMERIC_OPS, aliases=("created",)),
        Attribute("end_time", Kind.NUMBER, NUMERIC_OPS),
    ),
    orderable={**{name: name for name in _RUN_ORDERABLE}, "created": "start_time"},
    order_entities=frozenset({Entity.METRIC, Entity.PARAM, Entity.TAG}),
)
EXPERIMENT_SEARCH = SearchSpec(
    entity_ops={Entity.TAG: _EXPERIMENT_TEXT_OPS},
    attributes=(
        Attribute("name", Kind.STRING, _EXPERIMENT_TEXT_OPS),
        Attribute("experiment_id", Kind.NUMBER, NUMERIC_OPS),
        Attribute("creation_time", Kind.NUMBER, NUMERIC_OPS),
        Attribute("last_update_time", Kind.NUMBER, NUMERIC_OPS),
    ),
    orderable={name: name for name in _EXPERIMENT_ORDERABLE},
)
