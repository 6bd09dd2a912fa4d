"""Any experiment's runs on a Ray cluster (``trainguard guard TARGET baseline|check --executor ray``): one task per
(variant, seed) the store lacks. The task loads the experiment by its target and calls the same function a run in
process calls (:func:`trainguard.runs.experiment_runs.train`); the driver checks that what came back is the run it
asked for, computed from the same source, and stores it — the single writer, under each run's lock, as in process.

What travels: the target and the run's coordinates; on a cluster joined by address, the experiment's own source
files (:meth:`Experiment.source_files`, nothing else of its folder) as the tasks' working directory. A module target
(``package.module:NAME``) must be installed on the workers. The data is the function's own business
(``run.data_dir`` is handed over as given: a path the workers can read).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import ConfigError, WaitTimeout
from ..core.experiment import Experiment
from ..runs.options import RayResources
from ..stores.experiment_records import ExperimentStore, Record


@dataclass(frozen=True)
class ExperimentTask:
    """One task's work: which run of which experiment, and how."""

    target: str  # FILE.py:NAME (relative to the task's working directory when shipped) or MODULE:NAME
    variant: str
    seed: int
    epochs: int
    threads: int
    device: str
    data_dir: str | None
    seconds_left: float | None
    precision: str = "fp32"
    compile: bool = False


def run_task(task: ExperimentTask) -> tuple[Record, str, int]:
    """The body of a Ray task: the run, trained where it landed; never raises for the run's own failure."""
    from ..core.experiment import load_experiment
    from ..runs.experiment_runs import train

    deadline = None if task.seconds_left is None else time.monotonic() + task.seconds_left
    experiment = load_experiment(task.target)
    record = train(experiment, task.variant, task.seed, task.epochs, task.threads, task.device,
                   Path(task.data_dir) if task.data_dir else None, deadline, precision=task.precision,
                   compile=task.compile)
    return record, socket.gethostname(), os.getpid()


def runs_on_ray(experiment: Experiment, target: str, seeds, store: ExperimentStore, resources: RayResources,
                threads: int = 1, device: str = "cpu", data_dir: Path | None = None, printer=print,
                deadline: float | None = None, precision: str = "fp32",
               compile: bool = False) -> dict[tuple[str, int], Record]:
    """(variant, seed) → every run, as :func:`trainguard.runs.experiment_runs.runs` returns them: the stored ones read,
    the others trained as Ray tasks and stored by this driver (``store``: the arithmetic's, as in process)."""
    if why := experiment.refuses(precision, compile):
        raise ConfigError(why)
    epochs, source = max(experiment.budgets), experiment.source_fingerprint()
    found = {(v, s): store.get(experiment.name, v, s, epochs, threads, source)
             for v in experiment.variants for s in seeds}
    with contextlib.ExitStack() as held:
        todo = _claim(experiment, [key for key, record in found.items() if record is None], store, threads, held,
                      found, printer)
        if todo:
            submit = _Submitter(experiment, target, resources, epochs, threads, device, data_dir, deadline, printer)
            submit.arithmetic = (precision, compile)
            found.update(submit.all(todo, store, source))
    return found


def _claim(experiment, keys, store, threads, held, found, printer) -> list[tuple[str, int]]:
    """Take each run's lock (sorted: no lock-order deadlock between drivers); a run stored meanwhile is read."""
    epochs, source, todo = max(experiment.budgets), experiment.source_fingerprint(), []
    for variant, seed in sorted(keys):
        label = f"{experiment.name} {variant} seed {seed}"
        try:
            held.enter_context(store.lock(experiment.name, variant, seed,
                                          on_wait=lambda: printer(f"[trainguard] {label}: another process is training "
                                                                  f"it; waiting")))
        except WaitTimeout as exc:  # held past its bound: this run fails, the others go on
            found[(variant, seed)] = Record(experiment.name, variant, seed, epochs, threads, source, status="timeout",
                                            message=str(exc))
            continue
        stored = store.get(experiment.name, variant, seed, epochs, threads, source)
        if stored is not None:
            found[(variant, seed)] = stored
        else:
            todo.append((variant, seed))
    return todo


class _Submitter:
    """Sends the runs out, gathers them as they finish, within the night's limit and the cluster's reach."""

    def __init__(self, experiment, target, resources, epochs, threads, device, data_dir, deadline, printer) -> None:
        self.experiment, self.target, self.resources = experiment, target, resources
        self.epochs, self.threads, self.device, self.data_dir = epochs, threads, device, data_dir
        self.deadline, self.printer = deadline, printer
        self.arithmetic = ("fp32", False)  # (precision, compile) asked of every task

    def all(self, todo, store: ExperimentStore, source: str) -> dict[tuple[str, int], Record]:
        from .cluster import _describe_cluster, connect

        with _shipped(self.experiment, self.target, self.resources.address) as (target, runtime_env):
            ray = connect(self.resources.address, runtime_env)
            self.printer(f"[trainguard] Ray: {len(todo)} run(s) of {self.experiment.name} on {_describe_cluster(ray)}")
            cpus = self.resources.cpus_per_run if self.resources.cpus_per_run is not None else self.threads
            remote = ray.remote(run_task).options(num_cpus=cpus, num_gpus=self.resources.gpus_per_run,
                                                   max_retries=self.resources.retries, retry_exceptions=False)
            pending = {remote.remote(self._task(target, variant, seed)): (variant, seed) for variant, seed in todo}
            try:
                return self._gather(ray, pending, store, source, {"CPU": float(cpus or 0),
                                                                   "GPU": float(self.resources.gpus_per_run or 0)})
            except BaseException:  # Ctrl-C, a bug: nothing is left running on the cluster
                for ref in pending:
                    ray.cancel(ref, force=True)
                raise

    def _task(self, target: str, variant: str, seed: int) -> ExperimentTask:
        left = None if self.deadline is None else max(0.0, self.deadline - time.monotonic())
        return ExperimentTask(target, variant, seed, self.epochs, self.threads, self.device,
                              str(self.data_dir) if self.data_dir else None, left, *self.arithmetic)

    def _gather(self, ray, pending: dict, store, source: str, demand: dict) -> dict[tuple[str, int], Record]:
        from .cluster import _Placement, gather

        found = {}

        def late() -> bool:
            return self.deadline is not None and time.monotonic() > self.deadline

        def lose(item, exc, never):
            if exc is not None:  # the worker died more often than the retries allow
                return self._failed(*item, source, f"the Ray task was lost ({type(exc).__name__})"), "?", 0
            why = f"not trained: {never}" if never else "not trained: the night's time limit had passed"
            return self._failed(*item, source, why, "error" if never else "timeout"), "?", 0

        def keep(item, value):
            record, host, pid = value
            found[item] = self._keep(self._matching(record, *item, source) if host != "?" else record, store, host, pid)

        gather(ray, pending, _Placement(ray, demand), late, keep, lose, self.printer)
        return found

    def _failed(self, variant: str, seed: int, source: str, message: str, status: str = "error") -> Record:
        return Record(self.experiment.name, variant, seed, self.epochs, self.threads, source, status=status,
                      message=message)

    def _matching(self, record: Record, variant: str, seed: int, source: str) -> Record:
        """The task's record, checked against the run it was sent: that experiment, variant, seed and budget, from
        the same source (a worker with other code would compute another run: refused, naming both)."""
        asked = (self.experiment.name, variant, seed, self.epochs, self.threads)
        got = (record.experiment, record.variant, record.seed, record.epochs_asked, record.threads)
        if got != asked:
            return self._failed(variant, seed, source, f"the Ray task returned the run {got} for {asked}: not used")
        if record.source != source:
            return self._failed(variant, seed, source, f"the Ray worker ran other code: its source fingerprint "
                                                       f"{record.source[:12]}, the driver's {source[:12]} (ship the "
                                                       f"same files to the workers)")
        return record

    def _keep(self, record: Record, store: ExperimentStore, host: str, pid: int) -> Record:
        if record.completed:
            store.put(record)
        label = f"{record.experiment} {record.variant} seed {record.seed}"
        self.printer(f"[trainguard] Ray: {label} {record.status} on {host} (pid {pid}) in {record.seconds:.1f} s"
                     + ("" if record.completed else f": {record.message}"))
        return record


@contextlib.contextmanager
def _shipped(experiment: Experiment, target: str, address: str | None):
    """(the target as the workers load it, the job's runtime environment). A local cluster reads the same files: the
    target with its absolute path. A cluster joined by address gets the experiment's source files only, copied
    into a folder that becomes the tasks' working directory (their layout beside the training function's file
    kept), and loads the file from there."""
    where, _, name = target.rpartition(":")
    if not where.endswith(".py"):  # a module target: installed on the workers
        yield target, None
        return
    home = Path(where).resolve()
    if address in (None, "local"):
        yield f"{home}:{name}", None
        return
    with tempfile.TemporaryDirectory(prefix="trainguard-experiment-") as bundle:
        for path in experiment.source_files():
            try:
                relative = path.relative_to(home.parent)
            except ValueError:  # a module of an installed package: the workers have it installed too
                continue
            (Path(bundle) / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, Path(bundle) / relative)
        yield f"{home.name}:{name}", {"working_dir": bundle}
