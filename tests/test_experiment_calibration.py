"""The calibration of a declared experiment's bands (trainguard.audit.experiment_calibration): leave-k-out from the
stored baseline runs, by the night's own statistic."""

import itertools

import numpy as np

from trainguard.audit.experiment_calibration import leave_out, section
from trainguard.core import stats
from trainguard.core.experiment import Experiment
from trainguard.stores.experiment_records import Record

EXPERIMENT = Experiment("toy", lambda run: None, {"loss": "lower"}, budgets=(2,), variants={"a": {}},
                        baseline_seeds=tuple(range(8)), check_seeds=(100, 101))


def _baseline(values):
    return {("a", seed): Record("toy", "a", seed, 2, 1, "src", epochs={"loss": [9.0, value]})
            for seed, value in enumerate(values)}


def test_leave_k_out_counts_what_the_night_s_bands_would_fail():
    values = list(np.random.default_rng(3).normal(1.0, 0.1, 8))
    values[5] = 1.9  # one far seed: every group that holds it out of its band fails
    alpha = 0.01
    groups, failed, described = leave_out(EXPERIMENT, _baseline(values), alpha)
    expected = 0
    for group in itertools.combinations(range(8), 2):  # the night's own statistic, group by group
        rest = [v for s, v in enumerate(values) if s not in group]
        band = stats.derive_band(rest, 2, alpha)
        expected += not band.contains(float(np.mean([values[s] for s in group])))
    assert groups == 28 and failed == expected and failed > 0
    assert all("a-2 loss" in line for line in described) and any("5" in line for line in described)


def test_the_section_says_the_groups_the_failures_and_each_band_s_mde():
    values = [1.0, 1.1, 0.9, 1.05, 0.95, 1.02, 0.98, 1.01]
    lines = section(EXPERIMENT, _baseline(values), 0.01, 0.9)
    assert lines[0].startswith("- toy: leave-2-out over its 8 baseline seeds, 28 groups")
    band = stats.derive_band(values, 2, 0.01, power=0.9)
    assert lines[-1] == (f"  - a-2 loss: baseline {band.center:.4g}, seed std {band.std:.3g}, band ±{band.halfwidth:.3g}, "
                         f"MDE {band.mde:.3g}")
