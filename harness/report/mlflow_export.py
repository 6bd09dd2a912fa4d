"""Each night logged to MLflow (``--mlflow URI``, the ``mlflow`` extra), for teams whose experiments live there.

One MLflow run per night, in the experiment ``trainguard-<profile>-<device class>``: the night's settings as
parameters (commit, seeds, versions), its checked statistics as metrics (``<model>-<budget>.<metric>``, the mean
over the night's seeds; a declared experiment's as ``<name>/<variant>-<budget>.<metric>``; the speed and peak memory
per model), its result as a tag and as the run's status, and
the report with its figures as artifacts. The ledger stays the record trainguard compares against: an export that
fails is said, and changes neither the night's result nor its exit code.
"""

from __future__ import annotations

import statistics
from pathlib import Path

from ..core.storage import ConfigError

MAX_PARAM = 500  # MLflow's limit on a parameter's value


def _key(text: str) -> str:
    """A metric name MLflow accepts (letters, digits, ``_ - . / `` and spaces): any other character of a user's
    experiment or variant name becomes ``_``."""
    import re

    return re.sub(r"[^\w\-. /]", "_", text)


def log_night(uri: str, entry: dict, report_path: Path) -> str:
    """Log the night ``entry`` (trainguard.checks.trend.history_entry, completed by the summary) with the report at
    ``report_path`` and its figures; returns the MLflow run id."""
    import os

    # a tracking server that is down must not hold the night's end for MLflow's default retries (minutes)
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")
    try:
        from mlflow.tracking import MlflowClient
    except ModuleNotFoundError:
        raise ConfigError("--mlflow needs MLflow: pip install 'trainguard[mlflow]'") from None
    client = MlflowClient(tracking_uri=uri)
    name = f"trainguard-{entry['profile']}-{entry['device_class']}"
    experiment = client.get_experiment_by_name(name)
    experiment_id = experiment.experiment_id if experiment else client.create_experiment(name)
    run = client.create_run(experiment_id, run_name=f"{entry.get('time', '')[:16]} {entry.get('result', '')}",
                            tags={"trainguard.result": str(entry.get("result")), "trainguard.commit": str(entry.get("commit")),
                                  "trainguard.run_id": str(entry.get("run_id"))})
    run_id = run.info.run_id
    for key, value in parameters(entry).items():
        client.log_param(run_id, key, value)
    for key, value in metrics(entry).items():
        client.log_metric(run_id, key, value)
    report_path = Path(report_path)
    for path in [report_path, *sorted(report_path.parent.glob(f"{report_path.stem}-*.png"))]:
        client.log_artifact(run_id, str(path))
    client.set_terminated(run_id, status="FAILED" if entry.get("result") == "FAIL" else "FINISHED")
    return run_id


def parameters(entry: dict) -> dict[str, str]:
    params = {"profile": entry.get("profile"), "device_class": entry.get("device_class"), "commit": entry.get("commit"),
              "seeds": ",".join(map(str, entry.get("seeds", []))), "hardware": entry.get("hardware"),
              "data_fingerprint": entry.get("data")}
    params.update({f"versions.{k}": v for k, v in entry.get("versions", {}).items()})
    return {k: str(v)[:MAX_PARAM] for k, v in params.items() if v is not None}


def metrics(entry: dict) -> dict[str, float]:
    """The checked statistics (mean over the night's seeds) per cell and metric; speed and memory per model."""
    values = {}
    for model, budgets in entry.get("cells", {}).items():
        for budget, per_metric in budgets.items():
            for metric, per_seed in per_metric.items():
                if per_seed:
                    values[f"{model}-{budget}.{metric}"] = statistics.fmean(per_seed.values())
    for name, variants in entry.get("experiments", {}).items():  # a profile's declared experiments, beside its models
        for variant, budgets in variants.items():
            for budget, per_metric in budgets.items():
                for metric, per_seed in per_metric.items():
                    if per_seed:
                        values[_key(f"{name}/{variant}-{budget}.{metric}")] = statistics.fmean(per_seed.values())
    for model, speed in entry.get("speed", {}).items():
        for what in ("epoch_seconds", "images_per_second", "peak_memory_mb"):
            if isinstance(speed.get(what), (int, float)):
                values[f"{model}.{what}"] = float(speed[what])
    return values
