"""The training of one run for a :class:`trainguard.runs.matrix.Matrix`: announce it, log it epoch by epoch (the run
log), train it (trainguard.engines.engine, or trainguard.engines.stacked for --stack-seeds), stamp it and cache it.

A stopped run (diverged, out of memory) is logged and reported, never cached; an interrupted one is logged as
interrupted. The caller holds the run's result lock (trainguard.stores.results).
"""

from __future__ import annotations

import contextlib
import uuid

from ..engines import engine
from ..core import watchdog
from ..core.environment import git_commit
from ..core.history import EpochRecord, History
from ..core.spec import RunSpec, seed_list


def announce(matrix, what: str, spec: RunSpec) -> int:
    """Say what is about to train; return its batches per epoch (for the progress bar)."""
    matrix.printer(f"[trainguard] training {what} for {spec.epochs} epochs on {matrix.device} "
                   f"({len(matrix.dataset.x_train):,} train / {len(matrix.dataset.x_test):,} test images)")
    return -(-len(matrix.dataset.x_train) // spec.training.batch_size)


def log_start(matrix, spec: RunSpec, device: str | None = None, **where) -> str:
    """The run log's run_start event; the run's id in the log. ``device``: where the run trained, when not in this
    process (a cluster worker's device); ``where``: the executor and host that trained it."""
    run = f"{spec.key()}-{uuid.uuid4().hex[:8]}"  # the key, plus a suffix: two runs of one spec stay apart
    matrix.log.run_start(run, spec.model, spec.seed, key=spec.key(), profile=spec.profile, epochs=spec.epochs,
                         device=device or engine.device_name(matrix.device), device_class=spec.device_class, **where,
                         training=vars(spec.training), data={"fingerprint": spec.data_fingerprint,
                                                             "test_split": matrix.dataset.test_split},
                         versions=dict(spec.versions), code=spec.code_fingerprint, commit=git_commit(),
                         **({"stack": list(spec.stack)} if spec.stack else {}))
    return run


def finish(matrix, run: str, spec: RunSpec, history: History) -> None:
    """Stamp, log and cache a finished run (a stopped one is logged and reported, never cached)."""
    history.key, history.spec = spec.key(), {"profile": spec.profile, "device_class": spec.device_class,
                                              "epochs": spec.epochs, "training": vars(spec.training),
                                              "versions": dict(spec.versions),
                                              **({"stack": list(spec.stack)} if spec.stack else {})}
    matrix.log.run_stop(run, history)
    if history.completed:
        matrix.store.put(spec, history)
    else:
        matrix.printer(f"[trainguard] {spec.model} seed {spec.seed}: {history.status} at epoch "
                       f"{history.failed_epoch}: {history.message}")
    matrix.trained.append((spec.model, spec.seed))
    matrix.histories[(spec.model, spec.seed)] = history


def train_stack(matrix, model: str, seeds: tuple[int, ...]) -> None:
    """Train ``seeds`` of ``model`` at once (--stack-seeds), under every seed's result lock."""
    from ..core.progress import RunProgress
    from ..engines.stacked import train_stacked

    specs = [matrix.run_spec(model, seed) for seed in seeds]
    epochs = matrix.profile.max_epochs
    with contextlib.ExitStack() as locks:
        for spec in specs:  # always in sorted seed order: no lock-order deadlock between processes
            locks.enter_context(matrix.store.lock(spec, on_wait=matrix.printer))
        cached = [matrix.store.get(spec) for spec in specs]  # another process may have trained them
        if all(h is not None for h in cached):
            matrix.histories.update({(model, h.seed): h for h in cached})
            return
        label = f"{model} seeds {seed_list(seeds)}"
        batches = announce(matrix, f"{label} stacked", specs[0])
        runs = {spec.seed: log_start(matrix, spec) for spec in specs}

        seen: dict[int, History] = {}

        def on_epoch(history: History, record: EpochRecord) -> None:
            seen[history.seed] = history
            matrix.log.epoch_end(runs[history.seed], record)
            progress.epoch(history, record, label=f"{model} seed {history.seed}")

        def on_batch() -> None:
            progress.batch()
            watchdog.check(label)

        with RunProgress(label, epochs, batches, matrix.printer, matrix.progress_bar) as progress:
            try:
                histories = train_stacked(model, matrix.dataset, specs[0].training, epochs, list(seeds), matrix.device,
                                          on_epoch=on_epoch, on_batch=on_batch,
                                          precision=matrix.options.precision, compile_model=matrix.options.compile)
            except KeyboardInterrupt:
                for run in runs.values():
                    matrix.log.event("run_stop", run=run, status="interrupted")
                raise
            except watchdog.DeadlineExceeded as exc:
                histories = [timed_out(seen.get(seed), model, seed, matrix, str(exc)) for seed in seeds]
        for spec, history in zip(specs, histories):
            finish(matrix, runs[spec.seed], spec, history)


def train_one(matrix, model: str, seed: int, spec: RunSpec) -> History:
    """Train one (model, seed) now: announced, logged epoch by epoch, cached when it completes; stopped as
    ``timeout`` when the night's time limit passes (trainguard.core.watchdog), keeping the epochs it finished."""
    from ..core.progress import RunProgress

    epochs = matrix.profile.max_epochs
    batches = announce(matrix, f"{model} seed {seed}", spec)
    run = log_start(matrix, spec)
    seen: dict[str, History] = {}

    def on_epoch(history: History, record: EpochRecord) -> None:
        seen["history"] = history
        matrix.log.epoch_end(run, record)
        progress.epoch(history, record)

    def on_batch() -> None:
        progress.batch()
        watchdog.check(f"{model} seed {seed}")

    with RunProgress(f"{model} seed {seed}", epochs, batches, matrix.printer, matrix.progress_bar) as progress:
        try:
            history = engine.train(model, matrix.dataset, spec.training, epochs, seed, matrix.device,
                                   on_epoch=on_epoch, on_batch=on_batch,
                                   precision=matrix.options.precision, compile_model=matrix.options.compile)
        except KeyboardInterrupt:
            matrix.log.event("run_stop", run=run, status="interrupted")
            raise
        except watchdog.DeadlineExceeded as exc:
            history = timed_out(seen.get("history"), model, seed, matrix, str(exc))
    finish(matrix, run, spec, history)
    return history


def timed_out(history: History | None, model: str, seed: int, matrix, message: str) -> History:
    """The run the night's time limit stopped: the epochs it finished, status ``timeout`` (never cached)."""
    return stopped(history, model, seed, engine.device_name(matrix.device), "timeout", message)


def stopped(history: History | None, model: str, seed: int, device: str, status: str, message: str) -> History:
    """A run ended before its last epoch (``timeout``, ``error``): the epochs it finished, or none if it stopped
    inside its first."""
    if history is None:
        return History.not_trained(model, seed, device, status, message)
    history.status, history.failed_epoch, history.message = status, len(history.epochs) + 1, message
    return history
