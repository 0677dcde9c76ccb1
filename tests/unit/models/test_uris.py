from __future__ import annotations

import pytest

from modelreg.exceptions import InvalidArgument
from modelreg.uris import ModelsUri, RunsUri, parse_model_uri

RUN_ID = "0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("models:/HousePricePredictor/3", ModelsUri("HousePricePredictor", "version", "3")),
        ("models:/HousePricePredictor/Production", ModelsUri("HousePricePredictor", "stage", "Production")),
        ("models:/HousePricePredictor/staging", ModelsUri("HousePricePredictor", "stage", "Staging")),
        ("models:/HousePricePredictor/None", ModelsUri("HousePricePredictor", "stage", "None")),
        ("models:/HousePricePredictor/Archived", ModelsUri("HousePricePredictor", "stage", "Archived")),
        ("models:/HousePricePredictor/latest", ModelsUri("HousePricePredictor", "latest", "latest")),
        ("models:/HousePricePredictor/LATEST", ModelsUri("HousePricePredictor", "latest", "latest")),
        ("models:/HousePricePredictor@champion", ModelsUri("HousePricePredictor", "alias", "champion")),
        ("models:/house prices v2@blue-green_1", ModelsUri("house prices v2", "alias", "blue-green_1")),
        (f"runs:/{RUN_ID}/linear_regression_model", RunsUri(RUN_ID, "linear_regression_model")),
        (f"runs:/{RUN_ID}/models/lr/", RunsUri(RUN_ID, "models/lr")),
    ],
)
def test_parses_every_supported_form(uri: str, expected: ModelsUri | RunsUri) -> None:
    assert parse_model_uri(uri) == expected


def test_canonical_spelling_capitalizes_stages() -> None:
    assert parse_model_uri("models:/M/production").uri == "models:/M/Production"
    assert parse_model_uri("models:/M@champion").uri == "models:/M@champion"
    assert parse_model_uri(f"runs:/{RUN_ID}/a/b").uri == f"runs:/{RUN_ID}/a/b"


@pytest.mark.parametrize(
    "uri",
    [
        "",
        "HousePricePredictor/1",
        "model:/M/1",
        "models:/",
        "models:/M",
        "models:/M/",
        "models:/M/0",
        "models:/M/-1",
        "models:/M/01",
        "models:/M/Prod",
        "models:/M/1/extra",
        "models://1",
        "models:/@alias",
        "models:/M@",
        "models:/M@bad alias",
        "models:/M/x@alias",
        "models:/ /1",
        "models:/" + "x" * 251 + "/1",
        "runs:/",
        f"runs:/{RUN_ID}",
        f"runs:/{RUN_ID}/",
        "runs:/not-a-run-id/model",
        f"runs:/{RUN_ID.upper()}/model",
        f"runs:/{RUN_ID}/../other",
        f"runs:/{RUN_ID}/a//b",
    ],
)
def test_malformed_uris_are_refused_client_side(uri: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_model_uri(uri)
    assert caught.value.code == "INVALID_ARGUMENT"
    assert caught.value.reason == "INVALID_MODEL_URI"
