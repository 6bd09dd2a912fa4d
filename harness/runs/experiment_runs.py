"""Runs of an :class:`~trainguard.core.experiment.Experiment`: one code path trains a run, whoever asks (the
baseline, a night's check seeds, the replay's golden runs). A run trains once, to the largest budget; every
smaller budget is its snapshot. Results are cached by the experiment's source (changed code trains again).

The training function is the user's: what it raises is that run's result (status ``error``, the exception and
where it was raised), never a traceback that ends the night; a run that reports fewer epochs than asked is an
error too, saying how many it reported.
"""

from __future__ import annotations

import contextlib
import sys
import time
import traceback
from pathlib import Path

from ..core.errors import ConfigError
from ..core.experiment import Experiment, OutOfTime, Run
from ..core.storage import WaitTimeout
from ..stores.experiment_records import ExperimentStore, Record


def train(experiment: Experiment, variant: str, seed: int, epochs: int, threads: int = 1, device: str = "cpu",
          data_dir: Path | None = None, deadline: float | None = None, overrides=None, on_epoch=None,
          precision: str = "fp32", compile: bool = False) -> Record:
    """Call the experiment's training function for one run; what it reported, as a :class:`Record`. ``overrides``:
    settings merged into the variant's (a replay perturbation); ``on_epoch``: called with the run after each epoch
    it reports (a progress line); ``precision`` / ``compile``: the arithmetic asked of it (a ConfigError where the
    experiment does not declare it honours it)."""
    run = Run(experiment, variant, seed, epochs, device=device, threads=threads, data_dir=data_dir, deadline=deadline,
              overrides=overrides, on_epoch=on_epoch, precision=precision, compile=compile)
    started = time.perf_counter()
    failure = _called(experiment.train, run)
    run.reported()
    return _record_of(experiment, run, threads, failure, time.perf_counter() - started)


def _called(function, argument) -> tuple[str, str] | None:
    """Call the user's function; None, or how it failed: (status, message)."""
    try:
        with _thread_count_kept():
            function(argument)
    except (OutOfTime, WaitTimeout) as exc:  # the night's limit (--max-minutes), or a child process or lock past
        return "timeout", str(exc)           # its bound (trainguard.core.watchdog): kept, never cached
    except ConfigError as exc:  # the contract broken (an undeclared metric missing): named as such
        return "error", str(exc)
    except Exception as exc:  # noqa: BLE001 — the user's code: its failure is this run's result
        frame = traceback.extract_tb(exc.__traceback__)[-1]
        return "error", f"{type(exc).__name__}: {exc} (at {frame.filename}:{frame.lineno})"
    return None


@contextlib.contextmanager
def _thread_count_kept():
    """Give torch's thread count back as it was after the user's function ran. A training function sets it for
    its run (``torch.set_num_threads(run.threads)``), and it is process-wide: left changed, every later run in
    this process — trainguard's own included — would train on another count, round differently, and miss the
    result cache, whose key holds the count (trainguard.core.environment.versions). Only torch's: TensorFlow
    fixes its thread pools once per process, and a framework not yet imported has nothing to restore."""
    torch = sys.modules.get("torch")
    before = torch.get_num_threads() if torch is not None else None
    try:
        yield
    finally:
        if before is not None and torch.get_num_threads() != before:
            torch.set_num_threads(before)


def runs(experiment: Experiment, seeds, store: ExperimentStore, threads: int = 1, device: str = "cpu",
         data_dir: Path | None = None, printer=print, deadline: float | None = None,
         stacked: bool = False, precision: str = "fp32", compile: bool = False) -> dict[tuple[str, int], Record]:
    """(variant, seed) → the run of every variant and seed to the largest budget: from the cache, or trained now
    under the run's lock (and cached when it completed). ``deadline`` (time.monotonic()): the night's limit — a run
    it stops is ``timeout``, a run not started by then is not trained. ``stacked``: each variant's missing seeds
    trained at once by the experiment's ``train_stacked``. ``precision`` / ``compile``: the arithmetic asked of every
    run (``store`` is that arithmetic's: trainguard.stores.experiment_records.arithmetic_class)."""
    if why := experiment.refuses(precision, compile):
        raise ConfigError(why)
    arithmetic = dict(precision=precision, compile=compile)
    if stacked:
        return {key: record for variant in experiment.variants
                for key, record in deliver_stacked(experiment, variant, seeds, store, threads, device, data_dir,
                                                   printer, deadline, **arithmetic).items()}
    return {(variant, seed): deliver(experiment, variant, seed, store, threads, device, data_dir, printer, deadline,
                                     **arithmetic)
            for variant in experiment.variants for seed in seeds}


def deliver_stacked(experiment: Experiment, variant: str, seeds, store: ExperimentStore, threads: int = 1,
                    device: str = "cpu", data_dir: Path | None = None, printer=print,
                    deadline: float | None = None, precision: str = "fp32",
                    compile: bool = False) -> dict[tuple[str, int], Record]:
    """The seeds of one variant: those cached read, the others trained together under all their locks (taken in
    seed order: no lock-order deadlock between processes)."""
    import contextlib

    if experiment.train_stacked is None:
        raise ConfigError(f"experiment {experiment.name!r} offers no train_stacked: --stack-seeds needs one (a function "
                          f"of several runs that trains them at once)")
    epochs, source = max(experiment.budgets), experiment.source_fingerprint()
    with contextlib.ExitStack() as locks:
        for seed in sorted(seeds):
            locks.enter_context(store.lock(experiment.name, variant, seed))
        found = {(variant, s): store.get(experiment.name, variant, s, epochs, threads, source) for s in seeds}
        todo = [s for (_, s), record in found.items() if record is None]
        if todo:
            printer(f"[trainguard] {experiment.name} {variant} seeds {todo}: training {epochs} epoch(s) stacked")
            for record in train_together(experiment, variant, todo, epochs, threads, device, data_dir, deadline,
                                         precision, compile):
                record.trained_here = True  # timed in this process tonight: the speed check may read it
                if record.completed:
                    store.put(record)
                found[(variant, record.seed)] = record
    return found


def train_together(experiment: Experiment, variant: str, seeds, epochs: int, threads: int = 1, device: str = "cpu",
                   data_dir: Path | None = None, deadline: float | None = None, precision: str = "fp32",
                   compile: bool = False) -> list[Record]:
    """One call of the experiment's ``train_stacked`` for ``seeds``; a Record per seed, judged as :func:`train`
    judges one run (what it raised is every seed's result)."""
    runs_ = [Run(experiment, variant, seed, epochs, device=device, threads=threads, data_dir=data_dir,
                 deadline=deadline, precision=precision, compile=compile) for seed in seeds]
    started = time.perf_counter()
    failure = _called(experiment.train_stacked, runs_)
    seconds = (time.perf_counter() - started) / max(1, len(runs_))
    records = [_record_of(experiment, run, threads, failure, seconds) for run in runs_]
    for run, record in zip(runs_, records):
        if len(run.epochs_timed) != len(run.epoch_seconds):
            # a stack reports its seeds' epochs one after another: their intervals are not epochs, only stated times are
            record.epoch_seconds = []
    return records


def _record_of(experiment: Experiment, run: Run, threads: int, failure, seconds: float) -> Record:
    record = Record(experiment.name, run.variant, run.seed, run.budget, threads, experiment.source_fingerprint(),
                    steps=run.steps, epochs=run.epochs, inputs=run.fingerprints, data_path=run.data_path_fingerprints(),
                    seconds=seconds, epoch_seconds=list(run.epoch_seconds), data_note=run.data_note)
    if failure is not None:
        record.status, record.message = failure
    elif run.failure is not None:
        record.status, record.message = "error", run.failure
    elif run.epochs_done != run.budget:
        record.status, record.message = "error", (f"it reported {run.epochs_done} epoch(s) of metrics, asked for "
                                                  f"{run.budget} (call run.epoch(...) once per epoch, run.budget times)")
    return record


def deliver(experiment: Experiment, variant: str, seed: int, store: ExperimentStore, threads: int = 1,
            device: str = "cpu", data_dir: Path | None = None, printer=print, deadline: float | None = None,
            precision: str = "fp32", compile: bool = False) -> Record:
    """One run to the largest budget: the cached one, else trained here (the one way an experiment's run is trained
    in this process)."""
    epochs, source = max(experiment.budgets), experiment.source_fingerprint()
    label = f"{experiment.name} {variant} seed {seed}"
    record = store.get(experiment.name, variant, seed, epochs, threads, source)
    if record is not None:
        return record
    if deadline is not None and time.monotonic() > deadline:
        return Record(experiment.name, variant, seed, epochs, threads, source, status="timeout",
                      message=f"{label}: not trained, the night's time limit had passed")
    try:
        with store.lock(experiment.name, variant, seed,
                        on_wait=lambda: printer(f"[trainguard] {label}: another process is training it; waiting")):
            record = store.get(experiment.name, variant, seed, epochs, threads, source)  # trained while we waited
            if record is None:
                record = _train_and_keep(experiment, variant, seed, store, threads, device, data_dir, printer, deadline,
                                         precision, compile)
    except WaitTimeout as exc:  # a lock held past its bound: this run fails, the others go on
        record = Record(experiment.name, variant, seed, epochs, threads, source, status="timeout", message=str(exc))
    return record


def epoch_lines(label: str, printer):
    """A run's progress: after each epoch it reports, one line with its declared metrics and the epoch's seconds (as
    the function stated them, else the time since its previous report)."""

    def line(run) -> None:
        shown = " | ".join(f"{m} {run.epochs[m][-1]:.4g}" for m in run.experiment.metrics)
        seconds = run.epoch_seconds[-1]  # an epoch of a small experiment is milliseconds: shown as such, not as 0.0s
        printer(f"[trainguard] {label} | epoch {run.epochs_done}/{run.budget} | {shown} | "
                + (f"{seconds:.1f}s" if seconds >= 0.1 else f"{seconds * 1000:.0f}ms"))

    return line


def _train_and_keep(experiment, variant, seed, store, threads, device, data_dir, printer, deadline, precision="fp32",
                    compile=False) -> Record:
    label = f"{experiment.name} {variant} seed {seed}"
    arithmetic = "" if (precision, compile) == ("fp32", False) else \
        f" ({precision}{', compiled' if compile else ''})"
    printer(f"[trainguard] {label}: training {max(experiment.budgets)} epoch(s){arithmetic}")
    record = train(experiment, variant, seed, max(experiment.budgets), threads, device, data_dir, deadline,
                   on_epoch=epoch_lines(label, printer), precision=precision, compile=compile)
    record.trained_here = True  # timed in this process tonight (a cached run's seconds are another night's)
    if record.completed:
        store.put(record)
    else:
        printer(f"[trainguard] {label}: {record.status}: {record.message}")
    return record


def stored(experiment: Experiment, seeds, store: ExperimentStore, threads: int = 1) -> dict[tuple[str, int], Record] | None:
    """(variant, seed) → the stored run of every variant and seed for this code, trained nothing; None when any is
    missing (never measured, or the code changed since: its source keys the cache)."""
    epochs, source = max(experiment.budgets), experiment.source_fingerprint()
    found = {(v, s): store.get(experiment.name, v, s, epochs, threads, source) for v in experiment.variants for s in seeds}
    return None if any(record is None for record in found.values()) else found


def baseline_of(experiment: Experiment, store: ExperimentStore, threads: int = 1) -> tuple[dict | None, str]:
    """(variant, seed) → the baseline seeds' runs last measured, whatever code they came from, and a note saying
    which code that was when it is not this one (the bands then say whether the change moved results); (None, "")
    when any is missing."""
    epochs, source = max(experiment.budgets), experiment.source_fingerprint()
    found = {(v, s): store.latest(experiment.name, v, s, epochs, threads)
             for v in experiment.variants for s in experiment.baseline_seeds}
    if any(record is None for record in found.values()):
        return None, ""
    from ..stores.experiment_import import IMPORTED

    imported = sorted({r.message for r in found.values() if r.message.startswith(IMPORTED)})
    others = sorted({r.source[:12] for r in found.values() if r.source != source and not r.message.startswith(IMPORTED)})
    notes = [f"{experiment.name}: the baseline was {', '.join(imported)}: the code its runs came from is not known"
             ] if imported else []
    notes += [f"{experiment.name}: the baseline was measured on other code (source {', '.join(others)}; this code "
              f"{source[:12]}): its bands say whether the change moved the results"] if others else []
    return found, "; ".join(notes)
