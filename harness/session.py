"""The matrix of one profile: trains each (model, seed) once, serves every budget, runs the checks.

This is the library object the pytest plugin and the CLI are thin shells over
(like pytest-benchmark's session object): it owns the data, the result cache,
the baselines and the verdicts.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import shutil
import statistics
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from . import baselines as bl
from . import compare, data, engine, stats
from .environment import git_commit, versions
from .history import EpochRecord, History
from .results import ResultStore, code_fingerprint
from .runlog import RunLog
from .spec import METRIC_LABELS, METRICS, BandCheck, ConfigError, Profile, RunSpec

Printer = Callable[[str], None]


@dataclass
class Options:
    profile: Profile
    device: str = "auto"
    seeds: tuple[int, ...] | None = None  # the seeds to train and check; None = the profile's check_seeds
    allow_baseline_seeds: bool = False  # a seed of the baseline may be checked (it cannot fail against itself)
    strict: bool = False  # a missing baseline or a data mismatch is a failed check, not a skip (CI=true)
    data_dir: Path | None = None
    baselines_dir: Path | None = None  # None: the profile's (spec.baselines_dir_for)
    results_dir: Path | None = Path(".trainguard/results")
    run_log: Path | None = Path(".trainguard/runlog.jsonl")  # JSON-lines events of every training run
    threads: int | None = None  # torch/TensorFlow threads; None: the profile's ``threads`` (apply_threads)
    precision: str = "fp32"  # fp32 | bf16 (autocast); each its own baseline class
    compile: bool = False  # torch.compile the model; its own baseline class
    stack_seeds: bool = False  # train a model's seeds at once (trainguard.stacked); its own baseline class
    allow_download: bool = True
    history_dir: Path | None = None  # the history store (trainguard.ledger); None: no comparison between runs
    fail_on: tuple[str, ...] = ()  # "drift", "speed": those flags fail the run
    replay: bool = True  # trainguard run replays the profile's golden runs first (trainguard.replay)


@dataclass
class Matrix:
    options: Options
    printer: Printer = print
    progress_bar: bool = False  # a tqdm bar per run (the CLI on a terminal); else one line per epoch
    allow_training: bool = True  # False: report from stored results only (``trainguard report``)
    _dataset: data.Dataset | None = None
    histories: dict[tuple[str, int], History] = field(default_factory=dict)
    trained: list[tuple[str, int]] = field(default_factory=list)  # what this process trained (not cached)
    started: float = field(default_factory=time.time)
    _baseline_read: tuple | None = field(default=None, repr=False)  # (file stamps, table): see baseline()

    def __post_init__(self) -> None:
        self.profile = self.options.profile
        if self.options.baselines_dir is None:
            from .spec import baselines_dir_for

            self.options.baselines_dir = baselines_dir_for(self.profile)
        self.threads, self.threads_note = apply_threads(self.options.threads, self.profile)
        self.device = engine.resolve_device(self.options.device)
        self.device_class = engine.device_class(self.device, engine.check_precision(self.options.precision),
                                                self.options.compile, self.options.stack_seeds)
        self.store = ResultStore(self.options.results_dir)
        self.log = RunLog(self.options.run_log)
        self._resolve_user_models()
        self.seeds = tuple(self.options.seeds) if self.options.seeds else self.profile.check_seeds
        self.seed = self.seeds[0]  # the seed the figures and --compare show
        overlap = sorted(set(self.seeds) & set(self.profile.baseline_seeds)) if "baseline" in self.profile.checks else []
        mnist = self.profile.mnist
        if mnist is not None and not mnist.synthetic:
            overlap += [f"MNIST {s}" for s in sorted(set(mnist.seeds) & set(mnist.baseline_seeds))]
        if overlap and not self.options.allow_baseline_seeds:
            raise ConfigError(
                f"seed(s) {', '.join(map(str, overlap))} are in profile {self.profile.name}'s baseline_seeds: a run checked "
                f"against a baseline that contains it cannot fail, so it proves nothing. Check held-out seeds (the "
                f"profile's check_seeds {list(self.profile.check_seeds)}, or others), or pass --tg-allow-baseline-seeds "
                f"to reproduce a baseline seed on purpose")

    def redirect_writes(self) -> str | None:
        """Before an update: never rewrite the baselines shipped with trainguard from another directory; say where
        the update goes instead (spec.writable_baselines_dir)."""
        from .spec import writable_baselines_dir

        source = Path(self.options.baselines_dir)
        target = writable_baselines_dir(source)
        if target == source:
            return None
        target.mkdir(parents=True, exist_ok=True)
        for name in ("published.csv", "published-mnist.csv"):  # the report's tables travel with the new copy
            if (source / name).exists() and not (target / name).exists():
                shutil.copy(source / name, target / name)
        self.options.baselines_dir = target
        self._baseline_read = None
        return (f"the baselines shipped with trainguard are not rewritten: writing to {target} (found from this "
                f"directory from now on)")

    def _resolve_user_models(self) -> None:
        """A profile's own models (``"mynet:TinyNet"``, entry points) are imported now, with the profile file's
        directory and the working directory on sys.path: a wrong path is an error before anything trains."""
        from . import models

        custom = [m for m in self.profile.models if m not in models.MODEL_NAMES]
        if not custom:
            return
        source = Path(self.profile.source) if self.profile.source else None
        for directory in ([source.parent.resolve()] if source and source.suffix == ".toml" else []) + [Path.cwd()]:
            if str(directory) not in sys.path:
                sys.path.insert(0, str(directory))
        for name in custom:
            try:
                models.resolve(name)
            except models.ModelError as exc:
                raise ConfigError(f"{self.profile.source or self.profile.name}: {exc}") from None

    # ------------------------------------------------------------------ data and training

    @property
    def dataset(self) -> data.Dataset:
        if self._dataset is None:
            p = self.profile
            if p.dataset == "synthetic":
                full = data.synthetic("cifar10", p.train_per_class or 50, max(1, (p.test_images or 100) // 10))
                self._dataset = data.reduce(full, None, p.test_images)
            else:
                full = data.load(p.dataset, self.options.data_dir, allow_download=self.options.allow_download)
                self._dataset = data.profile_view(full, p.train_per_class, p.test_images, p.val_per_class,
                                                  f"profile {p.name}")
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
        """The full-length history of (model, seed): from memory, else the result cache, else trained now."""
        seed = self.seed if seed is None else seed
        if (model, seed) in self.histories:
            return self.histories[(model, seed)]
        spec = self.run_spec(model, seed)
        history = self.store.get(spec)
        if history is not None:
            self.printer(f"[trainguard] {model} seed {seed}: cached result {self.store.path(spec)}")
        elif not self.allow_training:
            history = History(model, seed, engine.device_name(self.device), 0, status="missing",
                              message=f"no stored result (looked for {self.store.path(spec) if self.store.root else 'a result cache'}); "
                                      f"run `trainguard run --profile {self.profile.name}` first")
        elif self.options.stack_seeds:
            self._train_stack(model, spec.stack)
            return self.histories[(model, seed)]
        else:
            with self.store.lock(spec, on_wait=self.printer):
                history = self.store.get(spec)  # another process may have trained it while we waited
                if history is None:
                    history = self._train(model, seed, spec)
                else:
                    self.printer(f"[trainguard] {model} seed {seed}: result from another process {self.store.path(spec)}")
        self.histories[(model, seed)] = history
        return history

    def _announce(self, what: str, spec: RunSpec) -> int:
        """Say what is about to train; return its batches per epoch (for the progress bar)."""
        self.printer(f"[trainguard] training {what} for {spec.epochs} epochs on {self.device} "
                     f"({len(self.dataset.x_train):,} train / {len(self.dataset.x_test):,} test images)")
        return -(-len(self.dataset.x_train) // spec.training.batch_size)

    def _log_start(self, spec: RunSpec) -> str:
        run = f"{spec.key()}-{uuid.uuid4().hex[:8]}"  # the key, plus a suffix: two runs of one spec stay apart
        self.log.run_start(run, spec.model, spec.seed, key=spec.key(), profile=spec.profile, epochs=spec.epochs,
                           device=engine.device_name(self.device), device_class=spec.device_class,
                           training=vars(spec.training), data={"fingerprint": spec.data_fingerprint,
                                                               "test_split": self.dataset.test_split},
                           versions=dict(spec.versions), code=spec.code_fingerprint, commit=git_commit(),
                           **({"stack": list(spec.stack)} if spec.stack else {}))
        return run

    def _finish_run(self, run: str, spec: RunSpec, history: History) -> None:
        """Stamp, log and cache a finished run (a stopped one is logged and reported, never cached)."""
        history.key, history.spec = spec.key(), {"profile": spec.profile, "device_class": spec.device_class,
                                                  "epochs": spec.epochs, "training": vars(spec.training),
                                                  **({"stack": list(spec.stack)} if spec.stack else {})}
        self.log.run_stop(run, history)
        if history.completed:
            self.store.put(spec, history)
        else:
            self.printer(f"[trainguard] {spec.model} seed {spec.seed}: {history.status} at epoch "
                         f"{history.failed_epoch}: {history.message}")
        self.trained.append((spec.model, spec.seed))
        self.histories[(spec.model, spec.seed)] = history

    def _train_stack(self, model: str, seeds: tuple[int, ...]) -> None:
        """Train ``seeds`` of ``model`` at once (--stack-seeds), under every seed's result lock."""
        import contextlib

        from .progress import RunProgress
        from .stacked import train_stacked

        specs = [self.run_spec(model, seed) for seed in seeds]
        epochs = self.profile.max_epochs
        with contextlib.ExitStack() as locks:
            for spec in specs:  # always in sorted seed order: no lock-order deadlock between processes
                locks.enter_context(self.store.lock(spec, on_wait=self.printer))
            cached = [self.store.get(spec) for spec in specs]  # another process may have trained them
            if all(h is not None for h in cached):
                self.histories.update({(model, h.seed): h for h in cached})
                return
            label = f"{model} seeds {seed_list(seeds)}"
            batches = self._announce(f"{label} stacked", specs[0])
            runs = {spec.seed: self._log_start(spec) for spec in specs}

            def on_epoch(history: History, record: EpochRecord) -> None:
                self.log.epoch_end(runs[history.seed], record)
                progress.epoch(history, record, label=f"{model} seed {history.seed}")

            with RunProgress(label, epochs, batches, self.printer, self.progress_bar) as progress:
                try:
                    histories = train_stacked(model, self.dataset, specs[0].training, epochs, list(seeds), self.device,
                                              on_epoch=on_epoch, on_batch=progress.batch,
                                              precision=self.options.precision, compile_model=self.options.compile)
                except KeyboardInterrupt:
                    for run in runs.values():
                        self.log.event("run_stop", run=run, status="interrupted")
                    raise
            for spec, history in zip(specs, histories):
                self._finish_run(runs[spec.seed], spec, history)

    def _train(self, model: str, seed: int, spec: RunSpec) -> History:
        from .progress import RunProgress

        epochs = self.profile.max_epochs
        batches = self._announce(f"{model} seed {seed}", spec)
        run = self._log_start(spec)

        def on_epoch(history: History, record: EpochRecord) -> None:
            self.log.epoch_end(run, record)
            progress.epoch(history, record)

        with RunProgress(f"{model} seed {seed}", epochs, batches, self.printer, self.progress_bar) as progress:
            try:
                history = engine.train(model, self.dataset, spec.training, epochs, seed, self.device,
                                       on_epoch=on_epoch, on_batch=progress.batch,
                                       precision=self.options.precision, compile_model=self.options.compile)
            except KeyboardInterrupt:
                self.log.event("run_stop", run=run, status="interrupted")
                raise
        self._finish_run(run, spec, history)
        return history

    def preload(self, histories: dict[tuple[str, int], History]) -> None:
        """Use these histories (from a run log) instead of the cache or training."""
        self.histories.update(histories)

    def record(self, model: str, budget: int, seed: int | None = None) -> EpochRecord:
        return self.history(model, seed).at(budget)

    # ------------------------------------------------------------------ baselines

    def baseline_file(self) -> Path:
        return bl.baseline_path(self.options.baselines_dir, self.profile.name, self.device_class)

    def baseline(self) -> bl.BaselineTable | None:
        """The measured baseline (None if absent), read once and again only when its files change
        (checks, report, trend and statistics all ask for it; --tg-update-baselines rewrites it)."""
        path = self.baseline_file()
        if not path.exists():
            return None
        stamp = tuple((p.stat().st_mtime_ns, p.stat().st_size) if p.exists() else None
                      for p in (path, bl.meta_path(path), bl.seeds_path(path)))
        if self._baseline_read is None or self._baseline_read[0] != stamp:
            self._baseline_read = (stamp, bl.load_measured(path, self.profile.models, self.profile.budgets))
        return self._baseline_read[1]

    def published(self) -> dict:
        path = Path(self.options.baselines_dir) / "published.csv"
        return bl.load_published(path) if path.exists() else {}

    def measure_baseline(self) -> dict[tuple[str, int], list[dict[str, float]]]:
        """Every baseline seed's per-epoch curve, per model (trained now where not cached)."""
        curves = {}
        for model in self.profile.models:
            for seed in self.profile.baseline_seeds:
                history = self.history(model, seed)
                if not history.completed:
                    raise RuntimeError(f"cannot write a baseline: {model} seed {seed} {history.status} "
                                       f"({history.message})")
                curves[(model, seed)] = bl.curve(history)
        return curves

    def update_baseline(self, source_logs=None) -> list[str]:
        """Train every baseline seed (or take it from the cache or ``preload``), rewrite the measured
        baseline, return what changed. ``source_logs``: the run logs the runs came from, for the metadata."""
        path = self.baseline_file()
        old = None
        if path.exists():
            try:
                old = bl.load_measured(path, (), ())
            except ConfigError:
                old = None
        curves = self.measure_baseline()
        ds = self.dataset
        meta = {
            "profile": self.profile.name,
            "device_class": self.device_class,
            "device_name": engine.device_name(self.device),
            "seeds": list(self.profile.baseline_seeds),
            "versions": versions(),
            "threads": self.threads,
            "date": dt.date.today().isoformat(),
            "commit": git_commit(),
            "data": {"source": Path(ds.source).name, "verification": ds.verification,
                     "test_split": ds.test_split, "notes": ds.notes, "fingerprint": self.data_fingerprint},
            "eval_images": {"train": len(ds.x_train), "test": len(ds.x_test),
                            **({"val": len(ds.x_val)} if ds.x_val is not None else {})},
            "code_fingerprint": {model: code_fingerprint(model) for model in self.profile.models},
            "runs": {f"{m}-seed{s}": {"key": h.key, "device": h.device}
                     for (m, s), h in sorted(self.histories.items()) if s in self.profile.baseline_seeds},
        }
        if source_logs:
            meta["source_logs"] = [str(p) for p in source_logs]
        table = bl.write_measured(path, curves, self.profile.models, self.profile.budgets, meta)
        budgets = self.profile.budgets
        return bl.diff_cells(old.summary(budgets) if old else None, table.summary(budgets))

    # ------------------------------------------------------------------ checks

    def run_failures(self, models, budget: int, seed: int | None = None) -> list[compare.Verdict]:
        """A failing verdict for each model whose run stopped (diverged, out of memory) before ``budget``."""
        failures = []
        for model in models:
            history = self.history(model, seed)
            if len(history.epochs) < budget:
                failures.append(compare.Verdict("run", f"{model}-{budget}", False,
                                                f"{describe_stop(history)}; no {budget}-epoch result",
                                                model=model, budget=budget))
        return failures

    def band_check_count(self) -> int:
        """How many band checks a whole run of the profile makes: the false-alarm rate is split over them."""
        from .overfit import band_check_count

        cifar = len(self.profile.band_checks())
        return cifar + (band_check_count(self.profile.mnist) if self.profile.mnist else 0)

    def per_check_alpha(self) -> float:
        return stats.per_check_alpha(self.profile.statistics.false_alarm_rate, self.band_check_count())

    def band(self, table: bl.BaselineTable, model: str, budget: int, metric: str, k: int | None = None) -> stats.Band:
        """The derived band of one cell and metric for the mean of ``k`` seeds (default: this run's)."""
        return self.check_band(table, BandCheck(model, budget, metric, metric, budget, self.profile.statistics.window), k)

    def check_band(self, table: bl.BaselineTable, check: BandCheck, k: int | None = None) -> stats.Band:
        """The derived band of one band check for the mean of ``k`` seeds (default: this run's)."""
        return stats.derive_band(table.values(check.model, check.end, check.source, check.window), k or len(self.seeds),
                                 self.per_check_alpha(), table.resolution(check.source), self.profile.statistics.power)

    def check_value(self, check: BandCheck, seeds: tuple[int, ...] | None = None) -> float:
        """What a band check reads: its series averaged over its window, then over the seeds."""
        return statistics.fmean(stats.window_mean([e.metric(check.source) for e in self.history(check.model, seed).epochs],
                                                  check.end, check.window) for seed in (seeds or self.seeds))

    def checked_value(self, model: str, budget: int, metric: str, seeds: tuple[int, ...] | None = None) -> float:
        """The statistic a cell's band check reads: ``metric`` averaged over the window ending at ``budget``,
        then over the seeds."""
        return self.check_value(BandCheck(model, budget, metric, metric, budget, self.profile.statistics.window), seeds)

    def baseline_verdicts(self, model: str, budget: int, table: bl.BaselineTable) -> list[compare.Verdict]:
        failed = [v for seed in self.seeds for v in self.run_failures([model], budget, seed)]
        if failed:
            return failed
        failed = [v for seed in self.seeds for v in self.evaluation_verdicts(model, budget, seed)]
        source = f"{table.path.parent.name}/{table.path.name} (seeds {seed_list(table.seeds)})"
        label = (lambda c: f"{METRIC_LABELS[c.source]} (mean of epochs {c.end - c.window + 1}–{c.end})") \
            if self.profile.statistics.window > 1 else (lambda c: METRIC_LABELS[c.source])
        return failed + [compare.check_band(f"{model}-{budget}", check.metric, label(check), self.check_value(check),
                                            self.check_band(table, check), source, model=model, budget=budget)
                         for check in self.profile.band_checks() if check.model == model and check.budget == budget]

    def evaluation_verdicts(self, model: str, budget: int, seed: int) -> list[compare.Verdict]:
        """A failing verdict if the run's evaluation was not repeatable (engine.evaluation_repeat_diff);
        nothing when it was, or when the run predates the measurement."""
        final = self.history(model, seed).epochs[-1]
        diff = final.extra.get("eval_repeat_diff")
        if diff is None or diff <= 1e-6 * max(1.0, abs(final.test_loss)):
            return []
        return [compare.Verdict("run", f"{model}-{budget}", False,
                                f"{model} seed {seed}: evaluating the trained model twice on the same images gave test "
                                f"losses {diff:.4g} apart — evaluation is random (dropout left on, model.eval() "
                                f"forgotten, or test-time augmentation)", model=model, budget=budget,
                                metric="eval_repeat_diff", measured=diff, expected=0.0)]

    def published_seeds(self) -> tuple[int, ...]:
        return self.profile.published.seeds or self.seeds

    def published_verdicts(self, model: str, budget: int) -> list[compare.Verdict]:
        """The cell's mean over the published check's seeds against the report's table, per banded metric."""
        published = self.published()
        if not published:
            path = Path(self.options.baselines_dir) / "published.csv"
            return [compare.Verdict("published", f"{model}-{budget}", False,
                                    f"the published check needs {path}, which is missing or empty "
                                    f"(it ships with trainguard in baselines/; pass --baselines-dir)",
                                    model=model, budget=budget)]
        records = []
        for seed in self.published_seeds():
            if failed := self.run_failures([model], budget, seed):
                return failed
            records.append(self.record(model, budget, seed))
        verdicts = []
        for metric in METRICS:
            band, value = self.profile.published.band(metric), published.get((model, budget, metric))
            if band is not None and value is not None:
                verdicts.append(compare.check_against_published(model, budget, metric,
                                                                [r.metric(metric) for r in records], value, band))
        return verdicts

    def data_matches_baseline(self, table: bl.BaselineTable) -> str | None:
        """None if the baseline was measured on this exact data; else why not."""
        recorded = table.meta.get("data", {}).get("fingerprint")
        self.dataset  # noqa: B018
        if recorded != self.data_fingerprint:
            return (f"{table.path} was measured on other data ({table.meta.get('data', {}).get('test_split')}, "
                    f"fingerprint {str(recorded)[:12]}) than this run ({self.dataset.test_split}, "
                    f"fingerprint {self.data_fingerprint[:12]}); regenerate it with `trainguard baselines update` (pytest: --tg-update-baselines)")
        return None

    def mnist_experiment(self, log: bool = True):
        """Experiment 1 for this session (None if the profile has no [mnist] section); its MNIST data is
        loaded now, so a data problem surfaces here. ``log=False``: its runs stay out of the run log."""
        from . import overfit

        config = self.profile.mnist
        if config is None:
            return None
        mnist = overfit.load_mnist(config, self.options.data_dir, allow_download=self.options.allow_download)
        return overfit.OverfitExperiment(config, mnist, self.device, log=self.log if log else None,
                                         profile=self.profile.name, threads=self.threads)

    def published_mnist(self) -> dict[str, float]:
        path = Path(self.options.baselines_dir) / "published-mnist.csv"
        return bl.load_published_mnist(path) if path.exists() else {}

    def mnist_baseline(self, framework: str):
        """The per-seed MNIST baseline of ``framework`` (None if absent; a malformed one raises ConfigError)."""
        from .overfit import distribution_path, load_distribution

        device_class = self.device.type if framework == "torch" else "cpu"  # MNIST runs are always fp32
        return load_distribution(distribution_path(self.options.baselines_dir, self.profile.name, framework, device_class))

    def mnist_band_verdicts(self, experiment, framework: str) -> list[compare.Verdict]:
        return experiment.band_verdicts(framework, self.mnist_baseline(framework), self.per_check_alpha(),
                                        self.profile.statistics.power, self.options.strict)

    def mnist_verdicts(self, experiment, framework: str) -> list[compare.Verdict]:
        """Every MNIST check of one framework: the derived gap bands, then the report's conclusions."""
        return self.mnist_band_verdicts(experiment, framework) + experiment.conclusions(framework)

    def missing_baseline_message(self) -> str:
        return (f"no baseline {self.baseline_file()} for profile {self.profile.name} on {self.device_class}; create it "
                f"with: trainguard baselines update --profile {self.profile.name} --device {self.device.type}"
                + (f" --precision {self.options.precision}" if self.options.precision != "fp32" else "")
                + (" --compile" if self.options.compile else "")
                + (" --stack-seeds" if self.options.stack_seeds else "")
                + " (or pytest -m slow --tg-profile ... --tg-update-baselines)")

    def checkable_baseline(self) -> tuple[bl.BaselineTable | None, str | None]:
        """The baseline to check against, or None and why it cannot be used (missing, other data).
        A malformed baseline raises ConfigError: that is never a skip."""
        table = self.baseline()
        if table is None:
            return None, self.missing_baseline_message()
        mismatch = self.data_matches_baseline(table)
        return (None, mismatch) if mismatch else (table, None)

    def conclusion_seeds(self) -> tuple[int, ...]:
        """Seeds the report's conclusions (ranking, more epochs help) are judged on.

        Where the profile compares against the published table it has several seeds, and the
        conclusions use their mean too: one seed's test accuracy on 1,000 images moves by a
        few images between epochs (Baseline1 seed 0 in `seed`: 40.10 → 39.90 from 10 to 20
        epochs, seeds 1 and 2 +0.60 and +0.80), which says nothing about the model."""
        return self.published_seeds() if "published" in self.profile.checks else self.seeds

    def mean_test_acc(self, model: str, budget: int, seeds: tuple[int, ...]) -> float:
        return sum(self.record(model, budget, seed).test_acc for seed in seeds) / len(seeds)

    def _conclusion_failures(self, models: list[str], budget: int, seeds: tuple[int, ...]) -> list[compare.Verdict]:
        return [v for seed in seeds for v in self.run_failures(models, budget, seed)]

    def expected_ranking(self) -> list[str]:
        """The report's ranking, weakest first: the profile's models in the order of their published test
        accuracy (baselines/published.csv) at the largest budget; the profile's own order without one."""
        published, budget, models = self.published(), self.profile.budgets[-1], list(self.profile.models)
        if all((m, budget, "test_acc") in published for m in models):
            return sorted(models, key=lambda m: published[(m, budget, "test_acc")])
        return models

    def ranking_verdict(self, budget: int) -> compare.Verdict:
        order, seeds = self.expected_ranking(), self.conclusion_seeds()
        if failed := self._conclusion_failures(order, budget, seeds):
            return failed[0]
        return compare.check_ranking(budget, order, {m: self.mean_test_acc(m, budget, seeds) for m in order}, seeds)

    def budget_verdict(self, model: str) -> compare.Verdict:
        small, large = self.profile.budgets[0], self.profile.budgets[-1]
        seeds = self.conclusion_seeds()
        if failed := self._conclusion_failures([model], large, seeds):
            return failed[0]
        return compare.check_budget_improves(model, small, large, self.mean_test_acc(model, small, seeds),
                                             self.mean_test_acc(model, large, seeds), seeds)

    def all_verdicts(self) -> list[compare.Verdict]:
        """Every check the profile enables, for the CLI (the pytest plugin runs them as separate tests)."""
        verdicts = []
        checks = self.profile.checks
        if "baseline" in checks:
            table, problem = self.checkable_baseline()
            if table is not None:
                verdicts += [v for m in self.profile.models for b in self.profile.budgets
                             for v in self.baseline_verdicts(m, b, table)]
            elif self.options.strict:
                verdicts.append(compare.Verdict("baseline", "baseline", False, f"{problem} (strict: CI=true or --tg-strict)"))
        if "published" in checks:
            verdicts += [v for m in self.profile.models for b in self.profile.budgets for v in self.published_verdicts(m, b)]
        if "ranking" in checks:
            verdicts += [self.ranking_verdict(b) for b in self.profile.budgets]
        if "budget_improves" in checks and len(self.profile.budgets) > 1:
            verdicts += [self.budget_verdict(m) for m in self.profile.models]
        return verdicts

    def training_time(self) -> str:
        """Seconds spent in training epochs (evaluation excluded) by the runs this process trained."""
        trained = [self.histories[key] for key in self.trained if key in self.histories]
        seconds = sum(e.seconds for h in trained for e in h.epochs)
        return f"{seconds:.1f} s in {len(trained)} run(s) trained by this process" if trained else "none (all cached)"

    def environment(self) -> dict:
        ds = self.dataset
        return {
            "profile": f"{self.profile.name} — {self.profile.description}",
            "device": f"{engine.device_name(self.device)} (class {self.device_class})",
            "seeds": f"{seed_list(self.seeds)} (held out of the baseline's {seed_list(self.profile.baseline_seeds)})"
            if not set(self.seeds) & set(self.profile.baseline_seeds) else
            f"{seed_list(self.seeds)} (IN the baseline: --tg-allow-baseline-seeds; its checks cannot fail)",
            "data": f"{ds.name} from {ds.source}; {ds.verification}",
            "train images": f"{len(ds.x_train):,}" + (f" ({'; '.join(ds.notes)})" if ds.notes else ""),
            "test split": ds.test_split,
            "versions": ", ".join(f"{k} {v}" for k, v in versions().items()),
            "threads": self.threads_note,
            "commit": git_commit(),
            "wall time": f"{time.time() - self.started:.1f} s",
            "training time": self.training_time(),
            "python": sys.executable,
        }


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def apply_threads(requested: int | None, profile: Profile) -> tuple[int, str]:
    """Set torch's thread count for this process's runs (--threads, else the profile's ``threads``; the Keras
    child gets the same count) and say where it came from. The count is arithmetic, not only speed: sums are
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


def seed_list(seeds) -> str:
    seeds = list(seeds)
    if len(seeds) > 2 and seeds == list(range(seeds[0], seeds[-1] + 1)):
        return f"{seeds[0]}–{seeds[-1]}"
    return ", ".join(map(str, seeds))


def describe_stop(history: History) -> str:
    """Why a run has no (complete) result, in one line."""
    if history.status == "missing":
        return f"{history.model} seed {history.seed}: {history.message}"
    return (f"{history.model} seed {history.seed}: run {history.status} at epoch {history.failed_epoch} "
            f"({history.message})")
