"""The statistics of the band checks: hand computations, and simulations of their error rates."""

import csv
import statistics
from pathlib import Path

import numpy as np
import pytest

from trainguard.core import stats
from trainguard.checks import baseline, per_check_alpha
from trainguard.runs.matrix import Matrix
from trainguard.runs.options import Options
from trainguard.core.spec import ConfigError, load_profile

REPO = Path(__file__).resolve().parent.parent


def test_derived_band_equals_a_hand_computation():
    # n = 5 seeds: mean 11, sample std sqrt(10 / 4) = 1.581139; the night averages k = 2 seeds.
    # t_{1 - 0.01/2, 4} = 4.604095 (any t table); sqrt(1/5 + 1/2) = 0.836660.
    band = stats.derive_band([10.0, 12.0, 11.0, 13.0, 9.0], k=2, alpha=0.01)
    assert band.center == pytest.approx(11.0)
    assert band.std == pytest.approx(1.581139, abs=1e-6)
    assert band.t_crit == pytest.approx(4.604095, abs=1e-6)
    assert band.halfwidth == pytest.approx(4.604095 * 1.581139 * 0.836660, abs=1e-5)  # 6.0906
    assert (band.low, band.high) == pytest.approx((11.0 - 6.0906, 11.0 + 6.0906), abs=1e-4)


def test_bonferroni_split_and_resolution_floor():
    assert stats.per_check_alpha(0.01, 40) == pytest.approx(0.00025)
    with pytest.raises(ValueError, match="at least one band check"):
        stats.per_check_alpha(0.01, 0)
    flat = stats.derive_band([50.0, 50.0, 50.0], k=1, alpha=0.01, resolution=0.1)
    assert flat.std == 0.1 and flat.halfwidth > 0  # seeds that agreed exactly still get a band
    with pytest.raises(ValueError, match="at least 2 baseline seeds"):
        stats.derive_band([1.0], k=1, alpha=0.01)


def test_window_mean():
    assert stats.window_mean([1, 2, 3, 4, 5], budget=4, window=3) == pytest.approx(3.0)
    with pytest.raises(IndexError):
        stats.window_mean([1, 2], budget=3, window=1)


@pytest.mark.parametrize("n, k", [(5, 1), (10, 2)])
def test_false_alarm_rate_and_power_hold_in_simulation(n, k):
    """Draw clean nights and shifted nights from a normal model: the band fails clean ones at
    rate alpha and catches a shift of one MDE with probability `power` (Monte Carlo, fixed seed)."""
    rng = np.random.default_rng(0)
    alpha, trials = 0.05, 20000
    mde = stats.minimum_detectable_effect(1.0, n, k, alpha, power=0.9)
    base = rng.normal(size=(trials, n))
    night = rng.normal(size=(trials, k)).mean(axis=1)
    t = stats.t_critical(alpha, n)
    half = t * base.std(axis=1, ddof=1) * stats.scale(n, k)
    clean_fail = np.mean(np.abs(night - base.mean(axis=1)) > half)
    shifted_fail = np.mean(np.abs(night + mde - base.mean(axis=1)) > half)
    assert clean_fail == pytest.approx(alpha, abs=0.006)
    assert shifted_fail == pytest.approx(0.9, abs=0.01)


def test_mde_shrinks_with_more_seeds():
    a = stats.per_check_alpha(0.01, 36)
    assert stats.minimum_detectable_effect(1.0, 10, 2, a) < stats.minimum_detectable_effect(1.0, 10, 1, a)
    assert stats.minimum_detectable_effect(1.0, 20, 2, a) < stats.minimum_detectable_effect(1.0, 10, 2, a)


def test_tail_screen_hand_computation_and_normal_rate():
    # Seed 4 (value 20) against the other four (10, 12, 11, 13): mean 11.5, std sqrt(5/3) = 1.290994;
    # T = 8.5 / (1.290994 * sqrt(1 + 1/4)) = 5.889; two-sided p with 3 df = 0.009773 (closed form for 3 df:
    # F(t) = 1/2 + (x / (1 + x²) + atan x) / π, x = t / √3), times 5 seeds.
    values = [10.0, 12.0, 11.0, 13.0, 20.0]
    tail = stats.tail_screen(values, level=0.1)
    assert (tail.index, tail.value) == (4, 20.0)
    assert tail.t == pytest.approx(5.889, abs=1e-3)
    assert tail.p == pytest.approx(5 * 0.009773, rel=1e-3)
    assert (tail.rest_mean, tail.rest_std) == pytest.approx((11.5, 1.290994), abs=1e-6)
    assert stats.tail_screen(values) is None  # p 0.049 is not below the default level
    assert stats.tail_screen([1.0, 2.0, 9.0]) is None  # too few seeds to say anything about a tail
    assert stats.tail_screen([5.0, 5.0, 5.0, 5.0, 5.1], resolution=0.1) is None  # one step of the metric is no tail
    # Normal seeds: the screen flags a cell at its level (Monte Carlo, fixed seed).
    rng = np.random.default_rng(1)
    flagged = np.mean([stats.tail_screen(list(rng.normal(size=16))) is not None for _ in range(20000)])
    assert flagged == pytest.approx(stats.TAIL_SCREEN_LEVEL, abs=0.0025)  # Bonferroni: at most the level, about it
    # One seed in a mode of its own, 8 of the others' stds away, is seen.
    bulk = list(rng.normal(size=15))
    assert stats.tail_screen(bulk + [8.0]).index == 15


def _hand_values(path: Path, model: str, budget: int, metric: str, window: int) -> list[float]:
    """The per-seed statistic, read from the committed CSV with nothing but the csv module."""
    by_seed: dict[int, dict[int, float]] = {}
    with path.open() as handle:
        for row in csv.DictReader(handle):
            if row["model"] == model:
                by_seed.setdefault(int(row["seed"]), {})[int(row["epoch"])] = float(row[metric])
    return [statistics.fmean(curve[e] for e in range(budget - window + 1, budget + 1)) for _, curve in sorted(by_seed.items())]


@pytest.mark.parametrize("profile_name", ["smoke", "ci"])
def test_profile_effective_thresholds_equal_the_derived_ones(profile_name):
    """What the harness checks against is exactly t · s · sqrt(1/n + 1/k) from the stored per-seed values,
    with the run's false-alarm rate split over every band check the profile makes (ci: the CIFAR-10 plug-in's
    settings, read as the models' machinery reads a profile)."""
    from trainguard.experiments import cifar_models

    profile = load_profile(str(cifar_models.SETTINGS) if profile_name == "ci" else profile_name)
    matrix = Matrix(Options(profile=profile, baselines_dir=REPO / "baselines", results_dir=None, run_log=None))
    table = baseline.read(matrix)
    assert table is not None and table.seeds == tuple(profile.baseline_seeds)
    from trainguard.checks.experiment_bands import check_count
    from trainguard.core.experiment import load_experiment

    # a declared experiment's bands: every declared metric of every variant at every budget
    experiments = sum(check_count(load_experiment(target)) for target in profile.experiments)
    assert experiments == 0  # the settings declare no experiment (the ci profile declares the plug-ins)
    st = profile.statistics
    starts = [m for m in profile.models if m in st.start_models] if st.start_window else []
    checks = len(profile.models) * len(profile.budgets) * len(profile.checked_metrics) + len(starts) + experiments
    alpha = st.false_alarm_rate / checks
    window, k = st.window, len(profile.check_seeds)
    seeds_csv = REPO / "baselines" / profile_name / "cpu-seeds.csv"
    cells = [(model, budget, metric, window, baseline.band(matrix, table, model, budget, metric))
             for model in profile.models for budget in profile.budgets for metric in profile.checked_metrics]
    start = {c.model: c for c in profile.band_checks() if c.metric == "start_train_loss"}
    assert sorted(start) == sorted(starts)
    cells += [(model, st.start_window, "train_loss", st.start_window, baseline.derive(table, start[model], k, per_check_alpha(profile), st.power))
              for model in starts]
    for model, end, metric, span, band in cells:
        values = _hand_values(seeds_csv, model, end, metric, span)
        n = len(values)
        expected = stats.t_critical(alpha, n) * max(statistics.stdev(values), table.resolution(metric)) \
            * (1 / n + 1 / k) ** 0.5
        assert band.center == pytest.approx(statistics.fmean(values), abs=1e-9)
        assert band.halfwidth == pytest.approx(expected, rel=1e-9), (model, end, metric)


def test_calibration_names_a_far_seed_and_the_leave_out_failures_it_explains():
    """A baseline seed moved far from the others in one metric: the calibration names the check and the seed, and
    says how many leave-out failures are nights that held that seed out of the band (the installed band holds it)."""
    import copy

    from trainguard.audit import calibration
    from trainguard.stores.baselines import BaselineTable, load_measured

    profile = load_profile("smoke")
    committed = load_measured(REPO / "baselines" / "smoke" / "cpu.csv", profile.models, profile.budgets)
    assert baseline.tails(committed, profile) == []  # the committed smoke seeds: nothing far out
    curves = copy.deepcopy(committed.curves)
    for epoch in curves[("Baseline2", 3)]:
        epoch["train_loss"] += 5.0  # seed 3 learns nothing
    table = BaselineTable(committed.path, curves, committed.meta)
    found = baseline.tails(table, profile)
    assert [(c.model, c.metric, seed) for c, seed, _ in found if c.metric == "train_loss"] == \
        [("Baseline2", "train_loss", 3), ("Baseline2", "train_loss", 3)]  # both budgets
    alpha = per_check_alpha(profile)
    lines = calibration.tail_lines(table, profile, calibration.leave_out_nights(table, profile, alpha, 1))
    text = "\n".join(lines)
    assert "Baseline2-2 train_loss: seed 3" in text and "Baseline2-3 train_loss: seed 3" in text
    held = [r for r in calibration.leave_out_nights(table, profile, alpha, 1) if r.seeds == (3,)][0]
    assert any(str(f).startswith("Baseline2-3 train_loss") for f in held.failures)  # a band without seed 3 rejects it
    assert "failed only where they held such a check's far seed out of its band" in text
    # attribution reads the failed checks themselves: a flagged check failing without its far seed, or another
    # check failing with it, is not explained by the tail
    flagged = baseline.cell_check(profile, "Baseline2", 3, "train_loss")
    other = baseline.cell_check(profile, "Baseline1", 3, "train_loss")
    some_band = baseline.derive(table, flagged, 1, alpha)

    def night(seed, check):
        return calibration.NightResult((seed,), [calibration.BandFailure(check, 0.0, some_band)], "held out")
    nights = [night(3, flagged), night(4, flagged), night(3, other), calibration.NightResult((5,), [], "held out")]
    attributed = "\n".join(calibration.tail_lines(table, profile, nights))
    assert "Of the 3 failed leave-out nights, 1 failed only where" in attributed
    assert "the other 3 nights: 2 failed" in attributed
    assert baseline.derive(table, flagged, 1, alpha).contains(baseline.statistic([curves[("Baseline2", 3)]], flagged))


def test_a_baseline_seed_is_refused_as_the_checked_seed_unless_asked():
    profile = load_profile("smoke")
    with pytest.raises(ConfigError, match=r"seed\(s\) 1 are in profile smoke's baseline_seeds.*--tg-allow-baseline-seeds"):
        Matrix(Options(profile=profile, seeds=(1,), results_dir=None, run_log=None))
    allowed = Matrix(Options(profile=profile, seeds=(1,), allow_baseline_seeds=True, results_dir=None, run_log=None))
    assert allowed.seeds == (1,) and "IN the baseline" in allowed.environment()["seeds"]
    held_out = Matrix(Options(profile=profile, results_dir=None, run_log=None))
    assert held_out.seeds == profile.check_seeds and "held out" in held_out.environment()["seeds"]
