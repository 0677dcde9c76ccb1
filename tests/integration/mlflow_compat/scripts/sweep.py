"""A hyperparameter sweep: one parent run, a nested run per trial, then the trials found again
with search_runs by parent, param, metric and tag filters, ordered by metric."""

import itertools
import json

import mlflow

mlflow.set_experiment("sweep-elasticnet")

grid = list(itertools.product([0.01, 0.1, 1.0], [0.2, 0.8]))
with mlflow.start_run(run_name="sweep") as parent:
    mlflow.log_param("n_trials", len(grid))
    best = None
    for i, (alpha, l1_ratio) in enumerate(grid):
        with mlflow.start_run(run_name=f"trial-{i}", nested=True) as child:
            mlflow.log_params({"alpha": alpha, "l1_ratio": l1_ratio})
            mlflow.set_tag("kind", "trial")
            # A stand-in for a validation score that depends on both parameters.
            rmse = round(0.3 + abs(alpha - 0.1) * 0.5 + abs(l1_ratio - 0.5) * 0.2, 6)
            for epoch in range(3):
                mlflow.log_metric("train_loss", rmse * (3 - epoch), step=epoch)
            mlflow.log_metric("rmse", rmse)
            if best is None or rmse < best[1]:
                best = (child.info.run_id, rmse)
    mlflow.log_metric("best_rmse", best[1])
    mlflow.set_tag("best_run", best[0])

experiment = mlflow.get_experiment_by_name("sweep-elasticnet")
parent_id = parent.info.run_id


def names(frame):
    return list(frame["tags.mlflow.runName"])


children = mlflow.search_runs(
    experiment_ids=[experiment.experiment_id],
    filter_string=f"tags.mlflow.parentRunId = '{parent_id}'",
    order_by=["metrics.rmse ASC", "params.alpha DESC"],
)
small_alpha = mlflow.search_runs(
    experiment_ids=[experiment.experiment_id],
    filter_string="params.alpha = '0.01' and tags.kind = 'trial'",
    order_by=["params.l1_ratio ASC"],
)
good = mlflow.search_runs(
    experiment_ids=[experiment.experiment_id],
    filter_string="metrics.rmse < 0.4",
    order_by=["metrics.rmse ASC"],
)
top2 = mlflow.search_runs(
    experiment_ids=[experiment.experiment_id],
    filter_string="tags.kind = 'trial'",
    order_by=["metrics.rmse DESC"],
    max_results=2,
)
by_name = mlflow.search_runs(
    experiment_names=["sweep-elasticnet"], filter_string="tags.mlflow.runName = 'sweep'"
)
as_list = mlflow.search_runs(
    experiment_ids=[experiment.experiment_id],
    filter_string="attributes.status = 'FINISHED'",
    output_format="list",
)
best_run = mlflow.get_run(mlflow.get_run(parent_id).data.tags["best_run"])
history = mlflow.MlflowClient().get_metric_history(best_run.info.run_id, "train_loss")

summary = {
    "all_runs": len(as_list),
    "children_by_rmse": names(children),
    "children_rmse": [round(v, 4) for v in children["metrics.rmse"]],
    "children_params": [
        list(pair) for pair in zip(children["params.alpha"], children["params.l1_ratio"], strict=True)
    ],
    "small_alpha": names(small_alpha),
    "rmse_below_0.4": names(good),
    "worst_two": names(top2),
    "parent_by_name": names(by_name),
    "parent_metrics": mlflow.get_run(parent_id).data.metrics,
    "parent_params": mlflow.get_run(parent_id).data.params,
    "best_run_name": best_run.info.run_name,
    "best_parent_tag": best_run.data.tags["mlflow.parentRunId"] == parent_id,
    "best_loss_history": [(m.step, round(m.value, 4)) for m in history],
    "last_active_run_is_parent": mlflow.last_active_run().info.run_id == parent_id,
    "statuses": sorted({r.info.status for r in as_list}),
}
print(json.dumps(summary, sort_keys=True))
