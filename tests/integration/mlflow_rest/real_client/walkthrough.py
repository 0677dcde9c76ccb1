"""The seed walkthrough of an MLflow user, written against MLflow's documented API (2.x and 3.x):
an experiment, two training runs with params, metrics and a report file, one model registered by
``sklearn.log_model(registered_model_name=...)`` and one by ``register_model``, an alias and a
stage transition, the model loaded by alias, stage, version and ``runs:/`` URI, the runs found with
``search_runs``, the latest versions, and the files downloaded again.

Prints one JSON object: ``results`` (what any MLflow server must answer the same) and ``ids``
(generated ids and the digests of what was uploaded and downloaded, for checks on the server side).
"""

import hashlib
import json
import tempfile
from pathlib import Path

import mlflow
import mlflow.artifacts
import mlflow.pyfunc
import mlflow.sklearn
import numpy as np
from mlflow import MlflowClient
from sklearn.linear_model import LinearRegression

NAME = "walkthrough-model"
EXPERIMENT = "walkthrough"
X = np.array([[1.0, 0.0], [2.0, 1.0], [3.0, 0.0], [4.0, 1.0], [5.0, 0.0]])
y = np.array([3.1, 5.4, 7.0, 9.6, 10.9])  # not through the origin: the two models differ
X_new = np.array([[6.0, 1.0], [7.0, 0.0]])
# MLflow 3 names a logged model with `name`; 2.x calls the same argument `artifact_path`.
MODEL_ARGUMENT = "name" if int(mlflow.__version__.split(".")[0]) >= 3 else "artifact_path"


def digests(root):
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(Path(root).rglob("*"))
        if path.is_file()
    }


experiment_id = mlflow.set_experiment(EXPERIMENT).experiment_id
run_ids = {}
report_digests = {}
for fit_intercept in (True, False):
    run_name = f"linear-intercept-{str(fit_intercept).lower()}"
    with mlflow.start_run(run_name=run_name) as run:
        model = LinearRegression(fit_intercept=fit_intercept).fit(X, y)
        residuals = model.predict(X) - y
        mlflow.log_params({"fit_intercept": fit_intercept, "rows": len(X)})
        mlflow.log_param("features", "size,promo")
        for step, rows in enumerate((3, 4, 5)):
            mlflow.log_metric("rmse", float(np.sqrt(np.mean(residuals[:rows] ** 2))), step=step)
        mlflow.log_metrics({"r2": model.score(X, y), "coef_0": float(model.coef_[0])})
        mlflow.set_tag("stage", "walkthrough")
        with tempfile.TemporaryDirectory() as tmp:
            report = Path(tmp) / "report.txt"
            report.write_text(f"fit_intercept={fit_intercept}\ncoef={model.coef_.tolist()}\n")
            report_digests[run_name] = hashlib.sha256(report.read_bytes()).hexdigest()
            mlflow.log_artifact(str(report), artifact_path="reports")
        if fit_intercept:
            info = mlflow.sklearn.log_model(model, registered_model_name=NAME, **{MODEL_ARGUMENT: "model"})
            logged_version = str(info.registered_model_version)
        else:
            mlflow.sklearn.log_model(model, **{MODEL_ARGUMENT: "model"})
        run_ids[run_name] = run.info.run_id

no_intercept = run_ids["linear-intercept-false"]
registered = mlflow.register_model(f"runs:/{no_intercept}/model", NAME)

client = MlflowClient()
client.set_registered_model_alias(NAME, "champion", logged_version)
client.transition_model_version_stage(NAME, registered.version, "Production")
client.transition_model_version_stage(NAME, logged_version, "Staging")


def predict(uri):
    return [round(float(p), 4) for p in mlflow.pyfunc.load_model(uri).predict(X_new)]


runs = mlflow.search_runs(experiment_names=[EXPERIMENT], order_by=["metrics.r2 DESC"])
filtered = mlflow.search_runs(
    experiment_ids=[experiment_id],
    filter_string="params.fit_intercept = 'False' and tags.stage = 'walkthrough'",
    output_format="list",
)
latest = client.get_latest_versions(NAME)
latest_production = client.get_latest_versions(NAME, stages=["Production"])
champion = client.get_model_version_by_alias(NAME, "champion")
history = client.get_metric_history(run_ids["linear-intercept-true"], "rmse")

with tempfile.TemporaryDirectory() as tmp:
    report_path = mlflow.artifacts.download_artifacts(
        run_id=run_ids["linear-intercept-true"], artifact_path="reports/report.txt", dst_path=tmp
    )
    downloaded_report = hashlib.sha256(Path(report_path).read_bytes()).hexdigest()
    version_files = {
        version: digests(
            mlflow.artifacts.download_artifacts(f"models:/{NAME}/{version}", dst_path=f"{tmp}/v{version}")
        )
        for version in (logged_version, registered.version)
    }

summary = {
    "results": {
        "versions": [logged_version, str(registered.version)],
        "run_names_by_r2": list(runs["tags.mlflow.runName"]),
        "run_params": [
            [row["params.fit_intercept"], row["params.rows"], row["params.features"]]
            for _, row in runs.iterrows()
        ],
        "run_r2": [round(v, 4) for v in runs["metrics.r2"]],
        "filtered": [r.info.run_name for r in filtered],
        "rmse_history": [(m.step, round(m.value, 4)) for m in history],
        "latest": sorted((v.version, v.current_stage) for v in latest),
        "latest_production": [v.version for v in latest_production],
        "champion": {
            "version": champion.version,
            "aliases": list(champion.aliases),
            "stage": champion.current_stage,
        },
        "version_runs": [
            client.get_model_version(NAME, v).run_id == run_ids[name]
            for v, name in (
                (logged_version, "linear-intercept-true"),
                (registered.version, "linear-intercept-false"),
            )
        ],
        "predict_by_alias": predict(f"models:/{NAME}@champion"),
        "predict_by_stage": predict(f"models:/{NAME}/Production"),
        "predict_by_version": predict(f"models:/{NAME}/{logged_version}"),
        "predict_by_run": predict(f"runs:/{no_intercept}/model"),
        "sklearn_by_stage": [
            round(float(p), 4) for p in mlflow.sklearn.load_model(f"models:/{NAME}/Staging").predict(X_new)
        ],
        "report_round_trip": downloaded_report == report_digests["linear-intercept-true"],
        "model_files": sorted(version_files[logged_version]),
    },
    "ids": {
        "experiment_id": experiment_id,
        "runs": run_ids,
        "report_sha256": report_digests,
        "version_files_sha256": version_files,
    },
}
print(json.dumps(summary, sort_keys=True))
