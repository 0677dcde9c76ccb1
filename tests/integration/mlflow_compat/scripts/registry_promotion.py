"""A registry promotion flow: two trained versions registered from log_model, described, tagged
and aliased, promoted through stages (archiving the old Production version), found again, and
loaded by alias, stage and version number to predict."""

import json

import mlflow
import mlflow.pyfunc
import mlflow.sklearn
import numpy as np
from mlflow import MlflowClient
from sklearn.linear_model import LinearRegression

NAME = "demand-forecaster"
X = np.array([[1.0, 0.0], [2.0, 1.0], [3.0, 0.0], [4.0, 1.0], [5.0, 0.0]])
y = np.array([2.0, 4.5, 6.0, 8.5, 10.0])
X_new = np.array([[6.0, 1.0], [7.0, 0.0]])

client = MlflowClient()
client.create_registered_model(NAME, tags={"domain": "retail"}, description="Daily demand")
mlflow.set_experiment("demand")

versions = []
for fit_intercept in (True, False):
    with mlflow.start_run(run_name=f"fit_intercept={fit_intercept}"):
        model = LinearRegression(fit_intercept=fit_intercept).fit(X, y)
        mlflow.log_param("fit_intercept", fit_intercept)
        mlflow.log_metric("r2", model.score(X, y))
        info = mlflow.sklearn.log_model(model, name="model", registered_model_name=NAME)
        versions.append(info.registered_model_version)

client.update_model_version(NAME, "1", description="with intercept")
client.set_model_version_tag(NAME, "2", "validated", "true")
client.set_registered_model_tag(NAME, "owner", "pricing-team")
client.update_registered_model(NAME, description="Daily demand per store")
client.set_registered_model_alias(NAME, "champion", "1")
client.set_registered_model_alias(NAME, "challenger", "2")

client.transition_model_version_stage(NAME, "1", "Production")
client.transition_model_version_stage(NAME, "2", "Staging")
before = {v.version: v.current_stage for v in client.search_model_versions(f"name = '{NAME}'")}
client.transition_model_version_stage(NAME, "2", "Production", archive_existing_versions=True)
client.set_registered_model_alias(NAME, "champion", "2")
client.delete_registered_model_alias(NAME, "challenger")

registered = client.get_registered_model(NAME)
champion = client.get_model_version_by_alias(NAME, "champion")
latest = client.get_latest_versions(NAME, stages=["Production", "Archived"])
found = client.search_model_versions(f"name = '{NAME}'", order_by=["version_number DESC"])
tagged = client.search_model_versions(f"name = '{NAME}' and tag.validated = 'true'")
models = client.search_registered_models(filter_string="name LIKE 'demand-%'")
v1 = client.get_model_version(NAME, "1")


def predict(uri):
    return [round(float(p), 4) for p in mlflow.pyfunc.load_model(uri).predict(X_new)]


summary = {
    "logged_versions": versions,
    "stages_before": before,
    "stages_after": {v.version: v.current_stage for v in found},
    "found_order": [v.version for v in found],
    "tagged": [v.version for v in tagged],
    "registered": {
        "description": registered.description,
        "tags": registered.tags,
        "aliases": dict(registered.aliases),
    },
    "champion": {"version": champion.version, "aliases": sorted(champion.aliases), "tags": champion.tags},
    "latest": sorted((v.current_stage, v.version) for v in latest),
    "v1": {"description": v1.description, "stage": v1.current_stage, "status": v1.status},
    "models": [m.name for m in models],
    "predict_by_alias": predict(f"models:/{NAME}@champion"),
    "predict_by_stage": predict(f"models:/{NAME}/Production"),
    "predict_by_version": predict(f"models:/{NAME}/1"),
    "sklearn_by_version": [
        round(float(p), 4) for p in mlflow.sklearn.load_model(f"models:/{NAME}/2").predict(X_new)
    ],
}
print(json.dumps(summary, sort_keys=True))
