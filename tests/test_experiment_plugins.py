"""The course report's experiments as plug-ins on the public Experiment contract (trainguard.experiments), imported
as a user imports them: the same numbers as the built-in profile machinery trains, and the contract's instruments
(replay, bands, claims) on them. Generated MNIST-shaped data: fast."""

import dataclasses

import pytest

from trainguard import Experiment
from trainguard.core.spec import OverfitConfig, load_profile
from trainguard.experiments import mnist_overfit
from trainguard.replay import experiment_replay as replay
from trainguard.runs.experiment_runs import train
from trainguard.stores.experiment_records import ExperimentStore

SMALL = OverfitConfig(train_images=40, epochs=2, synthetic=True, seeds=(100,), baseline_seeds=(0, 1, 2))


def test_the_mnist_plug_in_is_an_experiment_at_the_ci_profile_s_settings():
    ci = load_profile("ci").mnist
    experiment = mnist_overfit.torch
    assert isinstance(experiment, Experiment) and experiment.budgets == (ci.epochs,)
    assert experiment.variants == {"nodrop": {"dropout": 0.0}, "dropout": {"dropout": ci.dropout}}
    assert experiment.baseline_seeds == ci.baseline_seeds and experiment.check_seeds == ci.seeds
    assert [c.name for c in experiment.claims] == ["dropout shrinks the gap", "dropout lowers the final test loss"]
    files = {p.name for p in experiment.source_files()}
    assert {"mnist_overfit.py", "engine.py", "overfit.py", "mnist.py"} <= files  # its cache key covers the engine


def test_the_plug_in_trains_the_numbers_the_built_in_machinery_trains():
    import torch

    from trainguard.engines.overfit import load_mnist, run_torch, small_subset

    experiment = mnist_overfit.make(SMALL)
    record = train(experiment, "dropout", seed=3, epochs=2)
    assert record.completed, record.message
    subset = small_subset(load_mnist(SMALL), SMALL, 3)
    history = run_torch(subset, SMALL, SMALL.dropout, 3, torch.device("cpu"))
    assert record.epochs["test_loss"] == [e.test_loss for e in history.epochs]  # bit for bit
    assert record.epochs["train_loss"] == [e.train_loss for e in history.epochs]
    assert len(record.steps["loss"]) == 2 * -(-30 // SMALL.batch_size)  # 30 fitted images, batch 32


def test_the_contract_s_instruments_on_the_plug_in(tmp_path):
    experiment, store = mnist_overfit.make(SMALL), ExperimentStore(tmp_path)
    golden, message = replay.write_golden(experiment, "nodrop", store)
    assert golden is not None, message
    assert replay.replay(experiment, "nodrop", store).status == "identical"
    changed = mnist_overfit.make(dataclasses.replace(SMALL, lr=0.0011))
    outcome = replay.replay(changed, "nodrop", store)
    # one step per epoch (30 fitted images, batch 32): its loss is taken before the update, so the learning rate
    # first shows in the epoch's evaluation
    assert outcome.status == "changed" and outcome.series == "gap after epoch 1", outcome.message


def test_the_cifar_plug_in_carries_the_report_s_conclusions_as_claims():
    from trainguard.experiments import cifar_models

    experiment = cifar_models.ci
    assert list(experiment.variants) == ["Baseline1", "Baseline2", "NewModel1", "NewModel2"]
    assert experiment.budgets == (10, 20)
    names = [c.name for c in experiment.claims]
    assert "NewModel2 beats NewModel1 at 20 epochs" in names and "more epochs help Baseline1" in names


def test_the_cifar_plug_in_trains_the_numbers_a_night_trains(tmp_path):
    """The smoke profile's Baseline1, seed 100, through a night's Matrix and through the plug-in: bit for bit."""
    from trainguard.experiments import cifar_models
    from trainguard.runs.matrix import Matrix
    from trainguard.runs.training import deliver
    from trainguard.runs.options import Options

    profile = load_profile("smoke")
    matrix = Matrix(Options(profile, results_dir=None, run_log=tmp_path / "runlog.jsonl", device="cpu", threads=1,
                            replay=False, figures=False), printer=lambda _: None)
    try:
        night = deliver(matrix, "Baseline1", 100)
    finally:
        matrix.close()
    record = train(cifar_models.make(profile), "Baseline1", seed=100, epochs=max(profile.budgets), threads=1)
    assert record.completed, record.message
    assert record.epochs["test_acc"] == [e.test_acc for e in night.epochs]
    assert record.epochs["train_loss"] == [e.train_loss for e in night.epochs]


@pytest.mark.slow
@pytest.mark.generated
def test_the_keras_twin_plug_in_trains_in_its_child_and_reports_its_epochs():
    pytest.importorskip("tensorflow")
    record = train(mnist_overfit.make(SMALL, framework="keras"), "dropout", seed=3, epochs=2)
    assert record.completed, record.message
    assert len(record.epochs["gap"]) == 2 and record.steps == {}  # epochs only: no golden for the Keras twin


def test_a_plug_in_is_a_guard_target_like_any_user_s(tmp_path, capsys):
    from trainguard import cli

    assert cli.main(["guard", "trainguard.experiments.mnist_overfit:torch", "replay", "--dir", str(tmp_path)]) == 5
    assert "no golden" in capsys.readouterr().out
