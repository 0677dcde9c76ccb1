"""Autologged GridSearchCV: one parent run with the search's params, best_* results and the
best model, one child run per candidate; then the runs found again and the model used."""

import json

import mlflow
import mlflow.sklearn
import numpy as np
from sklearn.linear_model import Ridge
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

rng = np.random.default_rng(7)
X = rng.normal(size=(60, 3))
y = X @ np.array([1.5, -2.0, 0.5]) + rng.normal(scale=0.1, size=60)

mlflow.set_experiment("autolog-grid")
mlflow.sklearn.autolog()
pipeline = Pipeline([("scale", StandardScaler()), ("ridge", Ridge())])
search = GridSearchCV(pipeline, {"ridge__alpha": [0.1, 1.0, 10.0]}, cv=3)
with mlflow.start_run(run_name="grid") as run:
    search.fit(X, y)
mlflow.sklearn.autolog(disable=True)

parent = mlflow.get_run(run.info.run_id)
children = mlflow.search_runs(
    experiment_names=["autolog-grid"],
    filter_string=f"tags.mlflow.parentRunId = '{run.info.run_id}'",
    order_by=["params.ridge__alpha ASC"],
)
model = mlflow.sklearn.load_model(f"runs:/{run.info.run_id}/model")
pyfunc_model = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model")
X_new = np.array([[0.5, -1.0, 2.0]])

summary = {
    "parent_params": {
        k: parent.data.params.get(k) for k in ["cv", "best_ridge__alpha", "param_grid", "refit", "scoring"]
    },
    "parent_metric_keys": sorted(parent.data.metrics),
    "best_cv_score": round(parent.data.metrics["best_cv_score"], 4),
    "training_score": round(parent.data.metrics["training_score"], 4),
    "estimator_class": parent.data.tags.get("estimator_class"),
    "estimator_name": parent.data.tags.get("estimator_name"),
    "child_count": len(children),
    "child_params": [
        [row["params.ridge__alpha"], row["params.ridge__fit_intercept"], row["params.scale__with_mean"]]
        for _, row in children.iterrows()
    ],
    "child_metric_keys": sorted(c[len("metrics.") :] for c in children.columns if c.startswith("metrics.")),
    "child_scores": [round(v, 4) for v in children["metrics.mean_test_score"]],
    "child_ranks": [int(v) for v in children["metrics.rank_test_score"]],
    "child_autologging_tag": sorted(set(children["tags.mlflow.autologging"])),
    "best_alpha": model.best_params_["ridge__alpha"],
    "prediction": round(float(model.predict(X_new)[0]), 4),
    "pyfunc_prediction": round(float(pyfunc_model.predict(X_new)[0]), 4),
}
print(json.dumps(summary, sort_keys=True))
