"""One training run that logs everything a notebook typically logs: params, metrics over steps,
tags, a dict and a text file; then reads it all back."""

import json
import tempfile
from pathlib import Path

import mlflow
from mlflow import MlflowClient

mlflow.set_experiment("run-logging")
config = {"optimizer": "adam", "layers": [64, 32], "dropout": 0.1}

with mlflow.start_run(run_name="train-mlp", description="baseline MLP") as run:
    mlflow.log_params({"lr": 0.001, "batch_size": 32, "epochs": 4})
    mlflow.log_param("optimizer", config["optimizer"])
    mlflow.set_tags({"team": "forecasting", "dataset": "sales-v3"})
    mlflow.set_tag("priority", 2)
    for epoch in range(4):
        mlflow.log_metrics({"loss": 1.0 / (epoch + 1), "accuracy": 0.5 + 0.1 * epoch}, step=epoch)
    mlflow.log_metric("val_loss", 0.42)
    mlflow.log_dict(config, "config/model.json")
    mlflow.log_text("epoch,loss\n0,1.0\n1,0.5\n", "reports/loss.csv")
    mlflow.log_text("all good", "notes.txt")
    run_id = run.info.run_id

client = MlflowClient()
finished = client.get_run(run_id)
with tempfile.TemporaryDirectory() as tmp:
    config_path = client.download_artifacts(run_id, "config/model.json", tmp)
    loaded_config = json.loads(Path(config_path).read_text())
    notes = Path(client.download_artifacts(run_id, "notes.txt", tmp)).read_text()
top_level = sorted(a.path for a in client.list_artifacts(run_id))
in_config = sorted(a.path for a in client.list_artifacts(run_id, "config"))
loss_history = client.get_metric_history(run_id, "loss")
accuracy_history = client.get_metric_history(run_id, "accuracy")

user_tags = {k: v for k, v in finished.data.tags.items() if not k.startswith("mlflow.")}
summary = {
    "name": finished.info.run_name,
    "status": finished.info.status,
    "params": finished.data.params,
    "metrics": {k: round(v, 4) for k, v in finished.data.metrics.items()},
    "tags": user_tags,
    "description": finished.data.tags.get("mlflow.note.content"),
    "run_name_tag": finished.data.tags.get("mlflow.runName"),
    "loss_history": [(m.step, round(m.value, 4)) for m in loss_history],
    "accuracy_history": [(m.step, round(m.value, 4)) for m in accuracy_history],
    "artifacts": top_level,
    "config_dir": in_config,
    "config": loaded_config,
    "notes": notes,
    "ended": finished.info.end_time is not None and finished.info.end_time >= finished.info.start_time,
}
print(json.dumps(summary, sort_keys=True))
