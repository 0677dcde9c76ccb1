"""House prices: the MLflow Model Registry workflow, written for modelreg.

Two training runs register two versions of HousePricePredictor; version 1 goes to Staging then
Production, version 2 follows and takes Production over (version 1 is archived); a serving step
loads ``models:/HousePricePredictor/Production`` and checks its predictions against the model
just trained; the model's history closes the script.

The services are found as every modelreg script finds them: MODELREG_TRACKING_URI and
MODELREG_REGISTRY_URI, else localhost:50051 and localhost:50052 (``modelreg server`` starts both).

    python examples/house_prices.py
"""

from __future__ import annotations

import sys
from datetime import datetime

import numpy as np
import pandas as pd
from sklearn.linear_model import LinearRegression
from sklearn.metrics import mean_squared_error, r2_score
from sklearn.model_selection import train_test_split

import modelreg

MODEL_NAME = "HousePricePredictor"


def make_houses(rows: int = 100, seed: int = 42) -> tuple[pd.DataFrame, pd.Series]:
    """A small, reproducible housing data set: three features and a noisy price."""
    rng = np.random.default_rng(seed)
    houses = pd.DataFrame(
        {
            "square_feet": rng.uniform(600, 3_500, rows).round(0),
            "bedrooms": rng.integers(1, 6, rows),
            "age_years": rng.uniform(0, 60, rows).round(1),
        }
    )
    price = (
        50_000
        + 140 * houses["square_feet"]
        + 12_000 * houses["bedrooms"]
        - 900 * houses["age_years"]
        + rng.normal(0, 15_000, rows)
    )
    return houses, price.rename("price")


def train_and_register(
    run_name: str,
    model: LinearRegression,
    params: dict[str, object],
    artifact_path: str,
    data: tuple[pd.DataFrame, ...],
) -> tuple[LinearRegression, int]:
    x_train, x_test, y_train, y_test = data
    with modelreg.start_run(run_name=run_name) as run:
        model.fit(x_train, y_train)
        predictions = model.predict(x_test)
        rmse = float(np.sqrt(mean_squared_error(y_test, predictions)))
        r2 = float(r2_score(y_test, predictions))
        for key, value in params.items():
            modelreg.log_param(key, value)
        modelreg.log_metric("rmse", rmse)
        modelreg.log_metric("r2", r2)
        info = modelreg.sklearn.log_model(
            sk_model=model,
            artifact_path=artifact_path,
            registered_model_name=MODEL_NAME,
            input_example=x_train.head(3),
        )
        print(f"{run_name}: run {run.info.run_id}, rmse={rmse:,.0f}, r2={r2:.3f}")
        print(f"  registered {MODEL_NAME} version {info.registered_model_version} from {info.model_uri}")
    assert info.registered_model_version is not None
    return model, info.registered_model_version


def main() -> int:
    features, price = make_houses()
    data = tuple(train_test_split(features, price, test_size=0.2, random_state=0))

    _, v1 = train_and_register(
        "Linear_Regression_V1", LinearRegression(), {"alpha": 0.5}, "linear_regression_model", data
    )
    model_v2, v2 = train_and_register(
        "Linear_Regression_V2",
        LinearRegression(fit_intercept=False),
        {"fit_intercept": False},
        "linear_regression_model_v2",
        data,
    )

    client = modelreg.Client()
    print(f"\nVersions of {MODEL_NAME} (newest first):")
    for mv in client.search_model_versions(filter_string=f"name='{MODEL_NAME}'"):
        print(f"  version {mv.version}  stage={mv.current_stage:<10} run_id={mv.run_id}  source={mv.source}")

    # Promotion: each version passes through Staging; promoting v2 to Production archives v1.
    for version in (v1, v2):
        for stage in ("Staging", "Production"):
            mv = client.transition_model_version_stage(name=MODEL_NAME, version=version, stage=stage)
            print(f"version {mv.version} -> {mv.current_stage}")
    print(f"version {v1} is now {client.get_model_version(MODEL_NAME, v1).current_stage}")

    production = client.get_latest_versions(MODEL_NAME, stages=["Production"])[0]
    print(f"\nProduction: version {production.version}, files at {production.source}")

    # Serving: load by stage, predict on houses the model has never seen.
    served = modelreg.pyfunc.load_model(f"models:/{MODEL_NAME}/Production")
    new_houses, _ = make_houses(rows=5, seed=7)
    served_predictions = served.predict(new_houses)
    expected = model_v2.predict(new_houses)
    print(new_houses.assign(predicted_price=served_predictions.round(0)).to_string(index=False))
    if not np.array_equal(served_predictions, expected):
        print("error: the served model's predictions differ from the trained model's", file=sys.stderr)
        return 1
    print("served predictions are identical to the trained model's")

    print(f"\nHistory of {MODEL_NAME}:")
    for event in client.get_model_history(MODEL_NAME):
        when = datetime.fromtimestamp(event.time / 1000).strftime("%H:%M:%S")
        change = f"{event.from_value or '-'} -> {event.to_value or '-'}"
        print(f"  {when}  v{event.version or '-':<3} {event.action:<20} {change:<25} by {event.actor}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
