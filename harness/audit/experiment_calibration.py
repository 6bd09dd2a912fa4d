"""The calibration of a declared experiment's bands, from its stored baseline runs alone (nothing trains): how often
a clean night fails them (leave-k-out: every group of k baseline seeds, as many as a night checks, against bands from
the other seeds) and the smallest shift each band catches. The same statistic as the night's bands
(trainguard.checks.experiment_bands: trainguard.core.stats.derive_band), at the per-check rate the night uses.

What it sees: the false alarms of seed noise as the baseline seeds show it. What it cannot see: noise the baseline
seeds did not sample (another machine, another data order than the seeds draw); the groups share seeds, so the
count is not one of independent trials.
"""

from __future__ import annotations

import itertools
import statistics

from ..checks.experiment_bands import check_count
from ..core import stats

#: Above this many groups, leave-k-out checks an evenly spaced sample of them (said in its line).
MAX_GROUPS = 50_000


def _cells(experiment, baseline) -> dict[tuple[str, int, str], dict[int, float]]:
    """(variant, budget, metric) → seed → value, over the completed baseline runs."""
    cells: dict = {}
    for (variant, seed), record in sorted(baseline.items()):
        if record.completed:
            for budget in experiment.budgets:
                for metric in experiment.metrics:
                    cells.setdefault((variant, budget, metric), {})[seed] = record.at(metric, budget, experiment.window)
    return cells


def _holds(rest: list[float], held: list[float], alpha: float, resolution: float = 0.0) -> bool:
    """Is the mean of ``held`` inside the band derived from ``rest`` (derive_band's centre ± t·s·√(1/n + 1/k), s
    floored at the metric's resolution)?"""
    n, k = len(rest), len(held)
    halfwidth = stats.t_critical(alpha, n) * max(statistics.stdev(rest), resolution) * stats.scale(n, k)
    return abs(statistics.fmean(held) - statistics.fmean(rest)) <= halfwidth


def leave_out(experiment, baseline, alpha: float) -> tuple[int, int, list[str]]:
    """(groups checked, groups that failed any band, the first failures described)."""
    cells = _cells(experiment, baseline)
    seeds = sorted({seed for values in cells.values() for seed in values})
    k = len(experiment.check_seeds)
    groups = list(itertools.combinations(seeds, k))
    if len(groups) > MAX_GROUPS:
        groups = groups[::-(-len(groups) // MAX_GROUPS)]
    failed, described = 0, []
    for group in groups:
        held = set(group)
        broken = [f"{v}-{b} {m}" for (v, b, m), values in cells.items()
                  if not _holds([x for s, x in values.items() if s not in held], [values[s] for s in group], alpha,
                                experiment.resolutions.get(m, 0.0))]
        if broken:
            failed += 1
            if len(described) < 5:
                described.append(f"seeds {group}: {', '.join(broken)}")
    return len(groups), failed, described


def section(experiment, baseline, alpha: float, power: float) -> list[str]:
    """Markdown lines: leave-k-out false alarms, then each band's centre, seed std, half-width and MDE."""
    cells = _cells(experiment, baseline)
    n = len({seed for values in cells.values() for seed in values})
    k = len(experiment.check_seeds)
    groups, failed, described = leave_out(experiment, baseline, alpha)
    lines = [f"- {experiment.name}: leave-{k}-out over its {n} baseline seeds, {groups:,} groups, each against bands "
             f"from the other {n - k} seeds ({check_count(experiment)} band checks, α = {alpha:.3g} per check): "
             f"**{failed} failed** a band (expected about {groups * alpha * check_count(experiment):.1f} at that rate "
             f"if the checks were independent)."]
    lines += [f"  - {line}" for line in described]
    for (variant, budget, metric), values in cells.items():
        band = stats.derive_band(list(values.values()), k, alpha, experiment.resolutions.get(metric, 0.0), power)
        lines.append(f"  - {variant}-{budget} {metric}: baseline {band.center:.4g}, seed std {band.std:.3g}, band "
                     f"±{band.halfwidth:.3g}, MDE {band.mde:.3g}")
    return lines
