"""The filter grammar's limits through the real servers and modelreg.Client: every over-limit
filter is INVALID_ARGUMENT / INVALID_FILTER (field "filter") from both services, refused by the
limit it breaks before the text is read further, and a filter at the limits is served."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from modelreg import Client
from modelreg.exceptions import InvalidArgument
from modelreg_server.filters import (
    INT64_MAX,
    MAX_CLAUSES,
    MAX_FILTER_LENGTH,
    MAX_IN_VALUES,
    MAX_NUMBER_LENGTH,
    MAX_ORDER_BY_LENGTH,
)

MEGABYTE = 1_000_000


def refused(call: Callable[[], object], reason: str = "INVALID_FILTER") -> str:
    """Runs a call that must be refused with ``reason``; returns the error's message."""
    with pytest.raises(InvalidArgument) as caught:
        call()
    assert caught.value.reason == reason
    assert caught.value.metadata.get("field") == ("filter" if reason == "INVALID_FILTER" else "order_by")
    return caught.value.message


def searches(client: Client) -> dict[str, Callable[[str], object]]:
    """Each search of both services, taking a filter."""
    return {
        "runs": lambda text: client.search_runs(["0"], filter_string=text),
        "experiments": lambda text: client.search_experiments(filter_string=text),
        "models": lambda text: client.search_registered_models(filter_string=text),
        "versions": lambda text: client.search_model_versions(filter_string=text),
    }


def test_over_length_filters_are_refused_by_their_length(client: Client) -> None:
    for name, search in searches(client).items():
        text = ("name = 'x' AND " * (MEGABYTE // 15 + 1))[:MEGABYTE]
        # The length is checked before a character is parsed: the message is the limit's.
        message = refused(lambda search=search, text=text: search(text))  # type: ignore[misc]
        assert message.endswith(f"the filter has {MEGABYTE} characters, the limit is {MAX_FILTER_LENGTH}"), (
            name
        )
        one_string = "name = '" + "x" * MAX_FILTER_LENGTH + "'"
        refused(lambda search=search, text=one_string: search(text))  # type: ignore[misc]


def test_long_numbers_are_refused(client: Client) -> None:
    for text in ["metrics.rmse < " + "1" * 12_000, "metrics.rmse < " + "1" * 12_000 + "x"]:
        # Refused by its length, before any conversion of 12,000 digits is tried.
        message = refused(lambda text=text: client.search_runs(["0"], filter_string=text))  # type: ignore[misc]
        assert f"a number longer than {MAX_NUMBER_LENGTH} characters" in message
    refused(lambda: client.search_runs(["0"], filter_string="metrics.rmse < 1" + "0" * MAX_NUMBER_LENGTH))
    refused(lambda: client.search_experiments(filter_string="creation_time > 1e999"))
    refused(lambda: client.search_model_versions(filter_string="version = " + "9" * 5_000))


def test_clause_limit(client: Client) -> None:
    tracking = " AND ".join(f"params.p{i} = 'x'" for i in range(MAX_CLAUSES))
    registry = " AND ".join(f"tags.t{i} = 'x'" for i in range(MAX_CLAUSES))
    assert list(client.search_runs(["0"], filter_string=tracking)) == []
    assert list(client.search_registered_models(filter_string=registry)) == []
    refused(lambda: client.search_runs(["0"], filter_string=tracking + " AND params.q = 'x'"))
    refused(lambda: client.search_registered_models(filter_string=registry + " AND name = 'x'"))
    # 1,001 clauses used to be INTERNAL (SQLite's expression depth).
    refused(lambda: client.search_model_versions(filter_string=" AND ".join(["name = 'x'"] * 1_001)))


def test_in_list_and_int64_limits(client: Client) -> None:
    values = ", ".join(f"'{i}'" for i in range(MAX_IN_VALUES + 1))
    refused(lambda: client.search_runs(["0"], filter_string=f"tags.t IN ({values})"))
    refused(lambda: client.search_model_versions(filter_string=f"run_id IN ({values})"))
    assert list(client.search_model_versions(filter_string=f"version = {INT64_MAX}")) == []
    refused(lambda: client.search_model_versions(filter_string=f"version = {INT64_MAX + 1}"))
    refused(lambda: client.search_model_versions(filter_string=f"version_number IN (1, '{INT64_MAX + 1}')"))


def test_order_by_limits(client: Client) -> None:
    long_clause = "metrics." + "m" * MAX_ORDER_BY_LENGTH
    refused(lambda: client.search_runs(["0"], order_by=[long_clause]), "INVALID_ORDER_BY")
    refused(lambda: client.search_experiments(order_by=["tags.k"]), "INVALID_ORDER_BY")  # was INTERNAL
    refused(lambda: client.search_registered_models(order_by=["name"] * 4), "INVALID_ORDER_BY")


def test_like_escapes_through_the_servers(client: Client, unique: str) -> None:
    names = [f"{unique}-100%", f"{unique}-100x", f"{unique}-a_b", f"{unique}-axb", f"{unique}-end\\"]
    for name in names:
        client.create_registered_model(name)
        client.create_run("0", run_name=name)

    def models(pattern: str) -> list[str]:
        return sorted(m.name for m in client.search_registered_models(filter_string=f"name LIKE '{pattern}'"))

    def runs(pattern: str) -> list[str]:
        found = client.search_runs(["0"], filter_string=f"attributes.run_name LIKE '{pattern}'")
        return sorted(r.info.run_name for r in found)

    for search in (models, runs):
        assert search(f"{unique}-100\\%") == [f"{unique}-100%"]
        assert search(f"{unique}-100%") == [f"{unique}-100%", f"{unique}-100x"]
        assert search(f"{unique}-a\\_b") == [f"{unique}-a_b"]
        assert search(f"{unique}-end\\\\") == [f"{unique}-end\\"]  # written \\, the pattern ends in \
