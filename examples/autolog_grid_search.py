"""Autologging a grid search: ``modelreg.autolog()``, then a plain scikit-learn ``fit``.

A GridSearchCV over a scaler + logistic regression pipeline is fitted once; autologging records a
parent run (the search's params, ``best_*`` params, training metrics, ``best_cv_score``, the
fitted search as ``model``, the best pipeline as ``best_estimator``, ``cv_results.csv``) and one
child run per candidate (the 5 best by default). The script prints what was recorded, then loads
the model back with ``modelreg.pyfunc.load_model`` and checks its predictions.

The services are found as every modelreg script finds them: MODELREG_TRACKING_URI and
MODELREG_REGISTRY_URI, else localhost:50051 and localhost:50052 (``modelreg server`` starts both).

    python examples/autolog_grid_search.py
"""

from __future__ import annotations

import sys
import uuid

import numpy as np
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

import modelreg

PARAMS_SHOWN = ("best_clf__C", "best_clf__solver", "cv", "scoring", "refit")


def main() -> int:
    modelreg.set_experiment(f"autolog-grid-search-{uuid.uuid4().hex[:6]}")
    modelreg.autolog()

    X, y = load_iris(return_X_y=True, as_frame=True)
    pipeline = Pipeline([("scaler", StandardScaler()), ("clf", LogisticRegression(max_iter=500))])
    search = GridSearchCV(
        pipeline, {"clf__C": [0.01, 0.1, 1.0, 10.0], "clf__solver": ["lbfgs", "saga"]}, cv=3
    )
    search.fit(X, y)  # no run is active: autologging starts one and ends it after fit

    parent = modelreg.last_active_run()
    assert parent is not None
    print(f"parent run {parent.info.run_id} ({parent.info.run_name}) status={parent.info.status}")
    print("  tags:", {k: v for k, v in sorted(parent.data.tags.items()) if not k.startswith("mlflow.source")})
    print("  params:", {k: parent.data.params[k] for k in PARAMS_SHOWN if k in parent.data.params})
    print(f"  ({len(parent.data.params)} params in all)")
    print("  metrics:", {k: round(v, 4) for k, v in sorted(parent.data.metrics.items())})
    artifacts = modelreg.Client().list_artifacts(parent.info.run_id)
    print("  artifacts:", sorted(a.path for a in artifacts))

    children = modelreg.search_runs(
        filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'",
        order_by=["metrics.rank_test_score ASC"],
        output_format="list",
    )
    print(f"child runs: {len(children)} (of {len(search.cv_results_['params'])} candidates)")
    for child in children:
        p, m = child.data.params, child.data.metrics
        print(
            f"  {child.info.run_id[:8]} rank={int(m['rank_test_score'])} C={p['clf__C']} solver={p['clf__solver']}"
            f" mean_test_score={m['mean_test_score']:.4f} std_test_score={m['std_test_score']:.4f}"
            f" ({len(p)} params, {len(m)} metrics)"
        )

    model = modelreg.pyfunc.load_model(f"runs:/{parent.info.run_id}/model")
    same = np.array_equal(model.predict(X), search.predict(X))
    print(f"model runs:/{parent.info.run_id}/model loaded; predictions equal the search's: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
