"""Promotion gates and approvals: what they hold, how a condition parses, how a promotion is judged.

Pure: no I/O. The store gathers the facts under the model's lock (the gate, the candidate, the
current holder of the target, an approved request) and calls :func:`judge` inside the transaction
that makes the change, so the gate is always evaluated against the holder as it is committed.

Condition grammar: the search grammar (modelreg_server.filters), AND-ed clauses over the candidate
version's recorded lineage, plus a holder reference on the right side:

    metrics.rmse < 12 and tags.validated = 'true' and metrics.rmse <= holder.metrics.rmse * 1.01

- ``metrics.<key>``: the run's metric as recorded at registration (numbers; = != < <= > >=).
- ``params.<key>``: the run's param (strings; = != IN NOT IN).
- ``tags.<key>``: the run's tag as recorded at registration (immutable); strings as params.
- ``version_tags.<key>``: the version's own tag. Anyone holding EDIT on the model sets those, so
  a gate that trusts them trusts every EDIT holder (the promoter included).
- ``holder.<entity>.<key>`` (right side only), optionally ``* <number>`` for metrics: the same
  field of the version that last held the target (the newest other version in the stage or the
  version the alias points to; when the target is empty, the most recent other live version that
  held it, from the history). Only when none exists do holder clauses pass (a first promotion
  must be possible; the absolute clauses still apply). A holder lacking the field fails the
  clause: a comparison that cannot be made does not let a version through.
A candidate lacking a field fails its clause. A version registered without a run has no lineage:
only ``version_tags.`` clauses can pass for it.

``require_digests``: the version has file digests recorded (registered from a run with files).
``require_signature``: the version's ``MLmodel`` file, read through the tracking service and
checked against its registered digest before the transaction, parses as YAML with a top-level
``signature`` mapping holding non-empty ``inputs``; the service reads it only when the gate asks (see RegistryService._signatures).
"""

from __future__ import annotations

import enum
import math
import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import yaml

from modelreg_server.errors import (
    FailedPreconditionError,
    InvalidArgumentError,
    InvalidFilter,
    NotFoundError,
    PermissionDeniedError,
    ServiceError,
)
from modelreg_server.filters import (
    ENTITY_KINDS,
    NUMERIC_OPS,
    Comparison,
    Entity,
    Relative,
    SearchSpec,
    parse_condition,
)
from modelreg_server.validation import MAX_KEY_LENGTH, text_bytes
from registry_service.domain.entities import EncodedLineage, GateResult, LineageRecord, Stage
from registry_service.domain.rules import ROW_OVERHEAD

MAX_CONDITION_LENGTH = 4_096  # characters of a gate's condition
MAX_GATES_PER_MODEL = 50  # targets gated on one model
MAX_PENDING_REQUESTS = 100  # open approval requests of one model
APPROVAL_TTL_MS = 7 * 24 * 3600 * 1000  # a request expires 7 days after it was made
REQUESTS_PAGE_DEFAULT, REQUESTS_PAGE_MAX = 100, 1_000  # ListApprovalRequests page sizes
HOLDER = "holder"
# The C safe loader when PyYAML was built with libyaml (an MLmodel may be 1 MiB), else the Python one.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
GATED_STAGES = (Stage.STAGING, Stage.PRODUCTION)
MLMODEL = "MLmodel"
MAX_SHOWN_CHARACTERS = 200  # of a string value shown in a gate result
MAX_MLMODEL_BYTES = 1024 * 1024  # an MLmodel larger than this is not read: no signature

# Bidirectional embeddings, overrides and isolates, and the direction marks: a key holding one
# reads differently from what it is.
_BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_WORD = re.compile(r"[A-Za-z_][\w.\-/:]*")
_STRING_OPS = frozenset({"=", "!=", "IN", "NOT IN"})
CONDITION_SPEC = SearchSpec(
    entity_ops={
        Entity.METRIC: NUMERIC_OPS,
        Entity.PARAM: _STRING_OPS,
        Entity.TAG: _STRING_OPS,
        Entity.VERSION_TAG: _STRING_OPS,
    },
    attributes=(),
)


class InvalidGateCondition(InvalidArgumentError):
    def __init__(self, message: str, position: int) -> None:
        super().__init__(
            "INVALID_GATE_CONDITION",
            f"invalid condition at position {position}: {message}",
            {"field": "condition", "position": str(position)},
        )


class InvalidTarget(InvalidArgumentError):
    def __init__(self, target: str) -> None:
        shown = target if len(target) <= 40 else f"{target[:40]}..."
        super().__init__(
            "INVALID_TARGET",
            f"target must be Staging, Production or @<alias>, got {shown!r}",
            {"field": "target"},
        )


class GateNotFound(NotFoundError):
    def __init__(self, name: str, target: str) -> None:
        super().__init__(
            "GATE_NOT_FOUND",
            f"registered model '{name}' has no gate on {target}",
            {"name": name, "target": target},
        )


class PromotionGateFailed(FailedPreconditionError):
    def __init__(self, result: GateResult) -> None:
        super().__init__(
            "PROMOTION_GATE_FAILED",
            result.message,
            {"clause": result.clause, "left": result.left, "right": result.right},
        )


class ApprovalRequired(FailedPreconditionError):
    def __init__(self, name: str, version: int, target: str, why: str = "") -> None:
        super().__init__(
            "APPROVAL_REQUIRED",
            f"promoting version {version} of '{name}' to {target} needs an approved request: "
            f"ask with RequestPromotionApproval, another MANAGE holder approves{why}",
            {"name": name, "version": str(version), "target": target},
        )


class SelfApproval(PermissionDeniedError):
    def __init__(self, actor: str) -> None:
        super().__init__(
            "SELF_APPROVAL",
            f"'{actor}' made this request: another principal holding MANAGE must decide it",
            {"permission": "MANAGE"},
        )


class ApproverPromotes(PermissionDeniedError):
    """The two-person rule at the promotion: whoever approved may not also promote."""

    def __init__(self, actor: str, request_id: int) -> None:
        super().__init__(
            "SELF_APPROVAL",
            f"'{actor}' approved request {request_id}: the principal who promotes must differ "
            "from the approver (two-person rule), another principal must promote",
            {"permission": "MANAGE", "request_id": str(request_id)},
        )


class ApprovalNotPending(FailedPreconditionError):
    def __init__(self, request_id: int, status: ApprovalStatus) -> None:
        super().__init__(
            "APPROVAL_NOT_PENDING",
            f"approval request {request_id} is {status.value.lower()}, not pending",
            {"request_id": str(request_id), "status": status.value},
        )


class ApprovalRequestNotFound(NotFoundError):
    def __init__(self, name: str, request_id: int) -> None:
        super().__init__(
            "APPROVAL_REQUEST_NOT_FOUND",
            f"registered model '{name}' has no approval request {request_id}",
            {"name": name, "request_id": str(request_id)},
        )


class ApprovalStatus(enum.Enum):
    PENDING = "PENDING"
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"
    CONSUMED = "CONSUMED"  # used by the promotion it approved
    EXPIRED = "EXPIRED"  # pending or approved past its expiry (computed, never stored)


@dataclass(frozen=True)
class PromotionGate:
    name: str
    target: str  # "Staging", "Production" or "@alias"
    condition: str
    require_signature: bool = False
    require_digests: bool = False
    approvals_required: int = 0
    updated_by: str = ""
    updated_time: int = 0


@dataclass(frozen=True)
class ApprovalRequest:
    request_id: int
    name: str
    version: int
    target: str
    status: ApprovalStatus
    requested_by: str
    requested_time: int
    expires_time: int
    comment: str = ""
    decided_by: str = ""
    decided_time: int = 0
    decision_comment: str = ""


@dataclass(frozen=True)
class Subject:
    """A version as a gate sees it: its tags and stored lineage."""

    version: int
    tags: Mapping[str, str]
    lineage: EncodedLineage | None


@dataclass(frozen=True)
class PromotionFacts:
    """What the store found under the model's lock for one promotion."""

    name: str
    target: str
    gate: PromotionGate | None
    candidate: Subject
    holder: Subject | None
    # Approved, unexpired requests for this version and target, the latest decided first.
    approvals: tuple[ApprovalRequest, ...] = ()
    promoter: str = ""  # the principal promoting


@dataclass(frozen=True)
class Verdict:
    """``refusal`` set: nothing changes but a PROMOTION_REFUSED event. Otherwise the promotion
    goes ahead, consuming ``approval_id`` and recording the results when ``gated``."""

    gated: bool
    results: tuple[GateResult, ...] = ()
    approver: str = ""
    overridden: bool = False
    approval_id: int | None = None
    refusal: ServiceError | None = None


PromotionCheck = Callable[[PromotionFacts], Verdict]


def request_bytes(request: ApprovalRequest) -> int:
    """A request's size estimate for paging (each comment may hold 65,536 characters)."""
    text = (request.name, request.target, request.requested_by, request.decided_by)
    return ROW_OVERHEAD + sum(map(text_bytes, (*text, request.comment, request.decision_comment)))


def stage_target(stage: Stage) -> str | None:
    """The gate target of a move into ``stage``; None for stages that are never gated."""
    return stage.value if stage in GATED_STAGES else None


def alias_target(alias: str) -> str:
    return f"@{alias}"


def parse_target(text: str, alias_rule: Callable[[str], str]) -> str:
    """``Staging`` / ``Production`` (any case) or ``@alias`` (checked by ``alias_rule``)."""
    if text.startswith("@"):
        return alias_target(alias_rule(text[1:]))
    for stage in GATED_STAGES:
        if text.lower() == stage.value.lower():
            return stage.value
    raise InvalidTarget(text)


def approvals(count: int) -> int:
    if count not in (0, 1):
        raise InvalidArgumentError(
            "INVALID_APPROVALS",
            f"approvals_required must be 0 or 1, got {count}",
            {"field": "approvals_required"},
        )
    return count


def request_id(value: int) -> int:
    if value < 1:
        raise InvalidArgumentError(
            "INVALID_REQUEST_ID", f"request_id must be >= 1, got {value}", {"field": "request_id"}
        )
    return value


def _refused_key(key: str) -> str | None:
    """Why no key stored could ever equal ``key`` (keys are at most MAX_KEY_LENGTH characters),
    or why it is not shown as written (control and bidirectional-override characters)."""
    if len(key) > MAX_KEY_LENGTH:
        return f"a key has {len(key)} characters, keys have at most {MAX_KEY_LENGTH}"
    if any(unicodedata.category(c) == "Cc" or c in _BIDI_CONTROLS for c in key):
        return f"key {_show(key)} holds a control or bidirectional-override character"
    return None


def _refused_clause(clause: Comparison | Relative) -> str | None:
    """Why ``clause`` could never pass, or None."""
    keys = (clause.key, clause.other_key) if isinstance(clause, Relative) else (clause.key,)
    for key in keys:
        if (why := _refused_key(key)) is not None:
            return why
    if isinstance(clause, Relative) and ENTITY_KINDS[clause.entity] is not ENTITY_KINDS[clause.other_entity]:
        left, right = (
            _field_text(clause.entity, clause.key),
            _field_text(clause.other_entity, clause.other_key),
        )
        return (
            f"{left} ({ENTITY_KINDS[clause.entity].value}) and {HOLDER}.{right} "
            f"({ENTITY_KINDS[clause.other_entity].value}) are never comparable: the clause could never pass"
        )
    return None


def parse(condition: str) -> list[Comparison | Relative]:
    """The clauses of a condition (empty: no clause); INVALID_GATE_CONDITION with the position,
    also for a clause that could never pass (see _refused_clause)."""
    if len(condition) > MAX_CONDITION_LENGTH:
        raise InvalidGateCondition(
            f"{len(condition)} characters, the limit is {MAX_CONDITION_LENGTH}", MAX_CONDITION_LENGTH
        )
    try:
        return parse_condition(condition, CONDITION_SPEC, HOLDER, _refused_clause)
    except InvalidFilter as error:
        message = error.message.removeprefix("invalid filter: ")
        raise InvalidGateCondition(message, error.position or 0) from error


def show_number(value: float) -> str:
    """A number as a person writes it: 12 rather than 12.0."""
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def _show(value: str | float) -> str:
    """A compared value for a result: numbers as written, strings quoted and cut to
    MAX_SHOWN_CHARACTERS (a tag value may hold 8,000), so results stay small in every event."""
    if isinstance(value, float):
        return show_number(value)
    return repr(value if len(value) <= MAX_SHOWN_CHARACTERS else f"{value[:MAX_SHOWN_CHARACTERS]}...")


def _holds(left: str | float, op: str, right: str | float | tuple[str | float | int, ...]) -> bool:
    if op == "IN":
        return isinstance(right, tuple) and left in right
    if op == "NOT IN":
        return isinstance(right, tuple) and left not in right
    if op == "=":
        return left == right
    if op == "!=":
        return left != right
    if not isinstance(left, float) or not isinstance(right, float):
        return False
    return {"<": left < right, "<=": left <= right, ">": left > right, ">=": left >= right}[op]


def _field_text(entity: Entity, key: str) -> str:
    """``metrics.rmse``; a key that is not one word in backticks, as the grammar reads it."""
    return f"{entity.value}s.{key}" if _WORD.fullmatch(key) else f"{entity.value}s.`{key}`"


def _lookup(subject: Subject, record: LineageRecord | None, entity: Entity, key: str) -> str | float | None:
    if entity is Entity.METRIC:
        return None if record is None else record.metrics.get(key)
    if entity is Entity.PARAM:
        return None if record is None else record.params.get(key)
    if entity is Entity.VERSION_TAG:
        return subject.tags.get(key)
    return None if record is None else record.run_tags.get(key)


def _clause_text(clause: Comparison | Relative) -> str:
    left = _field_text(clause.entity, clause.key)
    if isinstance(clause, Relative):
        factor = "" if clause.factor == 1.0 else f" * {show_number(clause.factor)}"
        return f"{left} {clause.op} {HOLDER}.{_field_text(clause.other_entity, clause.other_key)}{factor}"
    return f"{left} {clause.op} {_value_text(clause.value)}"


def _value_text(value: str | float | tuple[str | float | int, ...]) -> str:
    if isinstance(value, tuple):
        return f"({', '.join(_value_text(v) for v in value)})"
    return str(value) if isinstance(value, int) else _show(value)


def _result(
    text: str, left: str | float | None, op: str, right: str | float | None, passed: bool
) -> GateResult:
    left_text = "<missing>" if left is None else _show(left)
    right_text = "<missing>" if right is None else _show(right)
    if passed:
        return GateResult(text, True, left_text, right_text, f"{text} passed: {left_text} {op} {right_text}")
    return GateResult(
        text, False, left_text, right_text, f"{text} failed: {left_text} is not {op} {right_text}"
    )


def evaluate(
    gate: PromotionGate,
    candidate: Subject,
    holder: Subject | None,
    decode: Callable[[EncodedLineage], LineageRecord],
    signature: bool | None,
) -> tuple[GateResult, ...]:
    """Every check of ``gate`` on ``candidate`` (against ``holder``), in the order written.
    ``signature``: whether the candidate's MLmodel has a signature (None: not read)."""
    record = decode(candidate.lineage) if candidate.lineage is not None else None
    held = decode(holder.lineage) if holder is not None and holder.lineage is not None else None
    results: list[GateResult] = []
    for clause in parse(gate.condition):
        text = _clause_text(clause)
        left = _lookup(candidate, record, clause.entity, clause.key)
        if isinstance(clause, Relative):
            if holder is None:
                results.append(
                    GateResult(text, True, "", "", f"{text} passed: no version ever held {gate.target}")
                )
                continue
            right = _lookup(holder, held, clause.other_entity, clause.other_key)
            if isinstance(right, float):
                right = right * clause.factor
        else:
            value = clause.value
            right = float(value) if isinstance(value, int) else value  # type: ignore[assignment]
        if isinstance(right, tuple):
            listed = _value_text(right)
            passed = left is not None and _holds(left, clause.op, right)
            shown = "<missing>" if left is None else _show(left)
            inside = (clause.op == "IN") == passed
            verdict = f"{'passed' if passed else 'failed'}: {shown} is {'' if inside else 'not '}in"
            results.append(GateResult(text, passed, shown, listed, f"{text} {verdict} {listed}"))
            continue
        comparable = left is not None and right is not None and type(left) is type(right)
        if isinstance(left, float) and isinstance(right, float) and (math.isnan(left) or math.isnan(right)):
            comparable = False
        passed = comparable and _holds(left, clause.op, right)  # type: ignore[arg-type]
        results.append(_result(text, left, clause.op, right, passed))
    if gate.require_digests:
        count = len(record.files) if record is not None else 0
        results.append(
            GateResult(
                "require_digests",
                count > 0,
                f"{count} files",
                ">= 1 file",
                f"require_digests {'passed' if count else 'failed'}: {count} file digests recorded",
            )
        )
    if gate.require_signature:
        if signature is None:  # the gate began asking after the service looked (see module doc)
            has, why = "not read", f"{MLMODEL} was not read (the gate changed meanwhile): try again"
        else:
            has = "signature" if signature else "no signature"
            why = f"{MLMODEL} has {'a' if signature else 'no'} signature"
        verdict = "passed" if signature else "failed"
        results.append(
            GateResult(
                "require_signature", bool(signature), has, "signature", f"require_signature {verdict}: {why}"
            )
        )
    return tuple(results)


def judge(
    facts: PromotionFacts,
    decode: Callable[[EncodedLineage], LineageRecord],
    *,
    override: bool,
    signatures: Mapping[int, bool],
) -> Verdict:
    """The decision on one promotion. ``override`` (an admin's, checked by the service): gates
    and approvals are skipped, the results that would have applied are recorded."""
    gate = facts.gate
    if gate is None:
        return Verdict(gated=False)
    version = facts.candidate.version
    results = evaluate(gate, facts.candidate, facts.holder, decode, signatures.get(version))
    failed = next((result for result in results if not result.passed), None)
    if override:
        return Verdict(gated=True, results=results, overridden=True)
    if failed is not None:
        return Verdict(gated=True, results=results, refusal=PromotionGateFailed(failed))
    if not gate.approvals_required:
        return Verdict(gated=True, results=results)
    # An approval counts for the gate as it is: one decided before the gate last changed was
    # given for other terms (or for no gate at all).
    current = [a for a in facts.approvals if a.decided_time > gate.updated_time]
    approved = next((a for a in current if a.decided_by != facts.promoter), None)
    if approved is not None:
        return Verdict(
            gated=True, results=results, approver=approved.decided_by, approval_id=approved.request_id
        )
    if current:
        refusal: ServiceError = ApproverPromotes(facts.promoter, current[0].request_id)
    else:
        why = ""
        if facts.approvals:
            stale = facts.approvals[0]
            why = (
                f" (approval {stale.request_id} predates the gate's change at {show_time(gate.updated_time)})"
            )
        refusal = ApprovalRequired(facts.name, version, facts.target, why)
    return Verdict(gated=True, results=results, refusal=refusal)


def show_time(ms: int) -> str:
    """A time in ms since the epoch as UTC ISO 8601 to the millisecond."""
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")


def has_signature(mlmodel: bytes) -> bool:
    """Whether an MLmodel document (YAML, read safely) has a top-level ``signature`` mapping with
    non-empty ``inputs``, as MLflow writes it; a document that does not parse has none."""
    try:
        document = yaml.load(mlmodel, Loader=_YAML_LOADER)  # a safe loader
    except (yaml.YAMLError, RecursionError):
        return False
    signature = document.get("signature") if isinstance(document, dict) else None
    return isinstance(signature, dict) and bool(signature.get("inputs"))


def gate_comment(gate: PromotionGate) -> str:
    """A gate as its GATE_SET event's comment records it."""
    return (
        f"{gate.target}: condition={gate.condition!r} require_signature={gate.require_signature} "
        f"require_digests={gate.require_digests} approvals_required={gate.approvals_required}"
    )
