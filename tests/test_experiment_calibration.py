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
    groups, failed = leave_out(EXPERIMENT, _baseline(values), alpha)
    expected = 0
    for group in itertools.combinations(range(8), 2):  # the night's own statistic, group by group
        rest = [v for s, v in enumerate(values) if s not in group]
        band = stats.derive_band(rest, 2, alpha)
        expected += not band.contains(float(np.mean([values[s] for s in group])))
    assert groups == 28 and len(failed) == expected and failed
    assert all(broken == [("a", 2, "loss")] for _, broken in failed) and any(5 in group for group, _ in failed)


def test_the_section_says_the_groups_the_failures_and_each_band_s_mde():
    values = [1.0, 1.1, 0.9, 1.05, 0.95, 1.02, 0.98, 1.01]
    lines = section(EXPERIMENT, _baseline(values), 0.01, 0.9)
    assert lines[0].startswith("- toy: leave-2-out over its 8 baseline seeds, 28 groups")
    band = stats.derive_band(values, 2, 0.01, power=0.9)
    assert lines[-1] == (f"  - a-2 loss: baseline {band.center:.4g}, seed std {band.std:.3g}, band ±{band.halfwidth:.3g}, "
                         f"MDE {band.mde:.3g}")


def test_the_tail_screen_names_the_far_seed_and_the_failures_it_explains_and_reruns_are_checked():
    values = [1.0, 1.1, 0.9, 1.05, 0.95, 1.9, 0.98, 1.01]  # seed 5 far out
    night = {("a", 100): Record("toy", "a", 100, 2, 1, "src", epochs={"loss": [9.0, 1.0]}),
             ("a", 101): Record("toy", "a", 101, 2, 1, "src", epochs={"loss": [9.0, 6.0]})}  # a rerun far off
    lines = section(EXPERIMENT, _baseline(values), 0.01, 0.9, night)
    tail = next(line for line in lines if "Tail screen" in line)
    groups, failed = leave_out(EXPERIMENT, _baseline(values), 0.01)
    explained = sum(5 in group for group, _ in failed)
    assert f"1 band(s) whose baseline seeds hold one far from the others; {explained} of the {len(failed)} failed" in tail
    assert any(line.startswith("    - a-2 loss: seed 5 at 1.9 lies") for line in lines)
    rerun = next(line for line in lines if "Real reruns" in line)
    assert "the check seeds [100, 101], from the result cache): 1 of 1 band(s) failed: a-2 loss" in rerun
