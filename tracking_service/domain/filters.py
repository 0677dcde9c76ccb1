"""What the tracking service's searches accept, declared in the shared grammar
(modelreg_server.filters), following MLflow's rules.

Runs: ``metrics.<key>`` (numbers), ``params.<key>`` and ``tags.<key>`` (strings), and the run
attributes; ordered by any metric, param or tag, or by an attribute. Experiments: ``name``,
``tags.<key>``, ids and times; ordered by those attributes.

MLflow's system tags (``mlflow.*``) on runs: ``tags.mlflow.runName`` and
``tags.mlflow.parentRunId`` are the run's name and parent, kept in the run's columns (the client
shows them as tags), so a filter or order on them is one on ``attributes.run_name`` /
``attributes.parent_run_id``; ``attributes.user_id`` (MLflow's) is the ``mlflow.user`` tag. Every
other ``mlflow.*`` key is a tag like any other, as in MLflow: the client sets those with MLflow's
meaning (``mlflow.user``, ``mlflow.source.*``, ``mlflow.note.content``, ...), and runs imported or
tagged by other tools may hold more.
"""

from __future__ import annotations

import dataclasses

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
    "parse_run_filter",
    "parse_run_order_by",
]

# The attributes each search orders by.
_RUN_ORDERABLE = ("start_time", "end_time", "run_name", "status", "run_id", "parent_run_id", "artifact_uri")
_EXPERIMENT_ORDERABLE = ("name", "experiment_id", "creation_time", "last_update_time")

_EXPERIMENT_TEXT_OPS = frozenset({"=", "!=", "LIKE", "ILIKE"})

RUN_SEARCH = SearchSpec(
    entity_ops={Entity.METRIC: NUMERIC_OPS, Entity.PARAM: STRING_OPS, Entity.TAG: STRING_OPS},
    attributes=(
        Attribute("run_id", Kind.STRING, STRING_OPS),
        Attribute("run_name", Kind.STRING, STRING_OPS),
        Attribute("status", Kind.STRING, STRING_OPS),
        Attribute("artifact_uri", Kind.STRING, STRING_OPS),
        Attribute("parent_run_id", Kind.STRING, STRING_OPS),
        # MLflow's run.info.user_id: the mlflow.user tag (parse_run_filter maps it; no column).
        Attribute("user_id", Kind.STRING, STRING_OPS),
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

# MLflow's run tags held in run columns, and the column.
RUN_TAG_ATTRIBUTES = {"mlflow.runName": "run_name", "mlflow.parentRunId": "parent_run_id"}


def _system_tag(entity: Entity, key: str) -> str | None:
    """The attribute a run tag is kept in (mlflow.runName, mlflow.parentRunId), else None."""
    return RUN_TAG_ATTRIBUTES.get(key) if entity is Entity.TAG else None


def parse_run_filter(text: str) -> list[Comparison]:
    """A run filter (RUN_SEARCH), with MLflow's column-backed system tags as their attributes."""
    clauses = parse_filter(text, RUN_SEARCH)
    for i, clause in enumerate(clauses):
        if clause.entity is Entity.ATTRIBUTE and clause.key == "user_id":
            clauses[i] = dataclasses.replace(clause, entity=Entity.TAG, key="mlflow.user")
        elif (attribute := _system_tag(clause.entity, clause.key)) is not None:
            clauses[i] = dataclasses.replace(clause, entity=Entity.ATTRIBUTE, key=attribute)
    return clauses


def parse_run_order_by(clauses: list[str]) -> list[OrderBy]:
    """Run order_by clauses (RUN_SEARCH), system tags mapped as in parse_run_filter."""
    orders = parse_order_by(clauses, RUN_SEARCH)
    for i, order in enumerate(orders):
        if (attribute := _system_tag(order.entity, order.key)) is not None:
            orders[i] = dataclasses.replace(order, entity=Entity.ATTRIBUTE, key=attribute)
    return orders
