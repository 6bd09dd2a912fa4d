"""References on any experiment: numbers measured elsewhere (trainguard.core.experiment.Reference: a paper's table, a
course report's) beside the night's mean of the check seeds at the same budget's own epoch (a published table reports
its run's final epoch), and checked where the reference gives a tolerance.

What it sees: a cell further from the published number than the stated tolerance. What it cannot see: whether that
number was measured as your runs are (the reference's note says where it was not); one published run has no spread,
so the tolerance is a choice you state, not one derived from seed noise as a band's is.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..core.experiment import Experiment, Reference
from ..stores.experiment_records import Record
from .experiment_claims import claims, mean_at


@dataclass
class ReferenceVerdict:
    name: str  # "the course report: Baseline1@10 test_acc"
    passed: bool
    message: str


def _name(reference: Reference, variant: str, budget: int, metric: str) -> str:
    return f"{reference.name}: {variant}@{budget} {metric}"


def checked_names(experiment: Experiment) -> list[str]:
    """The names of the checked reference values, as :func:`checked` names its verdicts (pytest's case ids)."""
    return [_name(r, v, b, m) for r in experiment.references for v, b, m, _ in r.cells() if m in r.tolerances]


def seeds_to_train(experiment: Experiment, checked=None) -> tuple[int, ...]:
    """The references' own seeds (:attr:`Reference.seeds`) a night trains beside its check seeds (``checked``: the
    experiment's, unless the night checks others): those that are neither checked nor baseline seeds (a baseline
    seed's run is read from the baseline)."""
    own = {s for r in experiment.references for s in r.seeds}
    checked = experiment.check_seeds if checked is None else checked
    return tuple(sorted(own - set(checked) - set(experiment.baseline_seeds)))


def checked(experiment: Experiment, night: dict[tuple[str, int], Record],
            pool: dict[tuple[str, int], Record] | None = None) -> list[ReferenceVerdict]:
    """One verdict per referenced value whose metric has a tolerance: on the mean of the reference's own seeds' runs
    in ``pool`` (the night's, the baseline's and those trained for it), else of the night's check seeds. Without a
    pool (the self-test's faulted nights), a reference with seeds of its own is not judged."""
    verdicts = []
    for reference in experiment.references:
        if reference.seeds and pool is None:
            continue
        runs = {k: r for k, r in pool.items() if k[1] in reference.seeds} if reference.seeds else night
        seeds = sorted(reference.seeds) if reference.seeds else sorted({seed for _, seed in runs})
        for variant, budget, metric, value in reference.cells():
            if metric in reference.tolerances:
                # the budget's own epoch (window 1): a published table reports its run's final epoch
                verdicts.append(_verdict(reference, variant, budget, metric, value,
                                         mean_at(runs, variant, budget, metric), seeds))
    return verdicts


def _verdict(reference: Reference, variant, budget, metric, value, measured, seeds) -> ReferenceVerdict:
    name, tolerance = _name(reference, variant, budget, metric), reference.tolerances[metric]
    if measured is None:
        return ReferenceVerdict(name, False, f"{name}: {variant} has no completed run of seeds {seeds or '(none)'}")
    held = abs(measured - value) <= tolerance
    return ReferenceVerdict(name, held, f"{name}: this night {measured:.4g} (mean of seeds {seeds}), published "
                                        f"{value:.4g}: |difference| {abs(measured - value):.3g} "
                                        f"{'≤' if held else '>'} tolerance {tolerance:g}"
                                        + (f" ({reference.note})" if reference.note else ""))


def assertions(experiment: Experiment, night: dict[tuple[str, int], Record],
               pool: dict[tuple[str, int], Record] | None = None) -> list:
    """What the night asserts besides its bands: every claim, then every reference value with a tolerance; each has
    ``name``, ``passed`` and ``message``. ``pool``: every run a reference with seeds of its own may read
    (:func:`pool_of`)."""
    return [*claims(experiment, night), *checked(experiment, night, pool)]


def pool_of(night: dict, baseline: dict | None, trained: dict | None) -> dict[tuple[str, int], Record]:
    """Every run a night has to hand: its check seeds', the baseline seeds' (read), the references' own (trained)."""
    return {**(baseline or {}), **(trained or {}), **night}
