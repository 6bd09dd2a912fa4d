"""The Experiment contract: any training function, guarded.

A user's training is a function of a :class:`Run` — its seed, budget (epochs), variant (named settings), device,
thread count, arithmetic (``run.precision``, ``run.compile``, where the experiment declares it honours them), data
location and time left. It reports through the run: scalars per optimiser step
(:meth:`Run.step`, what the replay compares step by step) and metrics per epoch (:meth:`Run.epoch`, what the bands
check, each declared with the direction that is better), and declares what it trains and evaluates on
(:meth:`Run.inputs`, :meth:`Run.batches`: fingerprinted at full scale). Nothing here requires trainguard's loop,
data loaders, shapes, class count, loss or optimiser, and this module imports no framework: a function in any
framework (PyTorch, TensorFlow, JAX) or none fits it::

    import trainguard

    @trainguard.experiment(metrics={"test_loss": "lower", "test_acc": "higher"}, budgets=(2, 4),
                           variants={"plain": {"dropout": 0.0}, "dropout": {"dropout": 0.5}})
    def train(run):
        torch.manual_seed(run.seed)
        torch.set_num_threads(run.threads)
        ...
        for epoch in range(run.budget):
            for x, y in run.batches(loader):       # the data path, fingerprinted as the loop receives it
                ...
                run.step(loss=loss.item())           # per step: what the replay compares
            run.epoch(test_loss=..., test_acc=...)   # per epoch: what the bands check

The instruments that work on it (trainguard.runs.guarded, ``trainguard guard``): a result cache keyed by the
experiment's source, the golden replay of a short budget, outcome bands on every declared metric at every budget.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import inspect
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Mapping

from .errors import ConfigError

START_PREFIX = "start_"  # a start-of-the-curve cell's metric: the prefix, then the metric it reads


def start_metric(metric: str) -> str:
    """The name of the start-of-the-curve cell that reads ``metric`` (an experiment's Start, a profile's
    ``start_window``): one rule for both, so a night's verdicts, ledger and report name them alike."""
    return f"{START_PREFIX}{metric}"

DIRECTIONS = ("higher", "lower")
PRECISIONS = ("fp32", "bf16")  # a night's --precision: its own arithmetic, so its own cache and baseline


@dataclass(frozen=True)
class Claim:
    """A conclusion the experiment asserts every night: on ``metric``, the cell ``better`` (``"variant@budget"``)
    beats the cell ``than`` — by the metric's declared direction, on the mean of the night's check seeds.
    ``Claim("dropout shrinks the gap", "gap", better="dropout@4", than="plain@4")``,
    ``Claim("more epochs help", "test_acc", better="default@2", than="default@1")``."""

    name: str
    metric: str
    better: str
    than: str

    def cells(self) -> tuple[tuple[str, int], tuple[str, int]]:
        return _cell(self.better), _cell(self.than)


@dataclass(frozen=True)
class Fault:
    """A regression the experiment declares so the self-test can prove its instruments catch it: ``settings``
    merged into ``run.settings`` of the ``variants`` it names (every variant when none), which your function
    honours as the bug would act (``Fault("dropout-0.1", "the dropout arm at rate 0.1", {"dropout": 0.1},
    variants=("dropout",))``). ``trainguard guard TARGET selftest`` (and ``trainguard selftest`` for a profile's
    experiments) trains under each and says which of the replay, the bands and the claims caught it."""

    name: str
    description: str
    settings: Mapping
    variants: tuple[str, ...] = ()


@dataclass(frozen=True)
class Reference:
    """Numbers measured elsewhere (a paper's table, a course report's) set beside the night's: ``values`` maps
    ``"variant@budget"`` to {metric: value}. With a ``tolerances`` entry for a metric, each such value is checked
    every night — |mean of the seeds − value| ≤ tolerance, absolute (one published run has no spread to scale
    by) — else it is shown only. ``note`` says what they were measured on, where that differs from your runs.
    ``seeds``: the seeds whose mean is checked (a protocol that averages given seeds); none: the night's check seeds.
    A night trains those that are not check seeds beside them, and reads those that are baseline seeds from the
    baseline (their runs are measured already; a reference is not derived from them, so nothing is circular)."""

    name: str
    values: Mapping[str, Mapping[str, float]]
    tolerances: Mapping[str, float] = field(default_factory=dict)
    note: str = ""
    seeds: tuple[int, ...] = ()

    def cells(self) -> list[tuple[str, int, str, float]]:
        """(variant, budget, metric, value) of every number it holds."""
        return [(*_cell(cell), metric, float(value)) for cell, metrics in self.values.items()
                for metric, value in metrics.items()]


@dataclass(frozen=True)
class Start:
    """The start of the learning curve, checked as well as its end: each of ``metrics`` averaged over the first
    ``epochs`` epochs, one band per variant in ``variants`` (every variant when none), beside the smallest budget's.
    It sees a change that reaches the same end point by another path (an activation, an initialisation, a warm-up),
    which the budgets' bands pass: ``Start(("train_loss",), epochs=3)``. Its cells are named ``start_<metric>``."""

    metrics: tuple[str, ...]
    epochs: int
    variants: tuple[str, ...] = ()


@dataclass(frozen=True)
class Cell:
    """One statistic the instruments check of an experiment's runs: ``variant``'s metric ``source`` averaged over the
    ``window`` epochs ending at epoch ``end``, kept under ``budget`` as ``metric`` (the source's name, or
    ``start_<source>`` for the start of the curve) — the one place that says which numbers a band, the ledger, drift
    and the calibration read."""

    variant: str
    budget: int
    metric: str
    source: str
    end: int
    window: int

    def value(self, record) -> float:
        """This cell's number in one run's record (trainguard.stores.experiment_records.Record)."""
        return record.at(self.source, self.end, self.window)

    @property
    def span(self) -> str:
        """Which epochs it averages, for messages: "" for the budget's own epoch."""
        if self.window > 1:
            return f" (mean of epochs {self.end - self.window + 1}–{self.end})"
        return f" (epoch {self.end})" if self.end != self.budget else ""


def _cell(text: str) -> tuple[str, int]:
    variant, _, budget = text.rpartition("@")
    if not variant or not budget.isdigit():
        raise ConfigError(f"claim cell {text!r}: expected VARIANT@BUDGET, e.g. default@2")
    return variant, int(budget)


@dataclass(frozen=True)
class Experiment:
    """A training function and what to guard of it.

    ``metrics``: name → "higher" or "lower" (which is better), reported per epoch by :meth:`Run.epoch`;
    ``budgets``: the epoch counts checked (each run trains once to the largest; the others are its snapshots);
    ``variants``: name → settings handed to the function as ``run.settings``;
    ``baseline_seeds`` / ``check_seeds``: the seeds the baseline measures / a night checks (never the same);
    ``replay_budget``: the epochs of the golden runs, traced step by step (0: no golden run — for a function that
    reports no steps, or one too costly to run three times; the replay then sees nothing of it);
    ``replay_settings``: optional, settings merged into ``run.settings`` of every golden run (and its replays,
    perturbations and faults), which your function honours by training at the golden's scale — a slice of the data
    (``{"subset": 500}``) — so the replay takes seconds where a night's run takes minutes;
    ``modules``: the user's own modules (files) besides the function's, whose source keys the result cache;
    ``data``: optional, a function of a run returning the batches its step loop receives (a DataLoader: returned
    once, iterated once per epoch). Given it, the replay fingerprints that data path at full scale — every batch of
    every epoch of the largest budget, without the model — so a change there is seen in seconds, however far past
    the golden runs' epochs it acts;
    ``perturbations``: optional, name → settings merged into ``run.settings`` for one more run of the golden, which
    your function honours with a change that should move only rounding (``{"tf32": {"allow_tf32": True}}``): the
    replay's noise envelope then covers it too, beside another thread count and, on x86, a lower instruction set;
    ``train_stacked``: optional, a function of several runs (one variant, one budget, several seeds) that trains them
    at once, each reporting through its own run — what ``--stack-seeds`` uses (its runs and baseline kept apart:
    stacked arithmetic rounds differently);
    ``requires``: optional, a function of nothing returning why the experiment cannot run on this machine (a missing
    framework: "tensorflow not installed; pip install …"), or None when it can: its cases are skipped with that
    reason instead of failing every run;
    ``faults``: optional, regressions (:class:`Fault`) the self-test injects one at a time, to measure which
    instrument sees each;
    ``window``: the bands, claims, drift and the ledger read each budget's metric as the mean of its last ``window``
    epochs up to the budget (1: the budget's own epoch) — for a metric that moves between epochs by more than the
    change you want to see;
    ``references``: optional, numbers measured elsewhere (:class:`Reference`), shown beside the night's means and,
    where the reference gives a tolerance, checked;
    ``resolutions``: optional, metric → the smallest step it can take (one example of its evaluation split: 100 / N
    for an accuracy in percent on N examples). It floors the baseline seeds' spread, so a cell whose seeds happened
    to agree exactly gets a band an honest rerun on another machine can meet;
    ``start``: optional, the start of the learning curve checked too (:class:`Start`);
    ``precisions`` / ``compiles``: the arithmetic your function honours from ``run.precision`` ("fp32"; "bf16":
    autocast) and ``run.compile`` (torch.compile, a jit) — what a night's ``--precision`` / ``--compile`` ask of it.
    A night asking for one it does not declare is refused for it (its cases skipped, saying why), so a run trained in
    fp32 is never kept or checked as a bf16 one. Each arithmetic has its own result cache and baseline: it rounds
    differently. The golden runs are always fp32 and eager;
    ``formerly``: optional, names this experiment had before (a rename): drift compares a night with the previous
    night that recorded it under any of them, and ``guard … check --ledger`` reads its earlier nights under them too.
    A former name may be a profile's whose models the experiment replaces (its variants those models): their cells,
    recorded by that profile's nights, are then its earlier values.
    """

    name: str
    train: Callable[["Run"], None]
    metrics: Mapping[str, str]
    budgets: tuple[int, ...] = (1,)
    variants: Mapping[str, Mapping] = field(default_factory=lambda: {"default": {}})
    baseline_seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    check_seeds: tuple[int, ...] = (100,)
    replay_budget: int = 1
    replay_settings: Mapping = field(default_factory=dict)
    modules: tuple[str, ...] = ()
    claims: tuple[Claim, ...] = ()
    data: Callable[["Run"], Iterable] | None = None
    perturbations: Mapping[str, Mapping] = field(default_factory=dict)
    train_stacked: Callable[[list["Run"]], None] | None = None
    requires: Callable[[], str | None] | None = None
    faults: tuple[Fault, ...] = ()
    window: int = 1
    resolutions: Mapping[str, float] = field(default_factory=dict)
    references: tuple[Reference, ...] = ()
    start: Start | None = None
    precisions: tuple[str, ...] = ("fp32",)
    compiles: bool = False
    formerly: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        where = f"experiment {self.name!r}"
        if not callable(self.train):
            raise ConfigError(f"{where}: train must be a function of a run, got {type(self.train).__name__}")
        if not self.metrics or any(d not in DIRECTIONS for d in self.metrics.values()):
            raise ConfigError(f"{where}: metrics must map each name to 'higher' or 'lower', got {dict(self.metrics)!r}")
        if not self.budgets or any(not isinstance(b, int) or b < 1 for b in self.budgets):
            raise ConfigError(f"{where}: budgets must be positive epoch counts, got {self.budgets!r}")
        if not self.variants:
            raise ConfigError(f"{where}: give at least one variant (name → settings)")
        if any(m not in self.metrics or not isinstance(r, (int, float)) or r < 0 for m, r in self.resolutions.items()):
            raise ConfigError(f"{where}: resolutions must map declared metrics to a step ≥ 0, got "
                              f"{dict(self.resolutions)!r}")
        if not isinstance(self.window, int) or not 1 <= self.window <= min(self.budgets):
            raise ConfigError(f"{where}: window must be an epoch count from 1 to the smallest budget "
                              f"({min(self.budgets)}), got {self.window!r}")
        if set(self.baseline_seeds) & set(self.check_seeds):
            raise ConfigError(f"{where}: check_seeds {sorted(set(self.baseline_seeds) & set(self.check_seeds))} are "
                              f"baseline seeds too: a check against a baseline that contains it cannot fail")
        if len(self.baseline_seeds) < 2:
            raise ConfigError(f"{where}: a band needs at least 2 baseline seeds, got {self.baseline_seeds!r}")
        if self.data is not None and not callable(self.data):
            raise ConfigError(f"{where}: data must be a function of a run returning its batches, got "
                              f"{type(self.data).__name__}")
        if self.train_stacked is not None and not callable(self.train_stacked):
            raise ConfigError(f"{where}: train_stacked must be a function of a list of runs, got "
                              f"{type(self.train_stacked).__name__}")
        if self.requires is not None and not callable(self.requires):
            raise ConfigError(f"{where}: requires must be a function returning None or why the experiment cannot "
                              f"run here, got {type(self.requires).__name__}")
        if not isinstance(self.replay_settings, Mapping):
            raise ConfigError(f"{where}: replay_settings must be settings (a dict), got {self.replay_settings!r}")
        if any(not isinstance(v, Mapping) for v in self.perturbations.values()):
            raise ConfigError(f"{where}: perturbations must map each name to settings (a dict), got "
                              f"{dict(self.perturbations)!r}")
        if not isinstance(self.replay_budget, int) or self.replay_budget < 0:
            raise ConfigError(f"{where}: replay_budget must be an epoch count (0: no golden run), got "
                              f"{self.replay_budget!r}")
        for fault in self.faults:
            if not isinstance(fault, Fault) or not isinstance(fault.settings, Mapping) \
                    or any(v not in self.variants for v in fault.variants):
                raise ConfigError(f"{where}: each fault must be a trainguard.Fault whose variants are the "
                                  f"experiment's ({sorted(self.variants)}) and whose settings are a dict, got {fault!r}")
        _check_references(self, where)
        _check_start(self, where)
        _check_arithmetic(self, where)
        _check_formerly(self, where)
        if len({f.name for f in self.faults}) < len(self.faults):
            raise ConfigError(f"{where}: two faults share a name: {[f.name for f in self.faults]}")
        for claim in self.claims:
            cells = claim.cells()
            if claim.metric not in self.metrics or any(v not in self.variants or b not in self.budgets for v, b in cells):
                raise ConfigError(f"{where}: claim {claim.name!r} names a metric or cell the experiment does not have "
                                  f"(metrics {sorted(self.metrics)}, variants {sorted(self.variants)}, budgets "
                                  f"{sorted(self.budgets)})")

    def cells(self) -> list[Cell]:
        """Every checked statistic: each variant's declared metrics at each budget (over the ``window``), then the
        start of the curve (``start``), in that order."""
        found = [Cell(v, b, m, m, b, self.window) for v in self.variants for b in sorted(self.budgets)
                 for m in self.metrics]
        if self.start is not None:
            found += [Cell(v, min(self.budgets), start_metric(m), m, self.start.epochs, self.start.epochs)
                      for v in self.start.variants or tuple(self.variants) for m in self.start.metrics]
        return found

    def source(self, metric: str) -> str:
        """The declared metric a cell's metric reads (a start cell's ``start_<metric>``: its metric)."""
        return metric if metric in self.metrics else metric.removeprefix(START_PREFIX)

    def direction(self, metric: str) -> str | None:
        """Which way is better for a cell's metric ("higher" / "lower"); None for one not declared."""
        return self.metrics.get(self.source(metric))

    def resolution(self, metric: str) -> float:
        """A cell's metric's resolution (``resolutions``; 0: none)."""
        return self.resolutions.get(self.source(metric), 0.0)

    def refuses(self, precision: str = "fp32", compile: bool = False) -> str | None:
        """Why the function cannot train at this arithmetic (a night's ``--precision`` / ``--compile`` it does not
        declare it honours), or None."""
        if precision not in PRECISIONS:
            return f"--precision {precision!r}: expected one of {', '.join(PRECISIONS)}"
        if precision not in self.precisions:
            return (f"experiment {self.name!r} declares precisions {list(self.precisions)}: it would train {precision} "
                    f"as fp32 (declare precisions=(\"fp32\", \"{precision}\") once it honours run.precision)")
        if compile and not self.compiles:
            return (f"experiment {self.name!r} does not declare compiles=True: it would train --compile runs eagerly "
                    f"(declare it once it honours run.compile)")
        return None

    def unavailable(self) -> str | None:
        """Why the experiment cannot run on this machine (its ``requires``), or None."""
        return self.requires() if self.requires is not None else None

    def source_files(self) -> list[Path]:
        """The user's code this experiment runs: the training function's file, the declared ``modules`` (relative
        to it), and the modules beside it that those import (the script an adapter imports, its helpers), found
        by reading their import statements — the same files whatever else the process has imported."""
        train = self.train.func if isinstance(self.train, functools.partial) else self.train
        home = Path(inspect.getsourcefile(train)).resolve()
        package = getattr(sys.modules.get(train.__module__), "__package__", None) or None
        found, todo = set(), [(home, package), *(((home.parent / m).resolve(), None) for m in self.modules)]
        while todo:
            path, package = todo.pop()
            if path in found or not path.is_file():
                continue
            found.add(path)
            todo += _local_imports(path, package)
        return sorted(found)

    def source_fingerprint(self) -> str:
        """sha256 of :meth:`source_files`: what keys the result cache (a changed script trains again)."""
        digest = hashlib.sha256()
        for path in self.source_files():
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
        return digest.hexdigest()


def _local_imports(path: Path, package: str | None) -> list[tuple[Path, str | None]]:
    """(file, its package) of the modules ``path`` imports that live beside it (``import train``, ``from helpers
    import x``) or inside its own package (``from ..engines import engine``, resolved as Python resolves it)."""
    found = []
    for level, module, names in _import_statements(path):
        if level == 0 and module is None:  # import a, b
            found += [_beside(path, name) for name in names]
        elif level == 0:
            found.append(_beside(path, module))
        elif package:
            base = importlib.util.resolve_name("." * level + (module or ""), package)
            found += [_in_package(name) for name in [base, *(f"{base}.{a}" for a in names)]]
    return [item for item in found if item is not None]


_STATEMENTS: dict[Path, tuple[str, list]] = {}


def _import_statements(path: Path) -> list[tuple[int, str | None, tuple[str, ...]]]:
    """(level, module, names) of every import statement in ``path`` (``import a`` → (0, None, ("a",))), read once per
    version of the file: every run record asks for its experiment's source fingerprint, and parsing each module
    again each time cost a large share of a short run (the sha256 of the file's content keys what was read)."""
    import ast

    content = path.read_bytes()
    version = hashlib.sha256(content).hexdigest()
    if path in _STATEMENTS and _STATEMENTS[path][0] == version:
        return _STATEMENTS[path][1]
    try:
        tree = ast.parse(content.decode("utf-8"))
    except (SyntaxError, UnicodeDecodeError):
        tree = ast.Module(body=[], type_ignores=[])
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.append((0, None, tuple(alias.name for alias in node.names)))
        elif isinstance(node, ast.ImportFrom) and (node.level or node.module):
            found.append((node.level, node.module, tuple(alias.name for alias in node.names)))
    _STATEMENTS[path] = (version, found)
    return found


def _beside(path: Path, name: str) -> tuple[Path, str | None] | None:
    top = name.split(".")[0]
    for file in (path.parent / f"{top}.py", path.parent / top / "__init__.py"):
        if file.is_file():
            return file.resolve(), None
    return None


def _in_package(name: str) -> tuple[Path, str | None] | None:
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return None
    return Path(spec.origin).resolve(), name if spec.submodule_search_locations else name.rpartition(".")[0]


def _check_references(experiment: Experiment, where: str) -> None:
    for reference in experiment.references:
        if not isinstance(reference, Reference) or any(not isinstance(s, int) for s in reference.seeds) or any(
                v not in experiment.variants or b not in experiment.budgets or m not in experiment.metrics
                for v, b, m, _ in reference.cells()) or any(m not in experiment.metrics for m in reference.tolerances):
            raise ConfigError(f"{where}: each reference must be a trainguard.Reference whose cells and metrics are "
                              f"the experiment's (variants {sorted(experiment.variants)}, budgets "
                              f"{sorted(experiment.budgets)}, metrics {sorted(experiment.metrics)}) and whose seeds are "
                              f"integers, got {reference!r}")


def _check_formerly(experiment: Experiment, where: str) -> None:
    if not isinstance(experiment.formerly, tuple) or any(not isinstance(n, str) or not n or n == experiment.name
                                                           for n in experiment.formerly):
        raise ConfigError(f"{where}: formerly must be a tuple of the names it had before (not its own), got "
                          f"{experiment.formerly!r}")


def _check_arithmetic(experiment: Experiment, where: str) -> None:
    if not experiment.precisions or any(p not in PRECISIONS for p in experiment.precisions) \
            or "fp32" not in experiment.precisions or not isinstance(experiment.compiles, bool):
        raise ConfigError(f"{where}: precisions must be among {PRECISIONS} and hold fp32 (the golden runs' "
                          f"arithmetic), and compiles True or False; got {experiment.precisions!r}, "
                          f"{experiment.compiles!r}")


def _check_start(experiment: Experiment, where: str) -> None:
    start = experiment.start
    if start is None:
        return
    if not isinstance(start, Start) or not start.metrics or any(m not in experiment.metrics for m in start.metrics) \
            or any(v not in experiment.variants for v in start.variants):
        raise ConfigError(f"{where}: start must be a trainguard.Start of declared metrics {sorted(experiment.metrics)} "
                          f"and variants {sorted(experiment.variants)}, got {start!r}")
    if not isinstance(start.epochs, int) or not 1 <= start.epochs <= min(experiment.budgets):
        raise ConfigError(f"{where}: start epochs must be from 1 to the smallest budget ({min(experiment.budgets)}), "
                          f"got {start.epochs!r}")
    if start.epochs == experiment.window and start.epochs in experiment.budgets:
        raise ConfigError(f"{where}: start epochs {start.epochs} read what the budget {start.epochs}'s bands read "
                          f"(its window is {experiment.window}): drop start, or start at fewer epochs")
    if clash := sorted(start_metric(m) for m in start.metrics if start_metric(m) in experiment.metrics):
        raise ConfigError(f"{where}: the start cells {clash} would share a name with a declared metric; rename it")


def experiment(*, metrics: Mapping[str, str], name: str | None = None, **settings) -> Callable:
    """A decorator: the function becomes an :class:`Experiment` (named after it unless ``name`` is given)."""

    def wrap(train: Callable[["Run"], None]) -> Experiment:
        return Experiment(name or train.__name__, train, dict(metrics), **settings)

    return wrap


class OutOfTime(Exception):
    """Raised by :meth:`Run.step` / :meth:`Run.epoch` once the night's time limit has passed (``--max-minutes``):
    the run ends as ``timeout``, keeping what it reported; a training function need not catch it."""


class Run:
    """One run of an experiment, as the training function sees it; it collects what the function reports."""

    def __init__(self, experiment: Experiment, variant: str, seed: int, budget: int, device: str = "cpu",
                 threads: int = 1, data_dir: Path | None = None, deadline: float | None = None,
                 overrides: Mapping | None = None, on_epoch: Callable[["Run"], None] | None = None,
                 precision: str = "fp32", compile: bool = False) -> None:
        if why := experiment.refuses(precision, compile):
            raise ConfigError(why)
        self.experiment, self.variant, self.seed, self.budget = experiment, variant, seed, budget
        self.precision, self.compile = precision, compile  # the arithmetic asked for (Experiment.precisions, compiles)
        self.on_epoch = on_epoch  # the runner's progress line after each epoch (not the function's concern)
        self._unsaid = False  # an epoch reported whose progress line waits for its time (see _say)
        self.settings = {**experiment.variants[variant], **(overrides or {})}  # overrides: a perturbation's
        self.device, self.threads, self.data_dir, self.deadline = device, threads, data_dir, deadline
        self.steps: dict[str, list[float]] = {}
        self.epochs: dict[str, list[float]] = {}
        self.epoch_seconds: list[float] = []  # each epoch's time: between reports, or as stated (epoch_time)
        self.epochs_timed: set[int] = set()  # the epochs whose time the function stated
        self._last_report = time.perf_counter()
        self.fingerprints: dict[str, str] = {}
        self.data_note = ""  # the data in words (describe_data): the report says what the numbers were measured on
        self._batches: dict[str, "hashlib._Hash"] = {}
        self.failure: str | None = None  # set by :meth:`fail`

    def fail(self, message: str) -> None:
        """This run failed (``message`` says how: "diverged at epoch 5, loss nan") without raising — for a function
        that trains several runs at once (``train_stacked``), where one member failing must not fail the others. What
        it reported so far is kept; its checks fail with the message."""
        self.failure = str(message)

    def time_left(self) -> float | None:
        """Seconds until the night's limit (None: no limit); a long loop may stop early and say so."""
        return None if self.deadline is None else max(0.0, self.deadline - time.monotonic())

    def step(self, **scalars: float) -> None:
        """One optimiser step's scalars (a loss, a learning rate, a gradient norm …): the replay compares them.
        Past the night's time limit it raises :class:`OutOfTime`: the run ends as ``timeout`` with what it reported."""
        self._say()
        self._check_time()
        for name, value in scalars.items():
            self.steps.setdefault(name, []).append(float(value))

    def epoch(self, **metrics: float) -> None:
        """One epoch's metrics, after it: every declared metric, each epoch (others are kept, not checked)."""
        missing = [m for m in self.experiment.metrics if m not in metrics]
        if missing:
            raise ConfigError(f"experiment {self.experiment.name!r}: epoch {self.epochs_done + 1} reported no "
                              f"{', '.join(missing)} (declared in its metrics)")
        self._say()
        for name, value in metrics.items():
            self.epochs.setdefault(name, []).append(float(value))
        now = time.perf_counter()
        self.epoch_seconds.append(now - self._last_report)
        self._last_report = now
        self._unsaid = True
        self._check_time()

    def _say(self) -> None:
        """The runner's progress line (``on_epoch``) of the epoch last reported, once its time is known: when the
        function states it (:meth:`epoch_time`), or goes on (its next step or epoch), or returns (:meth:`reported`).
        A loop that reports each epoch as it ends gets its line at once; one that reports after training (from a
        framework's history) gets each epoch's stated time, not the microseconds between its reports."""
        if self._unsaid:
            self._unsaid = False
            if self.on_epoch is not None:
                self.on_epoch(self)

    def reported(self) -> None:
        """The function returned (or raised): the runner's last progress line, if one still waits."""
        self._say()

    def epoch_time(self, seconds: float) -> None:
        """The epoch just reported took ``seconds`` — what the speed check times instead of the interval between this
        report and the previous one. For a function that reports its epochs after the fact (from a framework's
        history, a stack of seeds) or leaves its evaluation out of an epoch's time; one that reports each epoch as it
        ends need not call it."""
        if not self.epoch_seconds:
            raise ConfigError(f"experiment {self.experiment.name!r}: run.epoch_time(...) before any run.epoch(...): "
                              f"report the epoch first, then its time")
        if not isinstance(seconds, (int, float)) or not math.isfinite(seconds) or seconds < 0:
            raise ConfigError(f"experiment {self.experiment.name!r}: run.epoch_time({seconds!r}): expected a finite "
                              f"number of seconds, 0 or more")
        self.epoch_seconds[-1] = float(seconds)
        self.epochs_timed.add(len(self.epoch_seconds))
        self._say()

    def _check_time(self) -> None:
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise OutOfTime(f"the night's time limit passed during epoch {self.epochs_done + 1} of "
                            f"{self.experiment.name} {self.variant} seed {self.seed}")

    @property
    def epochs_done(self) -> int:
        return len(next(iter(self.epochs.values()), []))

    def inputs(self, **arrays) -> None:
        """Declare what the run trains and evaluates on (arrays, tensors, bytes, files): each is fingerprinted
        whole, so a changed data set is named even where no golden run reaches it."""
        for name, value in arrays.items():
            self.fingerprints[name] = fingerprint(value)

    def describe_data(self, text: str) -> None:
        """The data the run trained and evaluated on, in words a reader needs beside its numbers: which copy, which
        split ("images.npz; first 1,000 of the 10,000 test images"). The report prints it; the
        fingerprints of :meth:`inputs` say whether it changed, not what it is."""
        if not isinstance(text, str):
            raise ConfigError(f"experiment {self.experiment.name!r}: run.describe_data({text!r}): expected text")
        self.data_note = " ".join(text.split())[:300]

    def batches(self, iterable: Iterable, name: str = "train") -> "Batches":
        """``iterable`` (a DataLoader, a generator of batches) handed to the step loop unchanged, every batch of every
        epoch fingerprinted as the loop receives it: the data path at full scale."""
        return Batches(iterable, self._batches.setdefault(name, hashlib.sha256()))

    def data_path_fingerprints(self) -> dict[str, str]:
        return {name: digest.hexdigest() for name, digest in self._batches.items()}


class Batches:
    """A step loop's batches, passed through and fingerprinted; anything else is the wrapped object's
    (``len(loader)``, ``loader.dataset``)."""

    def __init__(self, wrapped: Iterable, digest) -> None:
        self._wrapped, self._digest = wrapped, digest

    def __iter__(self):
        for batch in self._wrapped:
            for part in batch if isinstance(batch, (tuple, list)) else (batch,):
                self._digest.update(fingerprint(part).encode())
            yield batch

    def __len__(self) -> int:
        return len(self._wrapped)

    def __getattr__(self, name: str):
        return getattr(self._wrapped, name)


def fingerprint(value) -> str:
    """sha256 of an array's (or tensor's) dtype, shape and bytes, of bytes, or of a file's content."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return hashlib.sha256(bytes(value)).hexdigest()
    if isinstance(value, (str, Path)) and Path(value).is_file():
        return hashlib.sha256(Path(value).read_bytes()).hexdigest()
    if hasattr(value, "detach"):  # a torch tensor, without importing torch
        value = value.detach().cpu().numpy()
    elif hasattr(value, "numpy") and not hasattr(value, "tobytes"):  # a TensorFlow or JAX array
        value = value.numpy()
    if hasattr(value, "tobytes") and hasattr(value, "shape"):
        import numpy as np

        array = np.ascontiguousarray(value)
        return hashlib.sha256(f"{array.dtype}{array.shape}".encode() + array.tobytes()).hexdigest()
    if isinstance(value, (int, float, str)) and not (isinstance(value, float) and math.isnan(value)):
        return hashlib.sha256(repr(value).encode()).hexdigest()
    raise ConfigError(f"cannot fingerprint a {type(value).__name__}: declare arrays, tensors, bytes or files")


def _file_module(path: Path):
    """The module of an experiment file, executed once per version of the file (the sha256 of its content) in this
    process: pytest lists a profile's cases and then runs them, and a file's top level (a print, a data set read at
    import) should not run twice for that. An edited file is executed again."""
    module_name = f"_trainguard_experiment_{hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]}"
    version = hashlib.sha256(path.read_bytes()).hexdigest()
    loaded = sys.modules.get(module_name)
    if loaded is not None and getattr(loaded, "__trainguard_version__", None) == version:
        return loaded
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(path.resolve().parent))  # the adapter's own imports (the user's script beside it)
    try:
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(module_name, None)  # half executed: never served again
        raise
    finally:
        sys.path.remove(str(path.resolve().parent))
    module.__trainguard_version__ = version
    return module


def load_experiment(target: str) -> Experiment:
    """``path/to/file.py:name`` (or ``module:name``) → the Experiment object it names; a ConfigError naming the
    target otherwise."""
    where, _, attribute = target.rpartition(":")
    if not where or not attribute:
        raise ConfigError(f"experiment {target!r}: expected FILE.py:NAME or MODULE:NAME")
    path = Path(where)
    try:
        if path.suffix == ".py":
            if not path.is_file():
                raise ConfigError(f"experiment {target!r}: {path} does not exist")
            module = _file_module(path)
        else:
            module = importlib.import_module(where)
    except ConfigError:
        raise
    except Exception as exc:  # noqa: BLE001 — the user's module: its error, named
        raise ConfigError(f"experiment {target!r}: importing it raised {type(exc).__name__}: {exc}") from None
    found = getattr(module, attribute, None)
    if not isinstance(found, Experiment):
        raise ConfigError(f"experiment {target!r}: {attribute!r} is {type(found).__name__}, not a trainguard "
                          f"Experiment (decorate the training function with @trainguard.experiment(...))")
    return found
