"""References on any experiment: numbers measured elsewhere (trainguard.core.experiment.Reference: a paper's table, a
course report's) beside the night's mean of the check seeds at the same budget's own epoch (a published table reports
its run's final epoch), and checked where the reference gives a tolerance.

What it sees: a cell further from the published number than the stated tolerance. What it cannot see: whether that
number was measured as your runs are (the reference's note says where it was not); one published run has no spread,
so the tolerance is a choice you state, not one derived from seed noise as a band's is.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from ..core.experiment import Experiment, Reference
from ..stores.experiment_records import Record


@dataclass
class ReferenceVerdict:
    name: str  # "the course report: Baseline1@10 test_acc"
    passed: bool
    message: str


def mean_at(night: dict[tuple[str, int], Record], variant: str, budget: int, metric: str) -> float | None:
    """The check seeds' mean of ``metric`` after epoch ``budget``; None unless every seed of the variant completed."""
    records = [r for (v, _), r in sorted(night.items()) if v == variant]
    if not records or not all(r.completed for r in records):
        return None
    return statistics.fmean(r.at(metric, budget) for r in records)


def checked_names(experiment: Experiment) -> list[str]:
    """The names of the checked reference values, as :func:`checked` names its verdicts (pytest's case ids)."""
    return [f"{r.name}: {v}@{b} {m}" for r in experiment.references for v, b, m, _ in r.cells() if m in r.tolerances]


def checked(experiment: Experiment, night: dict[tuple[str, int], Record]) -> list[ReferenceVerdict]:
    """One verdict per referenced value whose metric has a tolerance."""
    seeds = sorted({seed for _, seed in night})
    verdicts = []
    for reference in experiment.references:
        for variant, budget, metric, value in reference.cells():
            if metric in reference.tolerances:
                verdicts.append(_verdict(reference, variant, budget, metric, value, mean_at(night, variant, budget,
                                                                                            metric), seeds))
    return verdicts


def _verdict(reference: Reference, variant, budget, metric, value, measured, seeds) -> ReferenceVerdict:
    name, tolerance = f"{reference.name}: {variant}@{budget} {metric}", reference.tolerances[metric]
    if measured is None:
        return ReferenceVerdict(name, False, f"{name}: {variant} has no completed check seed")
    held = abs(measured - value) <= tolerance
    return ReferenceVerdict(name, held, f"{name}: this night {measured:.4g} (mean of seeds {seeds}), published "
                                        f"{value:.4g}: |difference| {abs(measured - value):.3g} "
                                        f"{'≤' if held else '>'} tolerance {tolerance:g}"
                                        + (f" ({reference.note})" if reference.note else ""))
