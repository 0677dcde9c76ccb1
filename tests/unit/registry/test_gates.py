"""The gate condition parser and evaluator (registry_service.domain.gates), property-based where
the input is open-ended."""

from __future__ import annotations

import operator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelreg_server.filters import Comparison, Entity, Relative
from registry_service import lineage_codec
from registry_service.domain import gates
from registry_service.domain.entities import GateResult, LineageRecord

_OPS = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "=": operator.eq,
    "!=": operator.ne,
}
keys = st.from_regex(r"[a-z][a-z0-9_]{0,12}", fullmatch=True)
numbers = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False).map(lambda x: round(x, 3))
factors = st.sampled_from([1.0, 0.5, 1.01, 2.0])


def _subject(version: int, metrics: dict[str, float], tags: dict[str, str] | None = None) -> gates.Subject:
    record = LineageRecord("r", "1", "run", "model", metrics=metrics, run_tags={})
    return gates.Subject(version, tags or {}, lineage_codec.encode(record))


def _gate(condition: str, **flags: object) -> gates.PromotionGate:
    return gates.PromotionGate("m", "Production", condition, **flags)  # type: ignore[arg-type]


def _results(
    condition: str, candidate: gates.Subject, holder: gates.Subject | None
) -> tuple[GateResult, ...]:
    return gates.evaluate(_gate(condition), candidate, holder, lineage_codec.decode, None)


@given(st.lists(st.tuples(keys, st.sampled_from(sorted(_OPS)), numbers), min_size=1, max_size=20))
def test_conditions_parse_back_to_their_clauses(clauses: list[tuple[str, str, float]]) -> None:
    text = " and ".join(f"metrics.{key} {op} {value!r}" for key, op, value in clauses)
    assert gates.parse(text) == [Comparison(Entity.METRIC, key, op, value) for key, op, value in clauses]


@given(keys, st.sampled_from(sorted(_OPS)), numbers, numbers)
def test_a_metric_clause_holds_exactly_when_the_comparison_does(
    key: str, op: str, left: float, right: float
) -> None:
    [result] = _results(f"metrics.{key} {op} {right!r}", _subject(2, {key: left}), None)
    assert result.passed == _OPS[op](left, right)
    assert (result.left, result.right) == (gates.show_number(left), gates.show_number(right))
    if not result.passed:
        assert result.message == f"{result.clause} failed: {result.left} is not {op} {result.right}"


@given(keys, st.sampled_from(sorted(_OPS)), numbers, numbers, factors)
def test_a_holder_clause_compares_to_the_holders_value_times_the_factor(
    key: str, op: str, mine: float, theirs: float, factor: float
) -> None:
    condition = f"metrics.{key} {op} holder.metrics.{key} * {factor!r}"
    [parsed] = gates.parse(condition)
    assert parsed == Relative(Entity.METRIC, key, op, Entity.METRIC, key, factor)
    [result] = _results(condition, _subject(2, {key: mine}), _subject(1, {key: theirs}))
    assert result.passed == _OPS[op](mine, theirs * factor)
    [alone] = _results(condition, _subject(2, {key: mine}), None)
    assert alone.passed  # no holder: holder clauses pass


@given(st.text(max_size=200))
def test_any_text_parses_or_is_invalid_gate_condition_with_its_position(text: str) -> None:
    try:
        gates.parse(text)
    except gates.InvalidGateCondition as error:
        assert error.metadata["field"] == "condition"
        assert 0 <= int(error.metadata["position"]) <= len(text)


def test_missing_values_fail_and_tags_are_the_runs_version_tags_their_own() -> None:
    record = LineageRecord("r", "1", "run", "model", run_tags={"stage": "run", "team": "a"})
    subject = gates.Subject(2, {"stage": "version"}, lineage_codec.encode(record))
    condition = (
        "tags.stage = 'version' and version_tags.stage = 'version' and tags.team = 'a' "
        "and version_tags.team = 'a' and metrics.rmse < 1"
    )
    assert [(r.passed, r.left) for r in _results(condition, subject, None)] == [
        (False, "'run'"),
        (True, "'version'"),
        (True, "'a'"),
        (False, "<missing>"),
        (False, "<missing>"),
    ]
    [vs_holder] = _results("metrics.rmse <= holder.metrics.rmse", _subject(2, {"rmse": 1.0}), _subject(1, {}))
    assert not vs_holder.passed and vs_holder.right == "<missing>"


def test_judge_refuses_on_the_first_failure_then_on_a_missing_approval() -> None:
    gate = _gate("metrics.rmse < 12", approvals_required=1)
    facts = gates.PromotionFacts("m", "Production", gate, _subject(2, {"rmse": 13.4}), None)
    verdict = gates.judge(facts, lineage_codec.decode, override=False, signatures={})
    assert isinstance(verdict.refusal, gates.PromotionGateFailed)
    assert verdict.refusal.metadata == {"clause": "metrics.rmse < 12", "left": "13.4", "right": "12"}
    passing = gates.PromotionFacts("m", "Production", gate, _subject(2, {"rmse": 1.0}), None)
    assert isinstance(
        gates.judge(passing, lineage_codec.decode, override=False, signatures={}).refusal,
        gates.ApprovalRequired,
    )
    overridden = gates.judge(facts, lineage_codec.decode, override=True, signatures={})
    assert (overridden.refusal, overridden.overridden, overridden.results[0].passed) == (None, True, False)


@pytest.mark.parametrize(
    ("mlmodel", "signed"),
    [
        ("flavors: {}\nsignature:\n  inputs: '[]'\n", True),
        ("signature: {inputs: '[]'}\n", True),
        ("flavors: {}\n", False),
        ("signature: null\n", False),
        ("flavors:\n  signature:\n    x: 1\n", False),  # not top-level
        ("signature: ''\n", False),
        ("signature: []\n", False),
        ("signature: {outputs: '[]'}\n", False),  # no inputs
        ("signature:\n  inputs: ''\n", False),
        ("note: |\n  signature:\n    inputs: '[]'\n", False),  # text inside a block string
        ("flavors: [\nsignature:\n  inputs: x\n", False),  # does not parse
        ("\xff\xfe", False),
    ],
)
def test_has_signature(mlmodel: str, signed: bool) -> None:
    assert gates.has_signature(mlmodel.encode()) is signed


@pytest.mark.parametrize("target", ["Production", "staging", "@champion"])
def test_targets(target: str) -> None:
    assert gates.parse_target(target, lambda alias: alias) in ("Production", "Staging", "@champion")


@pytest.mark.parametrize("target", ["None", "Archived", "", "prod"])
def test_bad_targets(target: str) -> None:
    with pytest.raises(gates.InvalidTarget):
        gates.parse_target(target, lambda alias: alias)


def test_a_signature_not_read_fails_and_says_to_try_again() -> None:
    gate = _gate("", require_signature=True)
    [unread] = gates.evaluate(gate, _subject(2, {}), None, lineage_codec.decode, None)
    assert not unread.passed and unread.message.endswith("try again")
    [signed] = gates.evaluate(gate, _subject(2, {}), None, lineage_codec.decode, True)
    assert (signed.passed, signed.message) == (True, "require_signature passed: MLmodel has a signature")


@given(
    st.from_regex(r"[a-z][a-z0-9 _]{0,10}", fullmatch=True),
    st.sampled_from(["=", "!=", "IN", "NOT IN"]),
    st.lists(st.from_regex(r"[ -\[\]-~]{0,20}", fullmatch=True), min_size=1, max_size=3),
)
def test_a_results_clause_reads_back_as_the_clause(key: str, op: str, values: list[str]) -> None:
    listed = op in ("IN", "NOT IN")
    written = f"({', '.join(map(repr, values))})" if listed else repr(values[0])
    [clause] = gates.parse(f"version_tags.`{key}` {op} {written}")
    [result] = _results(f"version_tags.`{key}` {op} {written}", _subject(2, {}, {key: values[0]}), None)
    assert gates.parse(result.clause) == [clause]
    assert result.passed == (op in ("=", "IN"))


@pytest.mark.parametrize(
    ("condition", "position", "why"),
    [
        ("metrics.rmse < holder.tags.x", 0, "never comparable"),
        ("metrics.a < 1 and tags.x = holder.metrics.y", 18, "never comparable"),
        ("metrics.a < 1 and params.`" + "p" * 251 + "` = 'a'", 18, "keys have at most 250"),
        ("version_tags.`a\u202eb` = 'x'", 0, "bidirectional-override"),
        ("tags.`a\tb` = 'x'", 0, "control"),
    ],
)
def test_clauses_that_could_never_pass_are_refused_at_their_position(
    condition: str, position: int, why: str
) -> None:
    with pytest.raises(gates.InvalidGateCondition) as error:
        gates.parse(condition)
    assert error.value.metadata["position"] == str(position)
    assert why in error.value.message


def test_keys_of_the_longest_length_and_string_values_with_any_character_are_accepted() -> None:
    assert len(gates.parse("tags.`" + "k" * 250 + "` = '\u202e\x07' and metrics.a <= holder.metrics.a")) == 2
