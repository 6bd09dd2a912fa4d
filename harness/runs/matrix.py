"""The runs of one profile: each (model, seed) trained once (or served from the result cache), every budget
a snapshot of that one run.

:class:`Matrix` owns the data, the result cache, the run log and the environment; it has no check logic and
reads no baseline (the check kinds in :mod:`trainguard.checks` do, through a CheckSession over it). The
training of one run — announce, log, train, cache — is :mod:`trainguard.runs.training`, which every executor calls;
a Matrix itself only reads (:meth:`Matrix.history`).
"""

from __future__ import annotations

import functools
import os
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..stores import data
from ..engines import engine
from ..core.environment import git_commit, versions
from ..core.history import EpochRecord, History
from ..stores.results import ResultStore, code_fingerprint
from ..stores.references import References
from ..stores.runlog import RunLog
from ..core.spec import seed_list  # noqa: F401 (re-exported: callers import it from here)
from ..core.spec import ConfigError, Profile, RunSpec
from ..core.spec import model_search_paths  # noqa: F401 (re-exported: callers import it from here)
from .options import Options, RayResources  # noqa: F401 (re-exported: the former trainguard.session)

Printer = Callable[[str], None]


@dataclass
class Matrix:
    options: Options
    printer: Printer = print
    progress_bar: bool = False  # a tqdm bar per run (the CLI on a terminal); else one line per epoch
    _dataset: data.Dataset | None = None
    histories: dict[tuple[str, int], History] = field(default_factory=dict)
    trained: list[tuple[str, int]] = field(default_factory=list)  # what this process trained (not cached)
    started: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        self.profile = self.options.profile
        if self.options.baselines_dir is None:
            from ..core.spec import baselines_dir_for

            self.options.baselines_dir = baselines_dir_for(self.profile)
        self.threads_before = current_threads()  # given back by close(): an in-process night must not leak its count
        self.threads, self.threads_note = apply_threads(self.options.threads, self.profile)
        self.device = engine.resolve_device(self.options.device)
        self.device_class = engine.device_class(self.device, engine.check_precision(self.options.precision),
                                                self.options.compile, self.options.stack_seeds)
        self.store = ResultStore(self.options.results_dir)
        self.log = RunLog(self.options.run_log)
        resolve_user_models(self.profile)
        self.seeds = tuple(self.options.seeds) if self.options.seeds else self.profile.check_seeds
        self.seed = self.seeds[0]  # the seed the figures and --compare show
        overlap = sorted(set(self.seeds) & set(self.profile.baseline_seeds)) if "baseline" in self.profile.checks else []
        if overlap and not self.options.allow_baseline_seeds:
            raise ConfigError(
                f"seed(s) {', '.join(map(str, overlap))} are in profile {self.profile.name}'s baseline_seeds: a run checked "
                f"against a baseline that contains it cannot fail, so it proves nothing. Check held-out seeds (the "
                f"profile's check_seeds {list(self.profile.check_seeds)}, or others), or pass --tg-allow-baseline-seeds "
                f"to reproduce a baseline seed on purpose")

    def close(self) -> None:
        """Give the process back its torch thread count: a later night in the same process (pytest's in-process
        runs, a notebook) would otherwise train at this night's count and round differently."""
        import torch

        if torch.get_num_threads() != self.threads_before:
            torch.set_num_threads(self.threads_before)

    def redirect_writes(self) -> str | None:
        """Before an update: never rewrite the baselines shipped with trainguard from another directory; say where
        the update goes instead (spec.writable_baselines_dir)."""
        from ..core.spec import writable_baselines_dir

        source = Path(self.options.baselines_dir)
        target = writable_baselines_dir(source)
        if target == source:
            return None
        target.mkdir(parents=True, exist_ok=True)
        for name in ("published.csv",):  # the report's table travels with the new copy
            if (source / name).exists() and not (target / name).exists():
                shutil.copy(source / name, target / name)
        self.options.baselines_dir = target
        self._baseline_read = None
        return (f"the baselines shipped with trainguard are not rewritten: writing to {target} (found from this "
                f"directory from now on)")

    # ------------------------------------------------------------------ data and training

    @property
    def references(self) -> References:
        """Where this night's stored references live (trainguard.stores.references): the baseline of its device
        class, the golden runs and inputs fingerprints of its device type (and the declared experiments' folder)."""
        return References(Path(self.options.baselines_dir), self.profile.name, self.device_class, self.device.type)

    @property
    def dataset(self) -> data.Dataset:
        if self._dataset is None:
            self._dataset = data.for_profile(self.profile, self.options.data_dir, self.options.allow_download)
        return self._dataset

    @functools.cached_property
    def data_fingerprint(self) -> str:
        """The hash of the data this session trains and evaluates on (part of every run's key)."""
        return self.dataset.fingerprint()

    def run_spec(self, model: str, seed: int) -> RunSpec:
        return RunSpec(profile=self.profile.name, model=model, seed=seed, epochs=self.profile.max_epochs,
                       training=self.profile.training(model), data_fingerprint=self.data_fingerprint,
                       device_class=self.device_class,
                       code_fingerprint=code_fingerprint(model, self.options.stack_seeds),
                       versions=tuple(sorted(versions().items())),
                       stack=self.stack_group(seed) if self.options.stack_seeds else ())

    def stack_group(self, seed: int) -> tuple[int, ...]:
        """With --stack-seeds, the seeds trained together with ``seed``: the checked seeds, or the
        baseline seeds, whichever holds it (the same group every time, so the cache key is stable)."""
        for group in (self.seeds, self.profile.baseline_seeds):
            if seed in group:
                return tuple(sorted(group))
        return (seed,)

    def history(self, model: str, seed: int | None = None) -> History:
        """The full-length history of (model, seed) as stored: from memory, else the result cache, else a
        ``missing`` run (not kept: the execute stage may deliver it later). Reading never trains — a run is
        trained by :func:`trainguard.runs.training.deliver`, whichever executor calls it."""
        seed = self.seed if seed is None else seed
        if (model, seed) in self.histories:
            return self.histories[(model, seed)]
        spec = self.run_spec(model, seed)
        history = self.store.get(spec)
        if history is None:
            return self._not_trained(model, seed, "missing",
                                     f"no stored result (looked for {self.store.path(spec) if self.store.root else 'a result cache'}); "
                                     f"run `trainguard run --profile {self.profile.cli_name}` first")
        self.printer(f"[trainguard] {model} seed {seed}: cached result {self.store.path(spec)}")
        self.histories[(model, seed)] = history
        return history

    def _not_trained(self, model: str, seed: int, status: str, message: str) -> History:
        return History.not_trained(model, seed, engine.device_name(self.device), status, message)

    def preload(self, histories: dict[tuple[str, int], History]) -> None:
        """Use these histories (from a run log) instead of the cache or training."""
        self.histories.update(histories)

    def record(self, model: str, budget: int, seed: int | None = None) -> EpochRecord:
        return self.history(model, seed).at(budget)

    def training_time(self) -> str:
        """Seconds spent in training epochs (evaluation excluded) by the runs this process trained."""
        trained = [self.histories[key] for key in self.trained if key in self.histories]
        seconds = sum(e.seconds for h in trained for e in h.epochs)
        return f"{seconds:.1f} s in {len(trained)} run(s) trained by this process" if trained else "none (all cached)"

    def runs_versions(self) -> dict[str, str]:
        """The versions the checked seeds' runs were trained with — each run records them, and a report
        re-rendered from a run log on another machine must say the runs', not its own — where runs disagree the
        values joined with " / "; this process's for what no run recorded."""
        recorded = [h.spec["versions"] for (_, seed), h in sorted(self.histories.items())
                    if seed in self.seeds and "versions" in h.spec]
        here = versions()
        names = sorted({n for r in recorded for n in r}, key=lambda n: (list(here).index(n) if n in here else len(here), n))
        return {name: " / ".join(sorted({r[name] for r in recorded if name in r})) for name in names} or here

    def environment(self) -> dict:
        """The report's header: the profile, the machine, and — where it trains models — their seeds and data (a
        profile of experiments alone leaves those to each experiment's section: each reads its own)."""
        found = {"profile": f"{self.profile.name} — {self.profile.description}".rstrip(" —"),
                 "device": f"{engine.device_name(self.device)} (class {self.device_class})"}
        if self.profile.models:
            found.update(self._models_environment())
        found.update({
            "versions": ", ".join(f"{k} {v}" for k, v in self.runs_versions().items()),
            "threads": self.threads_note,
            "commit": git_commit(),
            "wall time": f"{time.time() - self.started:.1f} s",
            "training time": self.training_time(),
            "python": sys.executable,
        })
        return found

    def _models_environment(self) -> dict:
        ds = self.dataset
        return {
            "seeds": f"{seed_list(self.seeds)} (held out of the baseline's {seed_list(self.profile.baseline_seeds)})"
            if not set(self.seeds) & set(self.profile.baseline_seeds) else
            f"{seed_list(self.seeds)} (IN the baseline: --tg-allow-baseline-seeds; its checks cannot fail)",
            "data": f"{ds.name} from {ds.source}; {ds.verification}",
            "train images": f"{len(ds.x_train):,}" + (f" ({'; '.join(ds.notes)})" if ds.notes else ""),
            "test split": ds.test_split,
        }


def resolve_user_models(profile: Profile) -> None:
    """A profile's own models (``"mynet:TinyNet"``, entry points) imported now, from its search paths: a wrong path
    is an error naming the profile before anything trains (on sys.path only while imported)."""
    from .. import models

    for name in (m for m in profile.models if m not in models.MODEL_NAMES):
        try:
            models.resolve(name, model_search_paths(profile))
            _built_once(name, model_search_paths(profile))
        except models.ModelError as exc:
            raise ConfigError(f"profile {profile.source or profile.name}: {exc}") from None


def _built_once(name: str, search) -> None:
    """The factory called once and its return checked (an ``nn.Module``), before anything trains: a factory that
    raises or returns something else is one sentence at plan time, not a failure when its run starts. The global
    random state is put back afterwards: building draws initial weights."""
    import torch

    from .. import models

    with torch.random.fork_rng(devices=[]):
        try:
            models.build(name, search)
        except models.ModelError:
            raise
        except Exception as exc:  # noqa: BLE001 — the user's factory: its error, named, with where it was raised
            import traceback

            frame = traceback.extract_tb(exc.__traceback__)[-1]
            raise models.ModelError(f"model {name!r}: calling it raised {type(exc).__name__}: {exc} "
                                    f"({frame.filename}:{frame.lineno})") from None


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def current_threads() -> int:
    import torch

    return torch.get_num_threads()


def apply_threads(requested: int | None, profile: Profile) -> tuple[int, str]:
    """Set torch's thread count for this process's runs (--threads, else the profile's ``threads``; a declared
    experiment's runs get the same count as run.threads) and say where it came from. The count is arithmetic, not only speed: sums are
    split per thread, so runs at another count round differently from the baseline's; a machine with fewer
    cores still computes the same numbers, only slower, and is told so."""
    import torch

    threads = requested or profile.threads
    if threads is None:
        threads = torch.get_num_threads()
        source = "torch's default here (the profile does not pin it)"
    else:
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
        source = "--threads" if requested else f"profile {profile.name}"
    cores = available_cores()
    note = f"{threads} ({source}; {cores} core(s) available)"
    if cores < threads:
        note += ": fewer cores than threads, so runs are slower but compute the same numbers"
    return threads, note


def describe_stop(history: History) -> str:
    """Why a run has no (complete) result, in one line."""
    if history.status == "missing":
        return f"{history.model} seed {history.seed}: {history.message}"
    return (f"{history.model} seed {history.seed}: run {history.status} at epoch {history.failed_epoch} "
            f"({history.message})")
