"""Each night logged to MLflow (--mlflow): against a real local MLflow tracking store (SQLite), read back with
MLflow's own client. No mocks."""

import pytest

from trainguard import cli


@pytest.mark.slow  # out of the fast suite (its 3-minute budget); run by `pytest -m slow` in CI
@pytest.mark.generated
def test_a_night_is_one_mlflow_run_with_its_settings_statistics_and_report(tmp_path, smoke_runs, monkeypatch):
    mlflow = pytest.importorskip("mlflow", reason="the dev extra installs mlflow-skinny")
    from mlflow.tracking import MlflowClient

    monkeypatch.chdir(tmp_path)  # a local store keeps its artifacts in ./mlruns: the test's own directory
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    baselines = smoke_runs.copy_baseline(tmp_path / "b").parent
    code = cli.main(["run", "--profile", "smoke", "--device", "cpu", "--no-replay", "--results-dir",
                     str(smoke_runs.copy(tmp_path / "results")), "--baselines-dir", str(baselines),
                     "--run-log", str(tmp_path / "runlog.jsonl"), "--ledger", str(tmp_path / "l.sqlite"),
                     "--report", str(tmp_path / "night" / "report.md"), "--mlflow", uri])
    assert code == 0
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("trainguard-smoke-cpu")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED" and run.data.tags["trainguard.result"] == "PASS"
    assert run.data.params["profile"] == "smoke" and run.data.params["seeds"] == "100"
    assert "versions.torch" in run.data.params
    assert set(run.data.metrics) >= {"Baseline1-2.test_acc", "NewModel2-3.train_loss"}
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert "report.md" in artifacts and "report-models-curves.png" in artifacts
    assert mlflow.__version__


def test_an_mlflow_store_that_fails_is_said_and_changes_nothing(tmp_path, capsys, monkeypatch):
    """A tracking server that is down: said on stderr, no exception (the night's result and exit code stand)."""
    pytest.importorskip("mlflow", reason="the dev extra installs mlflow-skinny")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # a user's setting wins over trainguard's cap
    from trainguard.api import export_to_mlflow

    (tmp_path / "report.md").write_text("# a night\n")
    entry = {"profile": "smoke", "device_class": "cpu", "result": "PASS", "time": "2026-12-02T02:17", "cells": {}}
    export_to_mlflow("http://127.0.0.1:1", entry, tmp_path / "report.md")
    assert "the MLflow export to http://127.0.0.1:1 failed" in capsys.readouterr().err


EXPERIMENT = '''
import trainguard


@trainguard.experiment(metrics={"loss": "lower"}, budgets=(1, 2), variants={"a": {"k": 1.0}, "b": {"k": 2.0}},
                       baseline_seeds=(0, 1, 2))
def fit(run):
    value = 10.0 * run.settings["k"]
    for epoch in range(run.budget):
        value = value / 2 + run.seed % 7 * 1e-3  # seed noise: the check seed 100 lands within it
        run.step(loss=value)
        run.epoch(loss=value)
'''


@pytest.mark.slow  # MLflow's SQLite store sets itself up in seconds: out of the fast suite's budget
def test_an_experiment_s_night_is_one_mlflow_run_with_its_variants_metrics_and_report(tmp_path, monkeypatch):
    """trainguard guard … check --mlflow on an experiment that is no profile: the same export as a profile's night,
    a variant where a model would be; the report is an artifact even without --report."""
    pytest.importorskip("mlflow", reason="the dev extra installs mlflow-skinny")
    from mlflow.tracking import MlflowClient

    monkeypatch.chdir(tmp_path)
    (tmp_path / "fit.py").write_text(EXPERIMENT)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert cli.main(["guard", "fit.py:fit", "baseline"]) == 0
    assert cli.main(["guard", "fit.py:fit", "check", "--mlflow", uri]) == 0
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("trainguard-fit-cpu")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED" and run.data.tags["trainguard.result"] == "PASS"
    assert set(run.data.metrics) >= {"a-1.loss", "a-2.loss", "b-1.loss", "b-2.loss"}
    assert run.data.metrics["b-2.loss"] == pytest.approx((20 / 2 + 2e-3) / 2 + 2e-3)  # seed 100: 100 % 7 = 2
    assert {a.path for a in client.list_artifacts(run.info.run_id)} == {"report.md"}
