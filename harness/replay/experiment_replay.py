"""The golden replay on any experiment: a short run (the experiment's ``replay_budget`` epochs) traced step by step
— every scalar the function reports per step, every metric per epoch, the fingerprints of its declared inputs and of
the batches its step loop received — rerun and compared with its golden: *identical*, *numerics differ* (another
thread count, within the rounding noise measured when the golden was written) or *changed at step N* (the first step
and quantity that moved, both values).

The noise envelope comes from perturbations that apply to any code — the same run at another thread count (sums
split differently across threads round differently) and, on x86 with the experiment's target known, in a child
process at a lower instruction set (ATen's, oneDNN's and MKL's kernels chosen for SSE4 instead of AVX) — plus any
the experiment opts into (``perturbations``: settings its function honours with a change of rounding only). A
golden is written only from a function that is deterministic at a fixed thread count: it is run twice, and a
difference is refused, naming the step.

What it sees: any change that moves a reported step scalar, an epoch metric or a fingerprinted input within the
golden's epochs; where the experiment declares its ``data`` (the batches its step loop receives), any change to
them at full scale — every batch of every epoch of the largest budget, iterated without the model. What it cannot
see: a change that acts past the golden's epochs anywhere else (the model, the loss, the schedule in later epochs);
the bands (trainguard.checks.experiment_bands) are the instrument for those.
"""

from __future__ import annotations

import math
import platform
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


def golden_run(experiment: Experiment, variant: str, epochs: int, threads: int = 1, device: str = "cpu",
               data_dir=None, overrides=None) -> Record:
    """One run at the golden's scale: seed 0, the experiment's ``replay_settings`` merged into the variant's settings
    (then ``overrides``: a perturbation's, a fault's). Every golden, replay and perturbed run is one of these."""
    return train(experiment, variant, 0, epochs, threads, device, data_dir,
                 overrides={**experiment.replay_settings, **(overrides or {})})


def write_golden(experiment: Experiment, variant: str, store: ExperimentStore, threads: int = 1,
                 device: str = "cpu", data_dir=None, target: str | None = None) -> tuple[GoldenRun | None, str]:
    """Trace the short run twice (it must be identical: deterministic) and once per perturbation (:func:`perturbed`);
    store the golden. ``target`` (FILE.py:NAME): how a child process loads the experiment, for the lower-ISA run.
    Returns (the golden or None, what was done or why not)."""
    epochs = experiment.replay_budget
    first = golden_run(experiment, variant, epochs, threads, device, data_dir)
    if not first.completed:
        return None, f"{experiment.name} {variant}: the golden run failed: {first.message}"
    again = golden_run(experiment, variant, epochs, threads, device, data_dir)
    moved = first_difference(first, again)
    if moved is not None:
        step, series, a, b = moved
        return None, (f"{experiment.name} {variant}: not deterministic at {threads} thread(s): the same run twice "
                      f"differs at {_where(step, series)} ({a!r} then {b!r}); seed every random source from run.seed "
                      f"and pin the thread count to run.threads; no golden written")
    runs = perturbed(experiment, variant, epochs, threads, device, data_dir, target)
    failed = [what for what, record in runs.items() if not record.completed]
    if failed:
        return None, (f"{experiment.name} {variant}: the perturbed run ({failed[0]}) failed: "
                      f"{runs[failed[0]].message}; no golden written")
    envelope = {name: noise_envelope([series_divergence(values, r.steps.get(name, [])) for r in runs.values()],
                                     len(values))
                for name, values in first.steps.items()}
    path_now = full_data_path(experiment, variant, threads, device, data_dir)
    golden = GoldenRun(first, envelope, list(runs), path_now, machine())
    path = store.put_golden(experiment.name, variant, golden)
    scale = (f", and its data path at full scale ({path_now['batches']} batches over {path_now['epochs']} epochs)"
             if path_now else "")
    return golden, (f"{experiment.name} {variant}: golden of {first_steps(first)} steps{scale} written to {path}; "
                    f"noise envelope from {'; '.join(runs)}")


def machine() -> dict:
    """The machine a golden is written or replayed on, as far as rounding goes: its CPU and widest vector ISA."""
    from ..core.environment import cpu_name, host_vector_isa

    return {"cpu": cpu_name(), "isa": host_vector_isa()}


def perturbed(experiment: Experiment, variant: str, epochs: int, threads: int, device: str, data_dir,
              target: str | None) -> dict[str, Record]:
    """The golden's short run once per perturbation that should move only rounding: described → its record."""
    runs = {f"{other_threads(threads)} thread(s) instead of {threads}":
            golden_run(experiment, variant, epochs, other_threads(threads), device, data_dir)}
    for name, settings in experiment.perturbations.items():
        runs[f"{name} (the experiment's own: {dict(settings)})"] = golden_run(experiment, variant, epochs, threads,
                                                                              device, data_dir, overrides=settings)
    if target is not None and platform.machine().lower() in ("x86_64", "amd64"):
        runs["lower instruction set: " + " ".join(f"{k}={v}" for k, v in LOW_ISA.items())] = _low_isa(
            experiment, target, variant, epochs, threads, device, data_dir)
    return runs


#: The environment of the lower-ISA run (the same as the built-in golden runs'): ATen, oneDNN and MKL pick SSE4 kernels.
LOW_ISA = {"ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "SSE41", "MKL_ENABLE_INSTRUCTIONS": "SSE4_2"}


def _low_isa(experiment, target, variant, epochs, threads, device, data_dir) -> Record:
    """The short run in a child process at a lower instruction set (the ISA is chosen when a library loads)."""
    import json
    import os
    import sys
    import tempfile
    from pathlib import Path

    from ..core.watchdog import run_child

    with tempfile.TemporaryDirectory(prefix="trainguard-isa-") as tmp:
        out = Path(tmp) / "record.json"
        command = [sys.executable, "-m", "trainguard.replay.experiment_child", target, variant, str(epochs),
                   str(threads), device, str(data_dir or ""), str(out)]
        done = run_child(command, f"the lower-ISA golden run of {experiment.name} {variant}",
                         env={**os.environ, **LOW_ISA})
        if done.returncode != 0 or not out.exists():
            return Record(experiment.name, variant, 0, epochs, threads, experiment.source_fingerprint(),
                          status="error", message=f"the child exited {done.returncode}: {done.stderr[-1500:]}")
        return Record.from_json(json.loads(out.read_text()), out)


def full_data_path(experiment: Experiment, variant: str, threads: int = 1, device: str = "cpu",
                   data_dir=None) -> dict:
    """The experiment's declared data path (``data``) at full scale, without the model: the batches of every epoch
    of its largest budget, fingerprinted as the step loop would receive them (seed 0, the golden's). {} when the
    experiment declares none."""
    from ..core.experiment import Run

    if experiment.data is None:
        return {}
    epochs = max(experiment.budgets)
    run = Run(experiment, variant, 0, epochs, device=device, threads=threads, data_dir=data_dir)
    loader, batches = experiment.data(run), 0
    for _ in range(epochs):
        for _batch in run.batches(loader, "full"):
            batches += 1
    return {"epochs": epochs, "batches": batches, "sha256": run.data_path_fingerprints()["full"]}


def replay(experiment: Experiment, variant: str, store: ExperimentStore, threads: int | None = None,
           device: str = "cpu", data_dir=None) -> ReplayOutcome:
    """Rerun the variant's golden run (at its own thread count unless ``threads`` says otherwise) and compare."""
    golden = store.golden(experiment.name, variant)
    if golden is None:
        return ReplayOutcome(variant, MISSING, f"{experiment.name} {variant}: no golden at "
                                               f"{store.golden_path(experiment.name, variant)}; write it with "
                                               f"`trainguard guard TARGET replay --update`")
    threads = golden.record.threads if threads is None else threads
    now = golden_run(experiment, variant, golden.record.epochs_asked, threads, device, data_dir)
    outcome = compare(experiment.name, golden, now)
    if outcome.passed and golden.data_path:
        return _data_path_outcome(experiment, variant, golden, outcome, threads, device, data_dir)
    return outcome


def _data_path_outcome(experiment, variant, golden, outcome, threads, device, data_dir) -> ReplayOutcome:
    """The short run matched: now the data path at full scale, against the golden's."""
    was, now = golden.data_path, full_data_path(experiment, variant, threads, device, data_dir)
    if now == was:
        outcome.message += f"; its data path at full scale too ({now['batches']} batches over {now['epochs']} epochs)"
        return outcome
    said = (f"{now['batches']} batches over {now['epochs']} epochs, the golden's {was['batches']} over {was['epochs']}"
            if now else "the experiment declares no data any more")
    return ReplayOutcome(variant, CHANGED, f"{experiment.name} {variant}: its data path changed at full scale ({said}; "
                                           f"the golden run's own {golden.record.epochs_asked} epoch(s) are unchanged, "
                                           f"so the change acts past them); if intended, write the golden again with "
                                           f"`trainguard guard TARGET replay --update`", None, "data path")


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
    elsewhere = _elsewhere(golden, now)
    # declared inputs are compared exactly (their bytes), on every machine: a changed one is a change, never noise
    if elsewhere and step is not None and not inputs and _within_noise(golden, now):
        return ReplayOutcome(variant, NOISE, f"{label}: numerics differ ({elsewhere}); within the measured rounding "
                                             f"noise at every step{data_note}", step, series)
    noise = golden.envelope.get(series, [])
    ratio = (f"; {relative(a, b) / noise[step - 1]:.3g}× the rounding noise measured there" if step is not None
             and series in golden.envelope and step - 1 < len(noise) else "")
    return ReplayOutcome(variant, CHANGED, f"{label}: changed at {_where(step, series)}: golden {a!r}, now {b!r}"
                                           f"{ratio}{data_note}; if intended, write the golden again with "
                                           f"`trainguard guard TARGET replay --update`", step, series)


def _elsewhere(golden: GoldenRun, now: Record) -> str:
    """How this replay's arithmetic differs from the golden's, if it does: another thread count, another CPU or
    vector ISA. Only then may a difference within the noise envelope pass as rounding; on the golden's own machine
    and thread count the replay must be identical, bit for bit."""
    said = [f"{now.threads} thread(s), the golden {golden.record.threads}"] if now.threads != golden.record.threads else []
    here = machine()
    said += [f"{key} {here[key]}, the golden's {golden.machine[key]}" for key in ("isa", "cpu")
             if golden.machine.get(key) not in (None, here[key])]
    return "; ".join(said)


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
