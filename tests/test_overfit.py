"""Experiment 1's machinery on generated MNIST-shaped data (fast; the real runs are slow tests)."""

import dataclasses

import numpy as np
import pytest
import torch

from harness import data, overfit
from harness.history import EpochRecord, History
from harness.spec import ConfigError, load_profile

CONFIG = overfit.OverfitConfig(epochs=2, train_images=40)


@pytest.fixture(scope="module")
def fake_mnist():
    return data.synthetic("mnist", train_per_class=10, test_per_class=5)


def test_subset_is_seeded_class_balanced_and_split_like_keras(fake_mnist):
    a = overfit.small_subset(fake_mnist, CONFIG, seed=1)
    assert len(a.x_train) == 30 and len(a.x_val) == 10  # validation_split 0.25 of 40
    counts = np.bincount(np.concatenate([a.y_train, a.y_val]), minlength=10)
    assert counts.tolist() == [4] * 10
    b = overfit.small_subset(fake_mnist, CONFIG, seed=1)
    c = overfit.small_subset(fake_mnist, CONFIG, seed=2)
    assert np.array_equal(a.x_train, b.x_train) and not np.array_equal(a.x_train, c.x_train)
    assert len(a.x_test) == len(fake_mnist.x_test)


def test_torch_twin_records_validation_and_test_per_epoch(fake_mnist):
    subset = overfit.small_subset(fake_mnist, CONFIG, seed=0)
    history = overfit.run_torch(subset, CONFIG, 0.5, 0, torch.device("cpu"))
    assert len(history.epochs) == 2
    assert {"val_loss", "val_acc"} <= set(history.epochs[0].extra)
    again = overfit.run_torch(subset, CONFIG, 0.5, 0, torch.device("cpu"))
    assert [e.test_loss for e in again.epochs] == [e.test_loss for e in history.epochs]


def _history(train, test):
    h = History("m", 0, "cpu", 1)
    h.epochs = [EpochRecord(i + 1, a, 0.0, b, 0.0, 0.0) for i, (a, b) in enumerate(zip(train, test))]
    return h


def test_checks_pass_on_the_report_s_own_numbers():
    report = overfit.Pair("report", 0,
                          _history([91.41, 0.0], [17.54, 28.89]),  # no dropout: min 17.54, final 28.89
                          _history([158.67, 2.53], [52.03, 11.57]))
    config = overfit.OverfitConfig(min_gap=5, min_rise=0.05, max_ratio=0.6, seeds=(0,))
    verdicts = overfit.framework_verdicts([report], config)
    assert [v.metric for v in verdicts] == ["gap_nodrop", "rise_nodrop", "ratio", "test_loss_drop"]
    assert all(v.passed for v in verdicts)
    assert report.quantities()["ratio"] == pytest.approx(0.313, abs=1e-3)


def test_checks_fail_naming_quantity_value_and_threshold():
    no_overfit = overfit.Pair("torch", 3, _history([1.0, 0.5], [1.2, 1.0]), _history([1.0, 0.9], [1.3, 1.1]))
    config = overfit.OverfitConfig(min_gap=5, min_rise=0.05, max_ratio=0.6, seeds=(3,))
    failures = [v.message for v in overfit.framework_verdicts([no_overfit], config) if not v.passed]
    assert any("test loss − train loss = 0.500, threshold ≥ 5" in m for m in failures)
    assert any("minimum − 1 = 0.000, threshold ≥ 0.05" in m for m in failures)
    assert not any("ratio" in m for m in failures)  # 0.2 / 0.5 = 0.4 ≤ 0.6 passes
    assert any("mean final test loss with dropout 1.100 must be below without dropout 1.000" in m for m in failures)


def test_ratio_check_fails_naming_the_ratio():
    weak_dropout = overfit.Pair("torch", 0, _history([5.0, 0.0], [14.0, 10.0]), _history([9.0, 1.0], [12.0, 9.0]))
    verdict, = overfit.dropout_helps(weak_dropout, overfit.OverfitConfig(max_ratio=0.6))
    assert not verdict.passed
    assert "gap with dropout 8.000 / without 10.000 = ratio 0.800, threshold ≤ 0.6" in verdict.message


def test_dropout_loss_check_uses_the_seed_average():
    """One seed where dropout's final test loss is higher does not fail the check if the average is lower."""
    unlucky = overfit.Pair("keras", 1, _history([5.0, 0.0], [14.0, 13.0]), _history([9.0, 2.0], [15.0, 14.0]))
    lucky = overfit.Pair("keras", 2, _history([5.0, 0.0], [14.0, 18.0]), _history([9.0, 2.0], [12.0, 11.0]))
    verdict, = overfit.dropout_lowers_test_loss([unlucky, lucky])
    assert verdict.passed and verdict.measured == pytest.approx(12.5) and verdict.expected == pytest.approx(15.5)
    assert "seeds [1, 2]" in verdict.message
    assert not overfit.dropout_lowers_test_loss([unlucky])[0].passed


def test_false_alarms_count_seeds_and_seed_groups():
    pairs = {s: overfit.Pair("torch", s, _history([5.0, 0.0], [14.0, 20.0]), _history([9.0, 2.0], [12.0, 11.0]))
             for s in range(4)}
    experiment = overfit.OverfitExperiment(overfit.OverfitConfig(min_gap=5, seeds=(0, 1)), mnist=None, device=None,
                                           pairs={("torch", s): p for s, p in pairs.items()})
    alarms, trials = experiment.false_alarms("torch", range(4))
    assert alarms == [] and trials == 4 + 6  # 4 seeds, C(4, 2) pairs of seeds


def test_ci_profile_runs_both_frameworks():
    mnist = load_profile("ci").mnist
    assert mnist.frameworks == ("torch", "keras") and len(mnist.baseline_seeds) >= 20


def test_bad_mnist_section_is_named():
    from harness.spec import parse_profile

    raw = {"name": "x", "dataset": "cifar10", "budgets": [1], "models": ["Baseline1"], "mnist": {"epoch": 3}}
    with pytest.raises(ConfigError, match=r"\[mnist\] has unknown keys \['epoch'\]"):
        parse_profile(raw, "x.toml")
    raw["mnist"] = {"frameworks": ["jax"]}
    with pytest.raises(ConfigError, match="frameworks"):
        parse_profile(raw, "x.toml")


@pytest.mark.skipif(overfit.keras_available() is not None, reason="TensorFlow/Keras not installed")
def test_keras_run_has_the_same_record_format(fake_mnist):
    subset = overfit.small_subset(fake_mnist, CONFIG, seed=0)
    history = overfit.run_keras(subset, CONFIG, 0.5, 0)
    assert len(history.epochs) == 2 and {"val_loss", "val_acc"} <= set(history.epochs[0].extra)
    assert history.parameters == 669706


def test_pairs_round_trip_through_the_run_log(tmp_path):
    from harness.runlog import RunLog, histories_from_log

    config = overfit.OverfitConfig(seeds=(4,), frameworks=("keras",))
    log = RunLog(tmp_path / "log.jsonl")
    experiment = overfit.OverfitExperiment(config, mnist=None, device=None, log=log, profile="ci")
    for dropout, history in ((0.0, _history([5.0, 0.0], [14.0, 20.0])), (0.5, _history([9.0, 2.0], [12.0, 11.0]))):
        history.seed = 4
        experiment._log("keras", dropout, history)
    rebuilt = overfit.OverfitExperiment.from_log(config, histories_from_log(tmp_path / "log.jsonl", "ci"))
    assert list(rebuilt.pairs) == [("keras", 4)]
    assert rebuilt.pairs[("keras", 4)].quantities() == pytest.approx(
        overfit.Pair("keras", 4, _history([5.0, 0.0], [14.0, 20.0]), _history([9.0, 2.0], [12.0, 11.0])).quantities())
    assert [v.passed for v in rebuilt.verdicts("keras")] == [True, True, True]
