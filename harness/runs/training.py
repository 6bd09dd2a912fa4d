"""The one way a run of a :class:`trainguard.runs.matrix.Matrix` is trained, whichever executor asks
(:func:`deliver`: this process's night, a pytest case, the self-test, a baseline update): announce it, log it epoch by
epoch (the run log), train it (trainguard.engines.engine, or trainguard.engines.stacked for --stack-seeds), stamp it
and cache it. A Ray worker runs the same engine call (:func:`train_runs`) and hands its histories back to the driver,
which records them with :func:`log_start` / :func:`finish`.

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
from ..core.storage import WaitTimeout


def deliver(matrix, model: str, seed: int | None = None) -> History:
    """The full-length history of (model, seed): as stored (memory, the result cache), else trained now under its
    result lock — unless the night's time limit has passed (a ``timeout`` run) or another process holds the lock
    past its bound (a ``timeout`` run: this run fails, the night goes on)."""
    seed = matrix.seed if seed is None else seed
    history = matrix.history(model, seed)
    if history.status != "missing":
        return history
    spec = matrix.run_spec(model, seed)
    if watchdog.passed():
        history = matrix._not_trained(model, seed, "timeout", f"not trained: {watchdog.describe_limit()} had passed")
    else:
        try:
            return _train_locked(matrix, model, seed, spec)
        except WaitTimeout as exc:
            history = matrix._not_trained(model, seed, "timeout", str(exc))
    matrix.histories[(model, seed)] = history
    return history


def _train_locked(matrix, model: str, seed: int, spec: RunSpec) -> History:
    if matrix.options.stack_seeds:
        train_stack(matrix, model, spec.stack)
        return matrix.histories[(model, seed)]
    with matrix.store.lock(spec, on_wait=matrix.printer):
        history = matrix.store.get(spec)  # another process may have trained it while we waited
        if history is None:
            history = train_one(matrix, model, seed, spec)
        else:
            matrix.printer(f"[trainguard] {model} seed {seed}: result from another process {matrix.store.path(spec)}")
    matrix.histories[(model, seed)] = history
    return history


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
    specs = [matrix.run_spec(model, seed) for seed in seeds]
    with contextlib.ExitStack() as locks:
        for spec in specs:  # always in sorted seed order: no lock-order deadlock between processes
            locks.enter_context(matrix.store.lock(spec, on_wait=matrix.printer))
        cached = [matrix.store.get(spec) for spec in specs]  # another process may have trained them
        if all(h is not None for h in cached):
            matrix.histories.update({(model, h.seed): h for h in cached})
            return
        _train_logged(matrix, model, specs, f"{model} seeds {seed_list(seeds)}", f"{model} seeds {seed_list(seeds)} stacked")


def train_one(matrix, model: str, seed: int, spec: RunSpec) -> History:
    """Train one (model, seed) now: announced, logged epoch by epoch, cached when it completes; stopped as
    ``timeout`` when the night's time limit passes (trainguard.core.watchdog), keeping the epochs it finished."""
    return _train_logged(matrix, model, [spec], f"{model} seed {seed}", f"{model} seed {seed}")[0]


def _train_logged(matrix, model: str, specs: list[RunSpec], label: str, announced: str) -> list[History]:
    """In this process: announce, log every epoch of every seed, train (:func:`train_runs`), finish each run."""
    from ..core.progress import RunProgress

    epochs = matrix.profile.max_epochs
    batches = announce(matrix, announced, specs[0])
    runs = {spec.seed: log_start(matrix, spec) for spec in specs}

    def on_epoch(history: History, record: EpochRecord) -> None:
        matrix.log.epoch_end(runs[history.seed], record)
        progress.epoch(history, record, label=f"{model} seed {history.seed}")

    def on_batch() -> None:
        progress.batch()
        watchdog.check(label)

    with RunProgress(label, epochs, batches, matrix.printer, matrix.progress_bar) as progress:
        try:
            histories = train_runs(model, matrix.dataset, specs, matrix.device, on_epoch, on_batch,
                                   precision=matrix.options.precision, compile_model=matrix.options.compile)
        except KeyboardInterrupt:
            for run in runs.values():
                matrix.log.event("run_stop", run=run, status="interrupted")
            raise
    for spec, history in zip(specs, histories):
        finish(matrix, runs[spec.seed], spec, history)
    return histories


def train_runs(model: str, dataset, specs, device, on_epoch, on_batch, precision: str = "fp32",
               compile_model: bool = False, contain_errors: bool = False) -> list[History]:
    """The engine call every executor makes: the run of ``specs[0]`` to its epochs, or — ``specs`` a stack — every
    seed at once (trainguard.engines.stacked). A run the night's time limit stops is ``timeout`` with the epochs it
    finished. ``contain_errors`` (a Ray worker): an exception in training is the runs' result, status ``error``
    with where it was raised, instead of propagating."""
    spec, epochs, seeds = specs[0], specs[0].epochs, [s.seed for s in specs]
    seen: dict[int, History] = {}

    def on_epoch_seen(history: History, record: EpochRecord) -> None:
        seen[history.seed] = history
        on_epoch(history, record)

    def ended(status: str, message: str) -> list[History]:
        return [stopped(seen.get(seed), model, seed, engine.device_name(device), status, message) for seed in seeds]

    try:
        if spec.stack:
            from ..engines.stacked import train_stacked

            return train_stacked(model, dataset, spec.training, epochs, seeds, device, on_epoch=on_epoch_seen,
                                 on_batch=on_batch, precision=precision, compile_model=compile_model)
        return [engine.train(model, dataset, spec.training, epochs, spec.seed, device, on_epoch=on_epoch_seen,
                             on_batch=on_batch, precision=precision, compile_model=compile_model)]
    except watchdog.DeadlineExceeded as exc:
        return ended("timeout", str(exc))
    except Exception as exc:  # noqa: BLE001 — a worker's run: the user's model or a bug is that run's result
        if not contain_errors:
            raise
        return ended("error", f"{type(exc).__name__}: {exc} (at {_where(exc)})")


def _where(exc: BaseException) -> str:
    """The innermost frame of the exception: file and line, where the user looks first."""
    import traceback

    frame = traceback.extract_tb(exc.__traceback__)[-1]
    return f"{frame.filename}:{frame.lineno}"


def stopped(history: History | None, model: str, seed: int, device: str, status: str, message: str) -> History:
    """A run ended before its last epoch (``timeout``, ``error``): the epochs it finished, or none if it stopped
    inside its first."""
    if history is None:
        return History.not_trained(model, seed, device, status, message)
    history.status, history.failed_epoch, history.message = status, len(history.epochs) + 1, message
    return history
