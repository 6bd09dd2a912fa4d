"""The golden replay on any experiment: a short run (the experiment's ``replay_budget`` epochs) traced step by step
— every scalar the function reports per step, every metric per epoch, the fingerprints of its declared inputs and of
the batches its step loop received — rerun and compared with its golden: *identical*, *numerics differ* (another
thread count, within the rounding noise measured when the golden was written) or *changed at step N* (the first step
and quantity that moved, both values).

The noise envelope comes from a perturbation that applies to any code: the same run at another thread count
(sums split differently across threads round differently). A golden is written only from a function that is
deterministic at a fixed thread count: it is run twice, and a difference is refused, naming the step.

What it sees: any change that moves a reported step scalar, an epoch metric or a fingerprinted input within the
golden's epochs. What it cannot see: a change that acts only past them — later epochs, data the short run does
not reach; the bands (trainguard.checks.experiment_bands) are the instrument for those.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..core.experiment import Experiment
from ..runs.experiment_runs import train
from ..stores.experiment_records import ExperimentStore, GoldenRun, Record
from ..stores.golden import noise_envelope, relative, series_divergence

IDENTICAL, NOISE, CHANGED, MISSING, FAILED = "identical", "numerics differ", "changed", "no golden", "failed"


@dataclass
class ReplayOutcome:
    variant: str
    status: str
    message: str
    step: int | None = None  # the first step (1-based) whose values moved, when one did
    series: str | None = None

    @property
    def passed(self) -> bool:
        return self.status in (IDENTICAL, NOISE)


def other_threads(threads: int) -> int:
    """The thread count of the perturbation: another split of the same sums."""
    return 2 if threads == 1 else 1


def write_golden(experiment: Experiment, variant: str, store: ExperimentStore, threads: int = 1,
                 device: str = "cpu", data_dir=None) -> tuple[GoldenRun | None, str]:
    """Trace the short run twice (it must be identical: deterministic) and once perturbed (another thread count);
    store the golden. Returns (the golden or None, what was done or why not)."""
    epochs = experiment.replay_budget
    first = train(experiment, variant, 0, epochs, threads, device, data_dir)
    if not first.completed:
        return None, f"{experiment.name} {variant}: the golden run failed: {first.message}"
    again = train(experiment, variant, 0, epochs, threads, device, data_dir)
    moved = first_difference(first, again)
    if moved is not None:
        step, series, a, b = moved
        return None, (f"{experiment.name} {variant}: not deterministic at {threads} thread(s): the same run twice "
                      f"differs at {_where(step, series)} ({a!r} then {b!r}); seed every random source from run.seed "
                      f"and pin the thread count to run.threads; no golden written")
    perturbed = train(experiment, variant, 0, epochs, other_threads(threads), device, data_dir)
    envelope = {name: noise_envelope([series_divergence(values, perturbed.steps.get(name, []))], len(values))
                for name, values in first.steps.items()}
    golden = GoldenRun(first, envelope, [f"{other_threads(threads)} thread(s) instead of {threads}"])
    path = store.put_golden(experiment.name, variant, golden)
    return golden, f"{experiment.name} {variant}: golden of {first_steps(first)} steps written to {path}"


def replay(experiment: Experiment, variant: str, store: ExperimentStore, threads: int | None = None,
           device: str = "cpu", data_dir=None) -> ReplayOutcome:
    """Rerun the variant's golden run (at its own thread count unless ``threads`` says otherwise) and compare."""
    golden = store.golden(experiment.name, variant)
    if golden is None:
        return ReplayOutcome(variant, MISSING, f"{experiment.name} {variant}: no golden at "
                                               f"{store.golden_path(experiment.name, variant)}; write it with "
                                               f"`trainguard guard TARGET replay --update`")
    threads = golden.record.threads if threads is None else threads
    now = train(experiment, variant, 0, golden.record.epochs_asked, threads, device, data_dir)
    return compare(experiment.name, golden, now)


def compare(name: str, golden: GoldenRun, now: Record) -> ReplayOutcome:
    variant, was = now.variant, golden.record
    label = f"{name} {variant}"
    if not now.completed:
        return ReplayOutcome(variant, FAILED, f"{label}: the replay failed: {now.message}")
    inputs = sorted(k for k in set(was.inputs) | set(now.inputs) if was.inputs.get(k) != now.inputs.get(k))
    inputs += sorted(f"batches of {k}" for k in set(was.data_path) | set(now.data_path)
                     if was.data_path.get(k) != now.data_path.get(k))
    data_note = f"; its inputs changed ({', '.join(inputs)})" if inputs else ""
    moved = first_difference(was, now)
    if moved is None and not inputs:
        return ReplayOutcome(variant, IDENTICAL, f"{label}: identical to the golden run ({first_steps(now)} steps and "
                                                 f"every epoch metric bit for bit)")
    if moved is None:
        return ReplayOutcome(variant, CHANGED, f"{label}: changed{data_note}, though every reported value is the same")
    step, series, a, b = moved
    if now.threads != was.threads and step is not None and _within_noise(golden, now):
        return ReplayOutcome(variant, NOISE, f"{label}: numerics differ ({now.threads} thread(s), the golden "
                                             f"{was.threads}); within the measured rounding noise at every step{data_note}",
                             step, series)
    noise = golden.envelope.get(series, [])
    ratio = (f"; {relative(a, b) / noise[step - 1]:.3g}× the rounding noise measured there" if step is not None
             and series in golden.envelope and step - 1 < len(noise) else "")
    return ReplayOutcome(variant, CHANGED, f"{label}: changed at {_where(step, series)}: golden {a!r}, now {b!r}"
                                           f"{ratio}{data_note}; if intended, write the golden again with "
                                           f"`trainguard guard TARGET replay --update`", step, series)


def first_steps(record: Record) -> int:
    return max((len(v) for v in record.steps.values()), default=0)


def first_difference(a: Record, b: Record) -> tuple[int | None, str, float, float] | None:
    """The first value that differs: (step, series, a's, b's) in the order training produced them (a step's scalars
    in name order; then the epoch metrics, step None); None if every value is the same, bit for bit."""
    for index in range(max(first_steps(a), first_steps(b))):
        for series in sorted(set(a.steps) | set(b.steps)):
            x, y = _at(a.steps, series, index), _at(b.steps, series, index)
            if not _same(x, y):
                return index + 1, series, x, y
    for series in sorted(set(a.epochs) | set(b.epochs)):
        for index in range(max(len(a.epochs.get(series, [])), len(b.epochs.get(series, [])))):
            x, y = _at(a.epochs, series, index), _at(b.epochs, series, index)
            if not _same(x, y):
                return None, f"{series} after epoch {index + 1}", x, y
    return None


def _within_noise(golden: GoldenRun, now: Record) -> bool:
    return all(relative(v, _at(now.steps, name, i)) <= golden.envelope[name][i]
               for name, values in golden.record.steps.items() for i, v in enumerate(values))


def _at(series: dict, name: str, index: int) -> float:
    values = series.get(name, [])
    return values[index] if index < len(values) else math.nan


def _same(x: float, y: float) -> bool:
    return x == y or (math.isnan(x) and math.isnan(y))


def _where(step: int | None, series: str) -> str:
    return f"step {step} ({series})" if step is not None else series
