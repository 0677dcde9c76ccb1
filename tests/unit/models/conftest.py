from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression


@pytest.fixture(scope="session")
def houses() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(7)
    features = pd.DataFrame(
        {
            "sqft": rng.uniform(500, 3500, 40),
            "bedrooms": rng.integers(1, 6, 40),
            "age": rng.uniform(0, 80, 40),
        }
    )
    price = 150 * features["sqft"] + 10_000 * features["bedrooms"] - 500 * features["age"]
    return features, price.to_numpy()


@pytest.fixture(scope="session")
def fitted(houses: tuple[pd.DataFrame, np.ndarray]) -> LinearRegression:
    features, price = houses
    return LinearRegression().fit(features, price)
