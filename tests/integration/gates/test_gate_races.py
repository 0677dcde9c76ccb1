"""Concurrent promotions: the gate is judged under the model's lock against the holder as it is
committed, so two promoters racing cannot both pass against a holder that one of them replaces."""

from __future__ import annotations

import threading

from modelreg import exceptions
from tests.integration.gates.conftest import Registry

ROUNDS = 6


def _promote(
    gated: Registry, user: str, name: str, version: int, barrier: threading.Barrier, outcome: dict[int, str]
) -> None:
    client = gated.client(user)
    barrier.wait()
    try:
        client.transition_model_version_stage(name, version, "Production")
        outcome[version] = "promoted"
    except exceptions.FailedPrecondition as error:
        outcome[version] = error.reason


def test_racing_promoters_are_judged_against_the_real_holder(gated: Registry) -> None:
    gated.client("manage2")  # both clients exist before the race
    for _ in range(ROUNDS):
        name = gated.model()
        holder, better, good = (int(gated.version(name, rmse).version) for rmse in (10.0, 8.0, 9.0))
        manager = gated.client("manage")
        manager.transition_model_version_stage(name, holder, "Production")
        manager.set_promotion_gate(name, "Production", "metrics.rmse <= holder.metrics.rmse")
        barrier = threading.Barrier(2)
        outcome: dict[int, str] = {}
        threads = [
            threading.Thread(target=_promote, args=(gated, user, name, version, barrier, outcome))
            for user, version in (("manage", better), ("manage2", good))
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        # Whatever the order, 9 never replaces 8: either 8 went first and 9 was refused, or 9 went
        # first and 8 then beat it.
        assert manager.get_latest_versions(name, ["Production"])[0].version == better
        assert outcome[better] == "promoted"
        history = manager.get_model_history(name)
        entered = [e for e in history if e.action == "STAGE_TRANSITIONED" and e.to_value == "Production"]
        refused = [e for e in history if e.action == "PROMOTION_REFUSED"]
        if outcome[good] == "promoted":
            assert [e.version for e in entered] == [holder, good, better]
            assert [r.right for r in entered[2].gate_results] == ["9"]  # judged against 9, the holder then
        else:
            assert outcome[good] == "PROMOTION_GATE_FAILED"
            assert [e.version for e in entered] == [holder, better]
            assert [(e.version, e.gate_results[0].right) for e in refused] == [(good, "8")]
