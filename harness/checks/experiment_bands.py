"""Outcome bands on any experiment: every declared metric, at every budget, in every variant, the mean of the
night's check seeds against the baseline seeds' values — the same statistic as the built-in profiles' bands
(trainguard.core.stats: a prediction interval for the mean of k new seeds, the family-wise false-alarm rate split
over the checks, the minimum detectable effect beside each).

What it sees: a shift of a metric's mean beyond seed noise. What it cannot see: a shift smaller than the printed
MDE, and anything the experiment does not report as a metric.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from ..core import stats
from ..core.experiment import Cell, Experiment
from ..stores.experiment_records import Record


@dataclass
class BandVerdict:
    variant: str
    budget: int
    metric: str
    better: str  # "higher" or "lower"
    value: float | None  # the night's mean (None: a check seed did not complete)
    band: stats.Band | None
    message: str

    @property
    def passed(self) -> bool:
        return self.band is not None and self.value is not None and self.band.contains(self.value)

    @property
    def case(self) -> str:
        """The case's readable name, as pytest shows it: ``dropout-4-test_acc``."""
        return f"{self.variant}-{self.budget}-{self.metric}"


def check_count(experiment: Experiment) -> int:
    return len(experiment.cells())


def bands(experiment: Experiment, baseline: dict[tuple[str, int], Record], night: dict[tuple[str, int], Record],
          false_alarm_rate: float = 0.01, power: float = 0.9, alpha: float | None = None) -> list[BandVerdict]:
    """One verdict per cell of the experiment (:meth:`Experiment.cells`: variant × budget × declared metric, and the
    start of the curve where declared). ``alpha``: the per-check rate when the caller splits the false-alarm rate over
    more checks than this experiment's (a profile's night); else split over these."""
    cells = experiment.cells()
    alpha = stats.per_check_alpha(false_alarm_rate, len(cells)) if alpha is None else alpha
    reference, checked = _by_variant(baseline, completed_only=True), _by_variant(night)
    return [_verdict(cell, experiment.direction(cell.metric), reference.get(cell.variant, []),
                     checked.get(cell.variant, []), alpha, power, experiment.resolution(cell.metric)) for cell in cells]


def _by_variant(runs: dict[tuple[str, int], Record], completed_only: bool = False) -> dict[str, list[Record]]:
    """variant → its runs in seed order (read once for every cell of the variant)."""
    found: dict[str, list[Record]] = {}
    for (variant, _), record in sorted(runs.items()):
        if record.completed or not completed_only:
            found.setdefault(variant, []).append(record)
    return found


def _verdict(cell: Cell, better: str, reference, checked, alpha, power, resolution: float = 0.0) -> BandVerdict:
    variant, budget, metric = cell.variant, cell.budget, cell.metric
    name = f"{variant}-{budget} {metric}{cell.span}"
    failed = [r for r in checked if not r.completed]
    if failed:
        return BandVerdict(variant, budget, metric, better, None, None,
                           f"{name}: seed {failed[0].seed} did not complete: {failed[0].message}")
    if len(reference) < 2:
        return BandVerdict(variant, budget, metric, better, None, None,
                           f"{name}: fewer than 2 completed baseline seeds: no band (measure the baseline)")
    band = stats.derive_band([cell.value(r) for r in reference], len(checked), alpha, resolution, power)
    value = statistics.fmean(cell.value(r) for r in checked)
    shift = value - band.center
    worse = (shift < 0) == (better == "higher")
    verdict = BandVerdict(variant, budget, metric, better, value, band, "")
    state = "within its band" if verdict.passed else ("REGRESSION (worse than baseline)" if worse
                                                       else "IMPROVEMENT (better than baseline)")
    verdict.message = (f"{name}: {value:.4g} {state}; {band.describe()}; smallest shift caught 90 % of the time "
                       f"(MDE) {band.mde:.3g}")
    return verdict
