"""The execute stage on a Ray cluster: one Ray task per planned run, the driver the single writer.

A task receives one planned run (a (model, seed) to its largest budget, or a stack of seeds with --stack-seeds),
plus the night's data through Ray's object store, and returns its histories; the driver
(this process) writes the run log, the result cache, the ledger and the report exactly as a local night does,
so no shared filesystem is needed and a night killed halfway resumes from what the driver stored.

Before it trains, a task checks that it would compute the run the driver planned: the data's fingerprint,
the model's code fingerprint (the user's own modules included) and the versions that decide the numbers
(libraries, thread count, instruction set) must equal the run's spec; a worker that differs fails that run
naming both values, since its numbers would not be this run's.

Faults: a task whose worker process dies is rerun by Ray (``retries`` times); an exception in training (the
user's model, a bug) is that run's result, status ``error`` with the message — never a retry. Ctrl-C cancels
the outstanding tasks. The night's time limit (trainguard.core.watchdog) travels with each task.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..engines import engine
from ..core import watchdog
from ..core.errors import ConfigError, WaitTimeout
from ..core.history import History
from .plan import NightPlan
from ..runs.matrix import model_search_paths
from ..runs.options import RayResources
from ..runs.training import train_runs
from ..core.spec import RunSpec, seed_list

RAY_MISSING = "the Ray executor needs Ray: pip install 'trainguard[ray]' (or pip install ray)"


@dataclass(frozen=True)
class RemoteRun:
    """One task's work, everything but the data: the run(s) as the driver planned them."""

    model: str
    specs: tuple[RunSpec, ...]  # one run, or a stack's seeds (trained at once)
    threads: int
    device: str  # the driver's --device (auto picks the GPU Ray gave the task)
    precision: str
    compile: bool
    search: tuple[str, ...]  # where the user's model modules are found (the profile's directory, the driver's cwd)
    seconds_left: float | None  # the night's time left when the task was submitted
    shipped: bool = False  # the user's modules came with the job: import them from the task's working directory only


@dataclass
class RemoteResult:
    """What a task returns: its histories (one per spec, in order) and where and how long it ran."""

    histories: list[History]
    host: str
    pid: int
    seconds: float
    versions: dict = field(default_factory=dict)


# ------------------------------------------------------------------------------------------ on the worker


def train_remote(work: RemoteRun, dataset) -> RemoteResult:
    """The body of a Ray task: check, then train ``work`` on ``dataset``; never raises for a run's own failure."""
    import torch

    from ..core.environment import versions

    started = time.monotonic()
    torch.set_num_threads(work.threads)
    device = engine.resolve_device(work.device)
    dataset = _writable(dataset)
    here = dict(versions())
    problem = _mismatch(work, dataset, device, here)
    if problem:
        histories = [History.not_trained(work.model, s.seed, engine.device_name(device), "error", problem)
                     for s in work.specs]
    else:
        histories = _train(work, dataset, device)
    return RemoteResult(histories, socket.gethostname(), os.getpid(), time.monotonic() - started, here)


def _writable(dataset):
    """The data as the engine expects it: Ray hands out numpy arrays read-only (shared memory), which torch
    warns about when it wraps them; a private copy costs one copy of the data per task."""
    import dataclasses

    import numpy as np

    arrays = {name: np.array(value) for name, value in vars(dataset).items()
              if isinstance(value, np.ndarray) and not value.flags.writeable}
    return dataclasses.replace(dataset, **arrays) if arrays else dataset


def _mismatch(work: RemoteRun, dataset, device, here: dict) -> str | None:
    """Why this worker would not compute the planned run, or None."""
    from .. import models
    from ..stores.results import code_fingerprint

    spec = work.specs[0]
    host = socket.gethostname()
    try:
        # shipped: the task's working directory is Ray's copy of the user's directory (runtime_env), and only that
        search = (os.getcwd(),) if work.shipped else work.search
        models.resolve(work.model, tuple(Path(p) for p in search if Path(p).is_dir()))
    except models.ModelError as exc:
        return f"on Ray worker {host}: {exc}"
    checks = (("device class", spec.device_class, engine.device_class(device, work.precision, work.compile,
                                                                        bool(spec.stack))),
              ("data fingerprint", spec.data_fingerprint, dataset.fingerprint()),
              ("code fingerprint", spec.code_fingerprint, code_fingerprint(work.model, bool(spec.stack))))
    for what, planned, found in checks + tuple((name, value, here.get(name)) for name, value in spec.versions):
        if planned != found:
            return (f"Ray worker {host} would not train the planned run: its {what} is {found}, the driver planned "
                    f"{planned} (run the night's driver on the workers' machine class and versions)")
    return None


def _train(work: RemoteRun, dataset, device) -> list[History]:
    """The same engine call as a night in process (trainguard.runs.training.train_runs), under the night's time left;
    every epoch line reaches the driver's terminal through Ray's log forwarding."""
    from ..core.progress import epoch_line

    epochs = work.specs[0].epochs

    def on_epoch(history: History, record) -> None:
        print(epoch_line(f"{work.model} seed {history.seed}", record, epochs), flush=True)

    def on_batch() -> None:
        watchdog.check(f"{work.model} seed {seed_list([s.seed for s in work.specs])}")

    watchdog.start_night(None if work.seconds_left is None else work.seconds_left / 60.0)
    try:
        return train_runs(work.model, dataset, list(work.specs), device, on_epoch, on_batch, precision=work.precision,
                          compile_model=work.compile, contain_errors=True)
    finally:
        watchdog.end_night()


# ------------------------------------------------------------------------------------------ on the driver


def connect(address: str | None, runtime_env: dict | None = None):
    """Ray, joined to the cluster at ``address`` (None: start a local one; the one this process joined already
    is reused, with the runtime environment it has). ``runtime_env``: the job's (the user's code, _user_code). An
    address nobody answers at is a ConfigError naming it, before anything is planned to train: Ray itself waits
    without end for a GCS address that does not answer."""
    # every epoch line of every run reaches the driver: Ray would fold lines that differ only in their numbers
    # (read when ray is first imported)
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    try:
        import ray
    except ImportError:
        raise ConfigError(RAY_MISSING) from None
    if ray.is_initialized():
        return ray
    if address not in (None, "auto", "local"):
        _probe(address)
    try:
        ray.init(address=address, include_dashboard=False, logging_level="WARNING", log_to_driver=True,
                 configure_logging=True, runtime_env=runtime_env)
    except (ConnectionError, RuntimeError, ValueError, TimeoutError) as exc:
        raise ConfigError(f"--ray-address {address}: cannot join a Ray cluster there ({exc}); start one with "
                          f"`ray start --head`, or leave the option out for a local cluster") from None
    return ray


def _joined() -> bool:
    """This process already joined a cluster (a notebook, a test): its job's runtime environment stays as it is."""
    import ray

    return ray.is_initialized()


def _probe(address: str, timeout_s: float = 5.0) -> None:
    """A TCP connection to the address's host and port, or a ConfigError naming the address."""
    target = address.removeprefix("ray://")
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"--ray-address {address}: expected auto, HOST:PORT or ray://HOST:PORT")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s):
            return
    except OSError as exc:
        raise ConfigError(f"--ray-address {address}: nothing answers there ({exc.strerror or exc}); is the Ray head "
                          f"running (`ray status` on it) and the port reachable from here?") from None


class RayExecutor:
    """The execute stage on Ray: runs missing from the result cache go out as tasks, results come back to the
    driver, which records each as it arrives (so a night killed halfway keeps every finished run)."""

    def __init__(self, resources: RayResources, printer=print) -> None:
        self.resources, self.printer = resources, printer
        self.placements: dict[tuple[str, int], str] = {}  # (model, seed) → where it trained
        # per finished training task: (label, seconds inside the task, seconds of its training epochs)
        self.timings: list[tuple[str, float, float]] = []
        self.put_seconds = 0.0  # the data into the object store, once per night
        self.shipped = False  # the user's model modules travel with the job (a cluster joined by address)

    def prepare(self) -> None:
        """Ray importable and the cluster's address answering, before anything trains (the cluster itself is
        joined when there is something to train)."""
        try:
            import ray  # noqa: F401
        except ImportError:
            raise ConfigError(RAY_MISSING) from None
        if self.resources.address not in (None, "auto", "local"):
            _probe(self.resources.address)

    def execute(self, plan: NightPlan, session) -> None:
        with contextlib.ExitStack() as held:  # the result locks of the runs this driver trains, until they are in
            self._execute(plan, session, held)

    def _execute(self, plan: NightPlan, session, held: contextlib.ExitStack) -> None:
        matrix = session.matrix
        todo = self._claim(self._uncached(plan, matrix), matrix, held)
        if not todo:
            return
        with _user_code(matrix, self.resources.address) as code:
            self.shipped = code is not None and not _joined()
            ray = connect(self.resources.address, code)
        self.printer(f"[trainguard] Ray: {len(todo)} training task(s) on {_describe_cluster(ray)}")
        pending = self._submit_runs(ray, todo, matrix)
        try:
            self._collect(ray, pending, session)
        except BaseException:  # Ctrl-C, the night's limit, a bug: nothing is left running on the cluster
            for ref in pending:
                ray.cancel(ref, force=True)
            raise

    def _claim(self, tasks: list[list], matrix, held: contextlib.ExitStack) -> list[list]:
        """Take the result lock of every run this driver is about to send out, as a night in process takes it for
        the run it trains: a second driver sharing the result folder waits, then reads what this one trained.
        Taken in sorted order (no lock-order deadlock between drivers); a run that another driver finished while
        this one waited is read from the cache; a lock held past its bound fails that task's runs, saying so."""
        from ..runs.training import finish, log_start

        claimed = []
        for runs in sorted(tasks, key=lambda group: (group[0].model, group[0].seed)):
            try:
                for run in runs:
                    held.enter_context(matrix.store.lock(run.spec, on_wait=matrix.printer))
            except WaitTimeout as exc:
                for run in runs:
                    finish(matrix, log_start(matrix, run.spec, executor="ray"), run.spec,
                           matrix._not_trained(run.model, run.seed, "timeout", str(exc)))
                continue
            cached = [matrix.store.get(run.spec) for run in runs]
            if all(history is not None for history in cached):  # trained by the driver we waited for
                for run, history in zip(runs, cached):
                    matrix.printer(f"[trainguard] {run.model} seed {run.seed}: trained meanwhile by another process; "
                                   f"cached result {matrix.store.path(run.spec)}")
                    matrix.histories[(run.model, run.seed)] = history
                continue
            claimed.append(runs)
        return claimed

    def _uncached(self, plan: NightPlan, matrix) -> list[list]:
        """The planned runs to train, grouped into tasks (a stack's seeds together); cached ones are loaded."""
        tasks: dict[tuple, list] = {}
        for run in plan.runs:
            if (run.model, run.seed) in matrix.histories:
                continue
            cached = matrix.store.get(run.spec)
            if cached is not None:
                matrix.printer(f"[trainguard] {run.model} seed {run.seed}: cached result {matrix.store.path(run.spec)}")
                matrix.histories[(run.model, run.seed)] = cached
                continue
            group = (run.model, run.spec.stack) if run.spec.stack else (run.model, run.seed)
            tasks.setdefault(group, []).append(run)
        if matrix.options.stack_seeds:  # a stack trains all its seeds: every seed of the group is planned
            for (model, stack), runs in tasks.items():
                planned = {r.seed for r in runs}
                runs += [type(runs[0])(model, s, matrix.run_spec(model, s)) for s in stack if s not in planned]
                runs.sort(key=lambda r: r.seed)
        return list(tasks.values())

    def _options(self, ray, matrix) -> dict:
        cpus = self.resources.cpus_per_run if self.resources.cpus_per_run is not None else matrix.threads
        return {"num_cpus": cpus, "num_gpus": self.resources.gpus_per_run, "max_retries": self.resources.retries,
                "retry_exceptions": False}

    def _submit_runs(self, ray, tasks: list[list], matrix) -> dict:
        if not tasks:
            return {}
        remote = ray.remote(train_remote).options(**self._options(ray, matrix))
        started = time.perf_counter()
        data = ray.put(matrix.dataset)
        self.put_seconds += time.perf_counter() - started
        search = tuple(str(p) for p in model_search_paths(matrix.profile))
        pending = {}
        for runs in tasks:
            work = RemoteRun(runs[0].model, tuple(r.spec for r in runs), matrix.threads, matrix.options.device,
                             matrix.options.precision, matrix.options.compile, search, watchdog.remaining(),
                             self.shipped)
            pending[remote.remote(work, data)] = ("run", runs)
        return pending

    def _collect(self, ray, pending: dict, session) -> None:
        matrix = session.matrix

        def lost(item, exc, never):
            return _lost(*item, matrix, exc, never)

        gather(ray, pending, _Placement(ray, self._demand(matrix)), watchdog.passed,
               lambda item, value: self._record(*item, value, session), lost, self.printer)

    def _record(self, what: str, item, value, session) -> None:
        self._record_runs(item, value, session)

    def _demand(self, matrix) -> dict[str, float]:
        """What one task asks of a node (Ray's resource names)."""
        options = self._options(None, matrix)
        return {"CPU": float(options["num_cpus"] or 0), "GPU": float(options["num_gpus"] or 0)}

    def _record_runs(self, runs: list, result: RemoteResult, session) -> None:
        from ..runs.training import finish, log_start

        matrix = session.matrix
        where = f"{result.host} (pid {result.pid})"
        result = _matching(runs, result, matrix)
        for run, history in zip(runs, result.histories):
            logged = log_start(matrix, run.spec, device=history.device, executor="ray", host=result.host)
            for record in history.epochs:
                matrix.log.epoch_end(logged, record)
            finish(matrix, logged, run.spec, history)
            self.placements[(run.model, run.seed)] = result.host
        label = f"{runs[0].model} seed {seed_list([r.seed for r in runs])}"
        self.timings.append((label, result.seconds, sum(e.seconds for h in result.histories for e in h.epochs)))
        statuses = sorted({h.status for h in result.histories})
        self.printer(f"[trainguard] Ray: {label} {'/'.join(statuses)} on {where} in {result.seconds:.1f} s")

    def placement_note(self) -> str | None:
        """Where the runs trained, for the report's notes."""
        if not self.placements:
            return None
        hosts: dict[str, int] = {}
        for host in self.placements.values():
            hosts[host] = hosts.get(host, 0) + 1
        return ("executor: Ray — " + ", ".join(f"{n} run(s) trained on {host}" for host, n in sorted(hosts.items()))
                + "; the others came from the result cache")


# Folders whose Python files never travel with the user's code: trainguard's own outputs, environments, caches.
SKIPPED_FOLDERS = {".trainguard", "reports", "baselines", ".git", ".venv", "venv", "mlruns", "__pycache__",
                   "node_modules", ".tox", "build", "dist"}
CODE_SUFFIXES = (".py",)  # only the user's modules travel: never .env files, keys, data or anything else there


@contextlib.contextmanager
def _user_code(matrix, address: str | None):
    """The runtime environment that ships the user's own model modules to a cluster the driver does not share a
    filesystem with: the Python files of the profile file's directory (or the working directory), copied into a
    folder of their own that becomes the tasks' working directory — nothing else of that directory (a ``.env``,
    credentials, data) leaves the machine. None for the built-in models, and for a local cluster (its workers
    read the same files)."""
    from .. import models

    if address in (None, "local") or all(m in models.MODEL_NAMES for m in matrix.profile.models):
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="trainguard-code-") as bundle:
        code_bundle(model_search_paths(matrix.profile)[0], Path(bundle))
        yield {"working_dir": bundle}


def code_bundle(source: Path, bundle: Path) -> list[str]:
    """Copy the Python modules under ``source`` (hidden and SKIPPED_FOLDERS folders left out) into ``bundle``; the
    relative paths copied."""
    copied = []
    for root, folders, files in os.walk(source):
        folders[:] = sorted(f for f in folders if f not in SKIPPED_FOLDERS and not f.startswith("."))
        for name in sorted(files):
            if name.endswith(CODE_SUFFIXES) and not name.startswith("."):
                relative = (Path(root) / name).relative_to(source)
                (bundle / relative).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(Path(root) / name, bundle / relative)
                copied.append(str(relative))
    return copied


class _Placement:
    """Whether the cluster has a node that can ever place a task: its alive nodes' total resources against the
    task's demand. Infeasible for TRAINGUARD_RAY_PLACEMENT_TIMEOUT seconds (an autoscaler's time to add a node;
    a node lost) ends the wait with a sentence, instead of waiting without end as Ray itself would."""

    def __init__(self, ray, demand: dict[str, float]) -> None:
        self.ray, self.demand, self.since = ray, {k: v for k, v in demand.items() if v}, None
        self.grace_s = watchdog.seconds_from_environment("TRAINGUARD_RAY_PLACEMENT_TIMEOUT", DEFAULT_PLACEMENT_TIMEOUT)
        self.poll_s = max(0.5, min(10.0, self.grace_s / 4))

    def never(self) -> str | None:
        nodes = [n.get("Resources", {}) for n in self.ray.nodes() if n.get("Alive")]
        if any(all(node.get(k, 0) >= v for k, v in self.demand.items()) for node in nodes):
            self.since = None
            return None
        self.since = self.since or time.monotonic()
        if time.monotonic() - self.since < self.grace_s:
            return None
        asked = ", ".join(f"{v:g} {k}" for k, v in sorted(self.demand.items()))
        largest = "; ".join(", ".join(f"{node.get(k, 0):g} {k}" for k in sorted(self.demand)) for node in nodes) or "none"
        return (f"no node of the cluster can place a task asking for {asked} (its nodes have: {largest}), and none "
                f"came within {self.grace_s:.0f} s (TRAINGUARD_RAY_PLACEMENT_TIMEOUT): the tasks could never run; "
                f"lower --cpus-per-run / --gpus-per-run or add such a node")


DEFAULT_PLACEMENT_TIMEOUT = 300.0


def gather(ray, pending: dict, placement: _Placement, late, keep, lose, printer) -> None:
    """Wait for the tasks of ``pending`` (ref → item) and hand each result to ``keep(item, value)`` as it finishes.
    A task Ray gave up on (its worker died more often than the retries allow) is ``lose(item, exc, None)``; when no
    node can ever place the rest, or ``late()`` (the night's limit: the tasks carry it too; this covers those still
    queued), each is cancelled and ``lose(item, None, never)``. Shared by the night's runs and an experiment's."""
    from ray.exceptions import RayError

    while pending:
        done, _ = ray.wait(list(pending), num_returns=1, timeout=min(_wait_s(), placement.poll_s))
        if not done:
            never = placement.never()
            if late() or never:
                for ref in list(pending):
                    ray.cancel(ref, force=True)
                    item = pending.pop(ref)
                    keep(item, lose(item, None, never))
                if never:
                    printer(f"[trainguard] Ray: {never}")
            continue
        item = pending.pop(done[0])
        try:
            value = ray.get(done[0])
        except RayError as exc:
            value = lose(item, exc, None)
        keep(item, value)


def _matching(runs: list, result: RemoteResult, matrix) -> RemoteResult:
    """The task's histories, checked against the runs it was sent: one per run, each of that model and seed.
    A task that returns anything else has its runs failed, saying what came back (never silently dropped)."""
    returned = [(h.model, h.seed) for h in result.histories]
    expected = [(r.model, r.seed) for r in runs]
    if returned == expected:
        return result
    message = f"the Ray task returned runs {returned} for {expected}: its results are not used"
    device = engine.device_name(matrix.device)
    return RemoteResult([History.not_trained(r.model, r.seed, device, "error", message) for r in runs],
                        result.host, result.pid, result.seconds)


def _lost(what: str, item, matrix, exc: BaseException | None, never: str | None = None):
    """The result of a task that delivered nothing: Ray gave up on it (``exc``: its worker died more often than
    the retries allow), no node could ever place it (``never``: why), or the night's time limit passed first.
    Never cached."""
    if never is not None:
        status, message = "error", f"not trained: {never}"
    elif exc is None:
        status, message = "timeout", f"not trained: {watchdog.describe_limit()} had passed"
    else:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        status, message = "error", f"the Ray task was lost ({type(exc).__name__}: {reason})"
    device = engine.device_name(matrix.device)
    return RemoteResult([History.not_trained(r.model, r.seed, device, status, message) for r in item], "?", 0, 0.0)


def _wait_s() -> float:
    """How long one wait for a result lasts: short enough to notice the night's limit."""
    remaining = watchdog.remaining()
    return 30.0 if remaining is None else max(0.5, min(30.0, remaining + 0.1))


def _describe_cluster(ray) -> str:
    resources = ray.cluster_resources()
    nodes = len([n for n in ray.nodes() if n.get("Alive")])
    gpus = resources.get("GPU", 0)
    return f"{nodes} node(s), {resources.get('CPU', 0):g} CPU(s)" + (f", {gpus:g} GPU(s)" if gpus else "")
