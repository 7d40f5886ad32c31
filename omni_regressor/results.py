"""One results table per dataset, in the MMSA style: every training run and sweep appends a row.

    <results_dir>/<dataset>.csv    time, model, backbone, readout, modalities, seeds, runs, <metric>_mean, <metric>_std,
                                   output_dir

The default `results_dir` is `results/` beside the run's output folder (`--results_dir` to change it).
"""

import csv
import fcntl
import time
from pathlib import Path

import numpy as np

from omni_regressor.eval.metrics import PRIMARY_METRICS, SIMS_METRIC_KEYS

BASE_COLUMNS = ["time", "model", "backbone", "readout", "modalities", "seeds", "runs"]


def results_path(results_dir, dataset: str) -> Path:
    name = str(dataset).strip("/").replace("/", "__") or "dataset"
    return Path(results_dir) / f"{name}.csv"


def append_results(results_dir, dataset: str, model: str, backbone: str, readout: str, modalities, seeds,
                   metric_runs: list[dict], output_dir) -> Path:
    """Appends one row (mean and std of each metric over `metric_runs`) to `<results_dir>/<dataset>.csv`."""
    metric_keys = PRIMARY_METRICS if "Has0_acc_2" in metric_runs[0] else SIMS_METRIC_KEYS
    row = {
        "time": time.strftime("%Y-%m-%d %H:%M:%S"),
        "model": model,
        "backbone": backbone,
        "readout": readout,
        "modalities": "+".join(name[0].upper() for name in modalities),
        "seeds": " ".join(str(seed) for seed in seeds),
        "runs": len(metric_runs),
    }
    for key in metric_keys:
        values = np.asarray([run.get(key, np.nan) for run in metric_runs], dtype=np.float64)
        row[f"{key}_mean"] = round(float(np.nanmean(values)), 4) if np.isfinite(values).any() else float("nan")
        row[f"{key}_std"] = round(float(np.nanstd(values)), 4) if np.isfinite(values).any() else float("nan")
    row["output_dir"] = str(output_dir)
    path = results_path(results_dir, dataset)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+", newline="", encoding="utf-8") as file:
        fcntl.flock(file, fcntl.LOCK_EX)  # runs of a sweep (or of several sweeps) append one at a time
        file.seek(0)
        existing = file.read()
        header = existing.splitlines()[0].split(",") if existing else list(row)
        if existing and header != list(row):
            raise ValueError(f"{path} has other columns ({', '.join(header)}); write this run's results elsewhere.")
        writer = csv.DictWriter(file, fieldnames=list(row), lineterminator="\n")
        if not existing:
            writer.writeheader()
        writer.writerow(row)
    return path
