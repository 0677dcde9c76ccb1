"""Draws bench/results/results.json as a bar chart: `python bench/plot.py RESULTS_JSON OUT_PNG`.

Runs under the MLflow venv's interpreter, which holds matplotlib, so the project venv does not
need it. Left: p50 latency per operation (log scale, lower is better) with the gRPC echo floor;
right: throughput (log scale, higher is better).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

COLORS = {"modelreg": "#1f77b4", "mlflow": "#ff7f0e"}
LABELS = {"modelreg": "modelreg", "mlflow": "MLflow"}


def measured(row: dict[str, Any], system: str, field: str) -> float:
    result = row.get(system) or {}
    value = result.get(field)
    return float(value) if value and not result.get("error") else 0.0


def draw(document: dict[str, Any], out: Path) -> None:
    rows = document["rows"]
    latency = [r for r in rows if r["kind"] in ("latency", "absolute", "info")]
    rates = [r for r in rows if r["kind"] == "throughput"]
    fig, (left, right) = plt.subplots(
        1, 2, figsize=(15, 7), gridspec_kw={"width_ratios": [3, 1]}, constrained_layout=True
    )
    width = 0.4
    for offset, system in ((-width / 2, "modelreg"), (width / 2, "mlflow")):
        ys = [i + offset for i in range(len(latency))]
        left.barh(
            ys,
            [measured(r, system, "p50_ms") for r in latency],
            width,
            color=COLORS[system],
            label=LABELS[system],
        )
        ys = [i + offset for i in range(len(rates))]
        right.barh(
            ys,
            [measured(r, system, "value") for r in rates],
            width,
            color=COLORS[system],
            label=LABELS[system],
        )
    floor = document.get("floor")
    if floor:
        left.axvline(
            floor["p50_ms"], color="grey", linestyle="--", label=f"gRPC echo floor {floor['p50_ms']:.2f} ms"
        )
    for axis, chosen, title in (
        (left, latency, "p50 latency, ms (lower is better)"),
        (right, rates, "throughput (higher is better)"),
    ):
        axis.set_xscale("log")
        field = "p50_ms" if axis is left else "value"
        values = [measured(r, system, field) for r in chosen for system in COLORS]
        if any(values):
            # Log-scale bars grow from the left edge: put it below the smallest bar so every bar shows.
            axis.set_xlim(left=min(v for v in values if v > 0) / 3)
        axis.set_yticks(range(len(chosen)))
        labels = [
            r["op"] + (f" ({r['modelreg']['unit']})" if axis is right and r.get("modelreg") else "")
            for r in chosen
        ]
        axis.set_yticklabels(labels)
        axis.invert_yaxis()
        axis.set_title(title)
        axis.grid(axis="x", which="both", alpha=0.3)
    left.legend(loc="lower right")
    meta = document["meta"]
    versions = (meta.get("mlflow") or {}).get("version", "?")
    fig.suptitle(
        f"modelreg vs MLflow {versions} — SQLite, loopback, {meta['machine']['cpus']} cores"
        + (" (quick)" if meta["quick"] else "")
    )
    fig.savefig(out, dpi=110)


def main() -> None:
    source, out = Path(sys.argv[1]), Path(sys.argv[2])
    draw(json.loads(source.read_text()), out)


if __name__ == "__main__":
    main()
