"""Experiment housekeeping: create experiments with tags, find them with search_experiments,
tag one, delete a run and an experiment, and see what each view type returns."""

import json

import mlflow
from mlflow import MlflowClient
from mlflow.entities import ViewType

ids = {}
for name, owner in [("team-a-churn", "ana"), ("team-a-ltv", "ana"), ("team-b-churn", "bo")]:
    ids[name] = mlflow.create_experiment(name, tags={"owner": owner, "project": name.split("-")[-1]})

mlflow.set_experiment(experiment_id=ids["team-a-churn"])
mlflow.set_experiment_tag("reviewed", "yes")

with mlflow.start_run(run_name="keep") as keep:
    mlflow.log_metric("auc", 0.81)
with mlflow.start_run(run_name="drop") as drop:
    mlflow.log_metric("auc", 0.55)
mlflow.delete_run(drop.info.run_id)

client = MlflowClient()
client.delete_experiment(ids["team-b-churn"])

team_a = mlflow.search_experiments(filter_string="name LIKE 'team-a-%'", order_by=["name ASC"])
by_tag = mlflow.search_experiments(filter_string="tags.owner = 'ana'", order_by=["name DESC"])
deleted = mlflow.search_experiments(view_type=ViewType.DELETED_ONLY, filter_string="name LIKE 'team-%'")
every = mlflow.search_experiments(view_type=ViewType.ALL, filter_string="name LIKE 'team-%'")
fetched = mlflow.get_experiment(ids["team-a-churn"])
gone = client.get_experiment(ids["team-b-churn"])

active_runs = mlflow.search_runs(experiment_ids=[ids["team-a-churn"]])
deleted_runs = mlflow.search_runs(experiment_ids=[ids["team-a-churn"]], run_view_type=ViewType.DELETED_ONLY)
all_runs = mlflow.search_runs(
    experiment_ids=[ids["team-a-churn"]], run_view_type=ViewType.ALL, order_by=["metrics.auc DESC"]
)

summary = {
    "ids_are_strings": all(isinstance(i, str) for i in ids.values()),
    "team_a": [e.name for e in team_a],
    "owned_by_ana": [e.name for e in by_tag],
    "deleted": [e.name for e in deleted],
    "all": sorted(e.name for e in every),
    "fetched": {
        "name": fetched.name,
        "stage": fetched.lifecycle_stage,
        "tags": {k: v for k, v in fetched.tags.items() if not k.startswith("mlflow.")},
    },
    "gone_stage": gone.lifecycle_stage,
    "by_name_id_matches": mlflow.get_experiment_by_name("team-a-ltv").experiment_id == ids["team-a-ltv"],
    "active_runs": list(active_runs["tags.mlflow.runName"]),
    "deleted_runs": list(deleted_runs["tags.mlflow.runName"]),
    "all_runs": list(all_runs["tags.mlflow.runName"]),
    "deleted_run_stage": client.get_run(drop.info.run_id).info.lifecycle_stage,
    "kept_run_experiment": keep.info.experiment_id == ids["team-a-churn"],
}
print(json.dumps(summary, sort_keys=True))
