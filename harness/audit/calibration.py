"""Measure the checks as instruments, from stored per-seed runs only (nothing is trained here).

- False alarms: every group of k baseline seeds is held out in turn and checked, as a night
  would check its k seeds, against bands derived from the remaining seeds (leave-k-out);
  runs of seeds outside the baseline (a run log: real reruns) are checked against the whole
  baseline. A "night" fails if any of its band checks fails.
- Minimum detectable effect: per model, budget and metric, for the profile's own night.
- Noise: the seed-to-seed spread of each candidate statistic (final epoch vs. the window mean,
  test split vs. validation split), the reason the checks read the statistics they read.

``trainguard baselines calibrate --profile ci [--from-log RUNLOG]`` prints it as markdown.
"""

from __future__ import annotations

import itertools
import statistics
from dataclasses import dataclass

import pandas as pd

from ..core import stats
from ..stores.baselines import BaselineTable
from ..core.spec import METRIC_LABELS, BandCheck


@dataclass(frozen=True)
class BandFailure:
    """One band check a night failed: which, what it measured, and the band it missed."""
    check: BandCheck
    measured: float
    band: stats.Band

    def __str__(self) -> str:
        return (f"{self.check.model}-{self.check.budget} {self.check.metric} "
                f"({self.measured:.4g} vs {self.band.low:.4g}…{self.band.high:.4g})")


@dataclass
class NightResult:
    seeds: tuple[int, ...]
    failures: list[BandFailure]
    kind: str  # "held out of the baseline" | "rerun"

    def described(self) -> str:
        return "; ".join(map(str, self.failures))


def night_failures(table: BaselineTable, night: dict[tuple[str, int], list[dict]], profile, alpha: float,
                   seeds: tuple[int, ...]) -> list[BandFailure]:
    """Band checks of the models' cells that fail for the mean of ``seeds`` in ``night`` (curves per (model, seed))."""
    from ..checks.baseline import derive, statistic

    failures = []
    for check in profile.band_checks():  # the same list, band and statistic the night's checks use
        band = derive(table, check, len(seeds), alpha)
        measured = statistic([night[(check.model, s)] for s in seeds], check)
        if not band.contains(measured):
            failures.append(BandFailure(check, measured, band))
    return failures


def leave_out_nights(table: BaselineTable, profile, alpha: float, k: int) -> list[NightResult]:
    """Every group of ``k`` baseline seeds, checked against the bands of the other seeds."""
    results = []
    for group in itertools.combinations(table.seeds, k):
        rest = table.without(group)
        results.append(NightResult(group, night_failures(rest, table.curves, profile, alpha, group),
                                   "held out of the baseline"))
    return results


def rerun_nights(table: BaselineTable, runs: dict[tuple[str, int], list[dict]], profile, alpha: float,
                 k: int) -> list[NightResult]:
    """Consecutive groups of ``k`` seeds among real runs outside the baseline, against the whole baseline."""
    seeds = sorted({s for (m, s) in runs if all((model, s) in runs for model in profile.models)} - set(table.seeds))
    groups = [tuple(seeds[i:i + k]) for i in range(0, len(seeds) - k + 1, k)]
    return [NightResult(g, night_failures(table, runs, profile, alpha, g), "rerun") for g in groups]


def mde_table(table: BaselineTable, profile, alpha: float, k: int) -> pd.DataFrame:
    window, records = profile.statistics.window, []
    for model in profile.models:
        for budget in profile.budgets:
            row = {"model": model, "epochs": str(budget)}
            for metric in profile.checked_metrics:
                band = stats.derive_band(table.values(model, budget, metric, window), k, alpha,
                                         table.resolution(metric), profile.statistics.power)
                row[f"{METRIC_LABELS[metric]} std"] = f"{band.std:.4g}"
                row[f"{METRIC_LABELS[metric]} ±band"] = f"{band.halfwidth:.4g}"
                row[f"{METRIC_LABELS[metric]} MDE"] = f"{band.mde:.4g}"
            records.append(row)
    return pd.DataFrame.from_records(records)


def noise_table(table: BaselineTable, profile) -> pd.DataFrame:
    """Seed-to-seed std of accuracy statistics: one epoch vs the window, test vs validation split."""
    window, records = profile.statistics.window, []
    metrics = [m for m in ("test_acc", "val_acc") if table.has(m)]
    for model in profile.models:
        for budget in profile.budgets:
            row = {"model": model, "epochs": str(budget)}
            for metric in metrics:
                # "final epoch": the budget's own (one column for every budget, not one per budget with gaps)
                row[f"{METRIC_LABELS[metric]}, final epoch"] = f"{statistics.stdev(table.values(model, budget, metric)):.3f}"
                row[f"{METRIC_LABELS[metric]}, mean of last {window}"] = \
                    f"{statistics.stdev(table.values(model, budget, metric, window)):.3f}"
            records.append(row)
    return pd.DataFrame.from_records(records)


def tail_lines(table: BaselineTable, profile, nights: list[NightResult]) -> list[str]:
    """The band checks whose baseline seeds hold one far from the others (stats.tail_screen), and how many
    leave-out failures are such a check failing a night that held its far seed out of the bands."""
    from ..checks.baseline import describe_tail, tails

    found = tails(table, profile)
    if not found:
        return [f"- Tails: no band check's baseline seeds hold one far from the others (screen at p < "
                f"{stats.TAIL_SCREEN_LEVEL:g} per check, docs/statistics.md)."]
    far_seed = {check: seed for check, seed, _ in found}

    def tail_only(night: NightResult) -> bool:  # every failure is a flagged check whose far seed this night held
        return all(far_seed.get(f.check) in night.seeds for f in night.failures)

    failed = [r for r in nights if r.failures]
    explained = [r for r in failed if tail_only(r)]
    lines = [f"- Tails (screen at p < {stats.TAIL_SCREEN_LEVEL:g} per check, docs/statistics.md): {len(found)} of "
             f"{len(profile.band_checks())} band checks hold a seed far from the others (about "
             f"{stats.TAIL_SCREEN_LEVEL * len(profile.band_checks()):.2f} expected if every cell were normal). This "
             f"baseline's bands are derived from all {len(table.seeds)} seeds, so they hold these seeds:"]
    lines += [f"  - {describe_tail(check, seed, tail, len(table.seeds))}" for check, seed, tail in found]
    lines.append(f"  - Of the {len(failed)} failed leave-out nights, {len(explained)} failed only where they held "
                 f"such a check's far seed out of its band (a band that never saw it); the other "
                 f"{len(nights) - len(explained)} nights: {len(failed) - len(explained)} failed.")
    return lines


def render_experiments(profile, alpha: float, band_checks: int, experiments) -> str:
    """The calibration of a profile of experiments alone: its rate and split, then each experiment's lines."""
    return "\n".join([f"# Calibration of profile {profile.name}", "",
                      f"Family-wise false-alarm rate {profile.statistics.false_alarm_rate:.0%} over {band_checks} band "
                      f"checks → α = {alpha:.3g} per check (the profile trains no models: its experiments' checks).", "",
                      *experiments, ""])


def render(table: BaselineTable, profile, alpha: float, band_checks: int, reruns=None, experiments=()) -> str:
    """``experiments``: the declared experiments' lines (trainguard.audit.experiment_calibration.section)."""
    k = len(profile.check_seeds)
    n = len(table.seeds)
    lines = [f"# Calibration of profile {profile.name}", "",
             f"Baseline {table.path}: seeds {list(table.seeds)} (n = {n}), measured {table.meta.get('date', '?')} "
             f"on {table.meta.get('device_name', '?')} (commit {table.meta.get('commit', '?')}). A night checks "
             f"k = {k} seeds; family-wise false-alarm rate {profile.statistics.false_alarm_rate:.0%} over "
             f"{band_checks} band checks → α = {alpha:.3g} per check.", ""]
    nights = leave_out_nights(table, profile, alpha, k)
    rerun = rerun_nights(table, reruns, profile, alpha, k) if reruns else []
    failed = [r for r in nights if r.failures]
    lines += ["## False alarms", "",
              f"- Leave-{k}-out: each of the C({n}, {k}) = {len(nights)} groups of {k} baseline seeds checked against "
              f"bands from the other {n - k} seeds (the models' band checks): **{len(failed)} of {len(nights)} nights failed** "
              f"(expected at most {profile.statistics.false_alarm_rate * len(nights):.2f} at the stated rate; the groups "
              f"share seeds, so they are not independent trials)."]
    lines += [f"  - seeds {r.seeds}: {r.described()}" for r in failed]
    lines += tail_lines(table, profile, nights)
    if reruns is not None:
        rfailed = [r for r in rerun if r.failures]
        lines.append(f"- Real reruns with seeds outside the baseline: {len(rerun)} night(s) "
                     f"({', '.join(str(r.seeds) for r in rerun) or 'none'}) → {len(rfailed)} failed.")
        lines += [f"  - seeds {r.seeds}: {r.described()}" for r in rfailed]
    lines += list(experiments)
    lines += ["", f"## Minimum detectable effect (n = {n}, k = {k}, α = {alpha:.3g}, power "
                  f"{profile.statistics.power:.0%})", "",
              "Per cell: the seed std s, the band's half-width t·s·√(1/n + 1/k), and the smallest true shift "
              "caught with the stated power. Accuracies in points, losses in nats; each value is the mean of the "
              f"last {profile.statistics.window} epochs up to the budget.", "",
              mde_table(table, profile, alpha, k).to_markdown(index=False, disable_numparse=True), "",
              "## Noise of the candidate statistics (seed-to-seed std, accuracy points)", "",
              noise_table(table, profile).to_markdown(index=False, disable_numparse=True), ""]
    return "\n".join(lines)
