"""Claims on any experiment: the conclusions it asserts every night ("dropout shrinks the gap", "more epochs help",
one variant ahead of another), declared with the experiment (trainguard.core.experiment.Claim), checked on the mean
of the night's check seeds by the metric's declared direction — as the built-in profiles' conclusions are.

What it sees: an order that flipped. What it cannot see: an order that holds by less than seed noise (a mean of
few seeds can flip by chance; the bands say how much noise a cell has)."""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from ..core.experiment import Claim, Experiment
from ..stores.experiment_records import Record


@dataclass
class ClaimVerdict:
    claim: Claim
    passed: bool
    message: str

    @property
    def name(self) -> str:
        return self.claim.name


def claims(experiment: Experiment, night: dict[tuple[str, int], Record]) -> list[ClaimVerdict]:
    return [_verdict(experiment, claim, night) for claim in experiment.claims]


def mean_at(night: dict[tuple[str, int], Record], variant: str, budget: int, metric: str,
            window: int = 1) -> float | None:
    """The check seeds' mean of ``metric`` at ``budget`` (over its last ``window`` epochs); None unless every seed of
    the variant completed."""
    records = [r for (v, _), r in sorted(night.items()) if v == variant]
    if not records or not all(r.completed for r in records):
        return None
    return statistics.fmean(r.at(metric, budget, window) for r in records)


def _verdict(experiment: Experiment, claim: Claim, night: dict[tuple[str, int], Record]) -> ClaimVerdict:
    (better, b1), (than, b2) = claim.cells()
    means = []
    for variant, budget in ((better, b1), (than, b2)):
        mean = mean_at(night, variant, budget, claim.metric, experiment.window)
        if mean is None:
            return ClaimVerdict(claim, False, f"{claim.name}: {variant}@{budget} has no completed check seed")
        means.append(mean)
    higher = experiment.metrics[claim.metric] == "higher"
    holds = means[0] > means[1] if higher else means[0] < means[1]
    seeds = sorted({seed for _, seed in night})
    return ClaimVerdict(claim, holds, f"{claim.name}: {claim.metric} {claim.better} {means[0]:.4g} "
                                      f"{'>' if higher else '<'} {claim.than} {means[1]:.4g} (mean of seeds {seeds}, "
                                      f"{claim.metric} {experiment.metrics[claim.metric]} is better): "
                                      + ("holds" if holds else "DOES NOT HOLD"))
