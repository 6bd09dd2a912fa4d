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
    """(variant, budget, metric) → seed → value of every cell (:meth:`Experiment.cells`), over the completed baseline
    runs."""
    completed = [(variant, seed, record) for (variant, seed), record in sorted(baseline.items()) if record.completed]
    cells: dict = {}
    for cell in experiment.cells():
        for variant, seed, record in completed:
            if variant == cell.variant:
                cells.setdefault((cell.variant, cell.budget, cell.metric), {})[seed] = cell.value(record)
    return cells


def _holds(rest: list[float], held: list[float], alpha: float, resolution: float = 0.0) -> bool:
    """Is the mean of ``held`` inside the band derived from ``rest`` (derive_band's centre ± t·s·√(1/n + 1/k), s
    floored at the metric's resolution)?"""
    n, k = len(rest), len(held)
    halfwidth = stats.t_critical(alpha, n) * max(statistics.stdev(rest), resolution) * stats.scale(n, k)
    return abs(statistics.fmean(held) - statistics.fmean(rest)) <= halfwidth


def leave_out(experiment, baseline, alpha: float, cells: dict | None = None) -> tuple[int, list[tuple[tuple, list]]]:
    """(groups checked, [(a group that failed, the cells it failed)]); ``cells``: :func:`_cells`, when the caller
    has them already."""
    cells = _cells(experiment, baseline) if cells is None else cells
    seeds = sorted({seed for values in cells.values() for seed in values})
    k = len(experiment.check_seeds)
    groups = list(itertools.combinations(seeds, k))
    if len(groups) > MAX_GROUPS:
        groups = groups[::-(-len(groups) // MAX_GROUPS)]
    failed = []
    for group in groups:
        held = set(group)
        broken = [(v, b, m) for (v, b, m), values in cells.items()
                  if not _holds([x for s, x in values.items() if s not in held], [values[s] for s in group], alpha,
                                experiment.resolution(m))]
        if broken:
            failed.append((group, broken))
    return len(groups), failed


def tails(experiment, baseline, cells: dict | None = None) -> dict[tuple[str, int, str], tuple[int, stats.Tail]]:
    """(variant, budget, metric) → (the far seed, its tail) for every cell whose baseline seeds hold one far from the
    others (trainguard.core.stats.tail_screen, as the models' calibration screens theirs)."""
    found = {}
    for cell, values in (_cells(experiment, baseline) if cells is None else cells).items():
        tail = stats.tail_screen(list(values.values()), experiment.resolution(cell[2]))
        if tail is not None:
            found[cell] = (list(values)[tail.index], tail)
    return found


def rerun_failures(experiment, baseline, night, alpha: float) -> list[str]:
    """The bands (from every baseline seed) that real runs of seeds outside the baseline (a night's check seeds, from
    the result cache) fail."""
    from ..checks.experiment_bands import bands

    return [v.message for v in bands(experiment, baseline, night, alpha=alpha) if not v.passed]


def section(experiment, baseline, alpha: float, power: float, night=None) -> list[str]:
    """Markdown lines: leave-k-out false alarms and the far seeds that explain them, real reruns (``night``: the check
    seeds' stored runs, when there are), then each band's centre, seed std, half-width and MDE."""
    cells = _cells(experiment, baseline)
    n = len({seed for values in cells.values() for seed in values})
    k = len(experiment.check_seeds)
    groups, failed = leave_out(experiment, baseline, alpha, cells)
    lines = [f"- {experiment.name}: leave-{k}-out over its {n} baseline seeds, {groups:,} groups, each against bands "
             f"from the other {n - k} seeds ({check_count(experiment)} band checks, α = {alpha:.3g} per check): "
             f"**{len(failed)} failed** a band (expected about {groups * alpha * check_count(experiment):.1f} at that "
             f"rate if the checks were independent)."]
    lines += [f"  - seeds {group}: {', '.join(f'{v}-{b} {m}' for v, b, m in broken)}" for group, broken in failed[:5]]
    far = tails(experiment, baseline, cells)
    explained = [g for g, broken in failed if all(c in far and far[c][0] in g for c in broken)]
    lines.append(f"  - Tail screen: {len(far)} band(s) whose baseline seeds hold one far from the others; "
                 f"{len(explained)} of the {len(failed)} failed groups failed only bands whose far seed they held out.")
    lines += [f"    - {v}-{b} {m}: {tail.describe(seed, n)}" for (v, b, m), (seed, tail) in far.items()]
    if night is not None:
        broken = rerun_failures(experiment, baseline, night, alpha)
        lines.append(f"  - Real reruns with seeds outside the baseline (the check seeds "
                     f"{sorted({s for _, s in night})}, from the result cache): {len(broken)} of "
                     f"{check_count(experiment)} band(s) failed" + (": " + "; ".join(broken[:3]) if broken else "."))
    for (variant, budget, metric), values in cells.items():
        band = stats.derive_band(list(values.values()), k, alpha, experiment.resolution(metric), power)
        lines.append(f"  - {variant}-{budget} {metric}: baseline {band.center:.4g}, seed std {band.std:.3g}, band "
                     f"±{band.halfwidth:.3g}, MDE {band.mde:.3g}")
    return lines
