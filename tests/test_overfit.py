"""Experiment 1 (MNIST overfitting, dropout as the fix) as the plug-in the ci profile declares
(trainguard.experiments.mnist_overfit), on generated MNIST-shaped data in a data directory of the test's own (fast;
the real runs are slow tests). Its checks are the contract's — bands on every declared metric, its claims — so what
is tested here is the experiment itself: its data, its arms, its settings, its Keras twin."""

import numpy as np
import pytest

from trainguard.core.errors import ConfigError
from trainguard.core.spec import load_profile, parse_profile
from trainguard.experiments import mnist_overfit
from trainguard.experiments.mnist_overfit import Settings
from trainguard.runs.experiment_runs import train
from trainguard.stores import data

SMALL = Settings(train_images=40, epochs=2, check_seeds=(100,), baseline_seeds=(0, 1, 2))


@pytest.fixture(scope="module")
def fake_mnist():
    return data.synthetic("mnist", train_per_class=10, test_per_class=5)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory, fake_mnist):
    """A data directory holding a generated mnist.npz (the loader's layout), as a user's --data-dir would."""
    folder = tmp_path_factory.mktemp("data")
    np.savez(folder / "mnist.npz", x_train=fake_mnist.x_train, y_train=fake_mnist.y_train, x_test=fake_mnist.x_test,
             y_test=fake_mnist.y_test)
    return folder


def test_subset_is_seeded_class_balanced_and_split_like_keras(fake_mnist):
    a = mnist_overfit.small_subset(fake_mnist, SMALL, seed=1)
    assert len(a.x_train) == 30 and len(a.x_val) == 10  # validation_split 0.25 of 40
    counts = np.bincount(np.concatenate([a.y_train, a.y_val]), minlength=10)
    assert counts.tolist() == [4] * 10
    b = mnist_overfit.small_subset(fake_mnist, SMALL, seed=1)
    c = mnist_overfit.small_subset(fake_mnist, SMALL, seed=2)
    assert np.array_equal(a.x_train, b.x_train) and not np.array_equal(a.x_train, c.x_train)
    assert len(a.x_test) == len(fake_mnist.x_test)


def test_the_torch_arm_reports_each_epoch_and_is_deterministic(data_dir):
    experiment = mnist_overfit.make(SMALL)
    first = train(experiment, "dropout", 3, 2, data_dir=data_dir)
    assert first.completed, first.message
    assert set(first.epochs) == {"train_loss", "test_loss", "gap"} and len(first.epochs["gap"]) == 2
    assert first.epochs["gap"] == [t - r for t, r in zip(first.epochs["test_loss"], first.epochs["train_loss"])]
    assert len(first.steps["loss"]) == 2 * -(-30 // SMALL.batch_size)  # 30 fitted images, batch 32
    assert set(first.inputs) == {"x_train", "y_train", "x_test", "y_test"}  # its data, declared
    again = train(experiment, "dropout", 3, 2, data_dir=data_dir)
    assert again.epochs == first.epochs and again.steps == first.steps  # same seed, same machine: the same numbers
    other = train(experiment, "nodrop", 3, 2, data_dir=data_dir)
    assert other.epochs["train_loss"] != first.epochs["train_loss"]  # the variant reaches the model


def test_the_plug_in_is_the_ci_profile_s_declared_experiment():
    ci = load_profile("ci")
    assert ci.experiments == ("trainguard.experiments.cifar_models:ci", "trainguard.experiments.mnist_overfit:torch",
                              "trainguard.experiments.mnist_overfit:keras")
    torch_arm, keras_arm = mnist_overfit.torch, mnist_overfit.keras
    assert torch_arm.variants == {"nodrop": {"dropout": 0.0}, "dropout": {"dropout": 0.5}}
    assert torch_arm.budgets == (10,) and len(torch_arm.baseline_seeds) == 20 and len(torch_arm.check_seeds) == 6
    assert not set(torch_arm.baseline_seeds) & set(torch_arm.check_seeds)
    assert [c.name for c in keras_arm.claims] == ["dropout shrinks the gap", "dropout lowers the final test loss"]
    assert torch_arm.replay_budget == keras_arm.replay_budget == 1  # both report steps: both have golden runs
    files = {p.name for p in torch_arm.source_files()}
    assert {"mnist_overfit.py", "engine.py", "mnist.py"} <= files  # its cache key covers the engine and the model


def test_bad_settings_are_refused_naming_them():
    with pytest.raises(ConfigError, match="train_images must be a multiple of 10"):
        Settings(train_images=45)
    with pytest.raises(ConfigError, match="dropout in"):
        Settings(dropout=1.0)


def test_the_retired_mnist_section_names_its_replacement():
    raw = {"name": "x", "dataset": "cifar10", "budgets": [1], "models": ["Baseline1"], "mnist": {"epochs": 3}}
    with pytest.raises(ConfigError, match=r"\[mnist\] section is retired.*trainguard\.experiments\.mnist_overfit:torch"):
        parse_profile(raw, "x.toml")
    raw = {"name": "x", "dataset": "cifar10", "budgets": [1], "models": ["Baseline1"], "golden": {"mnist_seed": 3}}
    with pytest.raises(ConfigError, match=r"mnist_seed is retired"):
        parse_profile(raw, "x.toml")


def test_without_tensorflow_the_keras_twin_says_why_it_cannot_run(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "tensorflow" else real(name, *a))
    assert "tensorflow not installed" in mnist_overfit.keras.unavailable()
    assert mnist_overfit.torch.unavailable() is None


@pytest.mark.slow  # out of the fast suite (its 3-minute budget); run by `pytest -m slow` in CI
@pytest.mark.generated
@pytest.mark.skipif(mnist_overfit.keras_missing() is not None, reason="TensorFlow/Keras not installed")
def test_the_keras_twin_reports_the_same_metrics(data_dir):
    record = train(mnist_overfit.make(SMALL, "keras"), "dropout", 0, 2, data_dir=data_dir)
    assert record.completed, record.message
    assert set(record.epochs) == {"train_loss", "test_loss", "gap"} and len(record.epochs["gap"]) == 2
    # every batch's loss and learning rate, reported once the child is done: what its golden replay compares
    steps = 2 * -(-SMALL.train_images * 3 // 4 // SMALL.batch_size)
    assert set(record.steps) == {"loss", "lr"} and len(record.steps["loss"]) == steps
    assert record.steps["lr"] == pytest.approx([SMALL.lr] * steps)  # float32 in Keras


def test_the_plug_in_s_committed_baseline_is_the_retired_machinery_s_runs_number_for_number():
    """What stays: the ci profile's MNIST baseline, measured again through the plug-in (baselines/ci/experiments/),
    holds the numbers the retired machinery logged for the same seeds (baselines/ci/mnist-runlog.jsonl, 2026-12-01):
    every epoch's train loss of every seed, both variants, both frameworks, bit for bit, and every test loss of the
    torch arm. The Keras twin's test losses are equal to TensorFlow's evaluation rounding: measured, 3 of its 200
    evaluations differ from the log, by at most 1.3e-7 relative (seeds 0, 4 and 5 without dropout, one epoch each;
    their training is bit for bit the log's), and a rerun here reproduces the committed records exactly."""
    from pathlib import Path

    from trainguard.stores.experiment_records import ExperimentStore
    from trainguard.stores.runlog import histories_from_log

    root = Path(__file__).resolve().parent.parent / "baselines" / "ci"
    logged = histories_from_log(root / "mnist-runlog.jsonl", "ci")
    store, compared = ExperimentStore(root / "experiments"), 0
    for framework in ("torch", "keras"):
        experiment = getattr(mnist_overfit, framework)
        for variant, settings in experiment.variants.items():
            for seed in experiment.baseline_seeds:
                record = store.latest(experiment.name, variant, seed, 10, 2)
                history = logged[(f"mnist-{framework}-dropout{settings['dropout']}", seed)]
                assert record is not None and record.completed, (framework, variant, seed)
                assert record.epochs["train_loss"] == [e.train_loss for e in history.epochs], (framework, variant, seed)
                test = [e.test_loss for e in history.epochs]
                if framework == "torch":
                    assert record.epochs["test_loss"] == test, (framework, variant, seed)
                else:
                    assert record.epochs["test_loss"] == pytest.approx(test, rel=2e-7, abs=0), (variant, seed)
                compared += 1
    assert compared == 80
