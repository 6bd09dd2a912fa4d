"""Experiment 1's machinery on generated MNIST-shaped data (fast; the real runs are slow tests)."""


import numpy as np
import pytest
import torch

from trainguard.stores import data, mnist_baselines
from trainguard.engines import overfit
from trainguard.core.history import EpochRecord, History
from trainguard.core.spec import ConfigError, load_profile

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


def test_conclusions_pass_on_the_report_s_own_numbers():
    report = overfit.Pair("report", 0,
                          _history([91.41, 0.0], [17.54, 28.89]),  # no dropout: min 17.54, final 28.89
                          _history([158.67, 2.53], [52.03, 11.57]))
    config = overfit.OverfitConfig(min_rise=0.05, seeds=(0,))
    verdicts = overfit.conclusion_verdicts([report], config)
    assert [v.metric for v in verdicts] == ["rise_nodrop", "ratio", "test_loss_drop"]
    assert all(v.passed for v in verdicts)
    assert report.quantities()["ratio"] == pytest.approx(0.313, abs=1e-3)


def test_conclusions_fail_naming_quantity_and_value():
    no_overfit = overfit.Pair("torch", 3, _history([1.0, 0.5], [1.2, 1.0]), _history([1.0, 0.9], [1.3, 1.1]))
    config = overfit.OverfitConfig(min_rise=0.05, seeds=(3,))
    failures = [v.message for v in overfit.conclusion_verdicts([no_overfit], config) if not v.passed]
    assert any("minimum − 1 = 0.000, threshold ≥ 0.05" in m for m in failures)
    assert not any("mean gap with dropout" in m for m in failures)  # 0.2 < 0.5 passes
    assert any("mean final test loss with dropout 1.100 must be below without dropout 1.000" in m for m in failures)


def test_gap_bands_are_derived_from_the_per_seed_baseline():
    """A halved gap without dropout (the issue's 15.9 → 8.1) fails; a gap inside the seed spread passes."""
    from trainguard.core.stats import derive_band

    rng = np.random.default_rng(0)
    baseline = {"gap_nodrop": list(15.9 + 2.6 * rng.standard_normal(20)),
                "gap_drop": list(1.8 + 2.6 * rng.standard_normal(20))}
    alpha = 0.01 / 40

    def pair(seed, gap_nodrop, gap_drop):
        return overfit.Pair("torch", seed, _history([5.0, 0.0], [14.0, gap_nodrop]), _history([9.0, 0.0], [12.0, gap_drop]))

    clean = [pair(100 + i, 15.9 + d, 1.8 - d) for i, d in enumerate((-1.0, 0.0, 1.0))]
    assert all(v.passed for v in overfit.gap_verdicts(clean, baseline, alpha, 0.9, "b.csv"))
    halved = [pair(100 + i, 8.1 + d, 1.8) for i, d in enumerate((-1.0, 0.0, 1.0))]
    nodrop, drop = overfit.gap_verdicts(halved, baseline, alpha, 0.9, "b.csv")
    band = derive_band(baseline["gap_nodrop"], 3, alpha)
    assert not nodrop.passed and drop.passed and "REGRESSION" in nodrop.message
    assert nodrop.allowed == pytest.approx(band.halfwidth) and nodrop.mde == pytest.approx(band.mde)
    assert "torch-seeds100_101_102 gap without dropout" in nodrop.message


def test_per_seed_mnist_baseline_round_trips_and_rejects_the_old_format(tmp_path):
    path = tmp_path / "mnist-torch-cpu.csv"
    per_seed = {s: {q: float(s + i) for i, q in enumerate(overfit.QUANTITIES)} for s in range(3)}
    mnist_baselines.write_distribution(path, per_seed, {"seeds": [0, 1, 2]})
    loaded = mnist_baselines.load_distribution(path)
    assert loaded.per_seed == per_seed and loaded.values["gap_nodrop"] == [0.0, 1.0, 2.0]
    path.with_suffix(".meta.json").write_text('{"format_version": 1}')
    with pytest.raises(ConfigError, match="format_version 1.*regenerate"):
        mnist_baselines.load_distribution(path)
    assert mnist_baselines.load_distribution(tmp_path / "absent.csv") is None


def test_dropout_loss_check_uses_the_seed_average():
    """One seed where dropout's final test loss is higher does not fail the check if the average is lower."""
    unlucky = overfit.Pair("keras", 1, _history([5.0, 0.0], [14.0, 13.0]), _history([9.0, 2.0], [15.0, 14.0]))
    lucky = overfit.Pair("keras", 2, _history([5.0, 0.0], [14.0, 18.0]), _history([9.0, 2.0], [12.0, 11.0]))
    verdict, = overfit.dropout_lowers_test_loss([unlucky, lucky])
    assert verdict.passed and verdict.measured == pytest.approx(12.5) and verdict.expected == pytest.approx(15.5)
    assert "seeds [1, 2]" in verdict.message
    assert not overfit.dropout_lowers_test_loss([unlucky])[0].passed


def test_ci_profile_runs_both_frameworks():
    mnist = load_profile("ci").mnist
    assert mnist.frameworks == ("torch", "keras") and len(mnist.baseline_seeds) >= 20


def test_bad_mnist_section_is_named():
    from trainguard.core.spec import parse_profile

    raw = {"name": "x", "dataset": "cifar10", "budgets": [1], "models": ["Baseline1"], "mnist": {"epoch": 3}}
    with pytest.raises(ConfigError, match=r"\[mnist\] has unknown keys \['epoch'\]"):
        parse_profile(raw, "x.toml")
    raw["mnist"] = {"frameworks": ["jax"]}
    with pytest.raises(ConfigError, match="frameworks"):
        parse_profile(raw, "x.toml")


@pytest.mark.slow  # out of the fast suite (its 3-minute budget); run by `pytest -m slow` in CI
@pytest.mark.generated
@pytest.mark.skipif(overfit.keras_available() is not None, reason="TensorFlow/Keras not installed")
def test_keras_run_has_the_same_record_format(fake_mnist):
    subset = overfit.small_subset(fake_mnist, CONFIG, seed=0)
    history = overfit.run_keras(subset, CONFIG, 0.5, 0)
    assert len(history.epochs) == 2 and {"val_loss", "val_acc"} <= set(history.epochs[0].extra)
    assert history.parameters == 669706


def test_pairs_round_trip_through_the_run_log(tmp_path):
    from trainguard.stores.runlog import RunLog, histories_from_log

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
    assert [v.passed for v in rebuilt.conclusions("keras")] == [True, True]
