"""Experiment 1 of PROTOCOL.md: a dense network on 200 MNIST images overfits; Dropout(0.5) fixes it.

Runs the same protocol in PyTorch (always) and in Keras (when TensorFlow is installed):
200 training images (seeded, class-balanced), the last 25 % of them held out for
validation (Keras' ``validation_split=0.25``), batch 32, raw pixels 0–255, Adam at Keras'
defaults, 10 epochs, and after every epoch an evaluation on MNIST's 10,000 test images.

The checks rest on the large test set:
- without dropout the gap appears: final test loss − final train loss ≥ ``min_gap``, and the
  test loss rises after its minimum: final ≥ (1 + ``min_rise``) × minimum;
- with dropout the gap shrinks: final gap ≤ ``max_ratio`` × the no-dropout gap (per seed), and
  the final test loss, averaged over the profile's seeds, is below the no-dropout one.

Why the last check is made on the seed average: per seed it is a coin that lands wrong now
and then (measured over 20 seeds: 1 torch and 3 keras seeds had a higher final test loss
with dropout, the test loss bouncing by ±3 between epochs), while the mean over 3 seeds
failed for none of the 1,140 three-seed groups of those 20 seeds in either framework.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import statistics
import uuid
from dataclasses import dataclass, field

import numpy as np

from . import engine
from .compare import Verdict
from .data import Dataset
from .history import History
from .spec import ConfigError, TrainConfig

FRAMEWORKS = ("torch", "keras")
QUANTITIES = ("gap_nodrop", "rise_nodrop", "gap_drop", "ratio", "test_loss_nodrop", "test_loss_drop")
REPORT_GAPS = {"gap_nodrop": 28.9, "gap_drop": 9.0, "ratio": 0.31}  # the report's 50-image validation figures


@dataclass(frozen=True)
class OverfitConfig:
    train_images: int = 200
    validation_split: float = 0.25
    epochs: int = 10
    batch_size: int = 32
    lr: float = 0.001
    dropout: float = 0.5
    seeds: tuple[int, ...] = (0, 1, 2)
    baseline_seeds: tuple[int, ...] = tuple(range(20))
    frameworks: tuple[str, ...] = FRAMEWORKS
    min_gap: float = 5.0
    min_rise: float | None = None  # None: the rise check is not made (say why in rise_note)
    max_ratio: float = 0.6
    rise_note: str = ""
    synthetic: bool = False  # generated MNIST-shaped data: for timing only, no checks are made

    @classmethod
    def from_profile(cls, raw: dict, source: str) -> "OverfitConfig":
        known = set(cls.__dataclass_fields__)
        unknown = set(raw) - known
        if unknown:
            raise ConfigError(f"{source}: [mnist] has unknown keys {sorted(unknown)}; known: {', '.join(sorted(known))}")
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()}
        config = cls(**values)
        bad = [f for f in config.frameworks if f not in FRAMEWORKS]
        if bad:
            raise ConfigError(f"{source}: [mnist] frameworks {bad} unknown; known: {', '.join(FRAMEWORKS)}")
        return config

    def train_config(self) -> TrainConfig:
        return TrainConfig(lr=self.lr, batch_size=self.batch_size, eval_batch_size=2000, optimizer="adam", inputs="raw")


def load_mnist(config: OverfitConfig, data_dir=None, allow_download: bool = True) -> Dataset:
    """The experiment's data: MNIST through the data loaders, or generated tensors of its shape."""
    from . import data

    if config.synthetic:
        return data.synthetic("mnist", train_per_class=6000, test_per_class=1000)
    return data.load("mnist", data_dir, allow_download=allow_download)


SYNTHETIC_NOTE = "MNIST on generated data of the real shapes (timing only): no overfitting checks are made."


def log_name(framework: str, dropout: float) -> str:
    """How an MNIST run is named in the run log (the log's "model")."""
    return f"mnist-{framework}-dropout{dropout}"


def keras_available() -> str | None:
    """None if TensorFlow and Keras are installed; else the reason. Imports neither (see keras_engine)."""
    import importlib.util

    missing = [m for m in ("tensorflow", "keras") if importlib.util.find_spec(m) is None]
    if missing:
        return f"{' and '.join(missing)} not installed; install the extra: pip install -e '.[tf]'"
    return None


def small_subset(mnist: Dataset, config: OverfitConfig, seed: int) -> Dataset:
    """``train_images`` images, class-balanced, chosen and ordered by ``seed``; the last
    ``validation_split`` of them is the validation set, as Keras' validation_split takes it."""
    rng = np.random.default_rng(seed)
    per_class = config.train_images // 10
    chosen = np.concatenate([rng.choice(np.flatnonzero(mnist.y_train == c), per_class, replace=False) for c in range(10)])
    rng.shuffle(chosen)
    n_val = int(round(len(chosen) * config.validation_split))
    fit, val = chosen[:-n_val], chosen[-n_val:]
    return Dataset(mnist.name, mnist.x_train[fit], mnist.y_train[fit], mnist.x_test, mnist.y_test,
                   mnist.source, mnist.verification,
                   [f"{config.train_images} train images (seed {seed}, {per_class} per class): "
                    f"{len(fit)} fitted, {n_val} validation"],
                   x_val=mnist.x_train[val], y_val=mnist.y_train[val])


def run_torch(subset: Dataset, config: OverfitConfig, dropout: float, seed: int, device) -> History:
    from models.mnist import DenseMNIST

    return engine.train(f"DenseMNIST(dropout={dropout})", subset, config.train_config(), config.epochs, seed,
                        device, model_factory=lambda: DenseMNIST(dropout))


def run_keras(subset: Dataset, config: OverfitConfig, dropout: float, seed: int) -> History:
    from .keras_engine import train_in_subprocess

    return train_in_subprocess(subset, config, dropout, seed)


@dataclass
class Pair:
    """One seed of the experiment: the run without and the run with dropout."""

    framework: str
    seed: int
    nodrop: History
    drop: History

    def quantities(self) -> dict[str, float]:
        nd, d = self.nodrop.epochs, self.drop.epochs
        test_nd = [e.test_loss for e in nd]
        gap_nd = nd[-1].test_loss - nd[-1].train_loss
        gap_d = d[-1].test_loss - d[-1].train_loss
        return {
            "gap_nodrop": gap_nd,
            "rise_nodrop": test_nd[-1] / min(test_nd) - 1.0,
            "gap_drop": gap_d,
            "ratio": gap_d / gap_nd if gap_nd > 0 else math.inf,
            "test_loss_nodrop": nd[-1].test_loss,
            "test_loss_drop": d[-1].test_loss,
        }


def _at_least(pair: Pair, quantity: str, threshold: float, what: str, report: str) -> list[Verdict]:
    """One per-seed verdict: ``quantity`` of the no-dropout run ≥ ``threshold``."""
    value, subject = pair.quantities()[quantity], f"{pair.framework}-seed{pair.seed}"
    return [Verdict("overfit", subject, value >= threshold,
                    f"{subject} without dropout: {what} = {value:.3f}, threshold ≥ {threshold} (report: {report})",
                    metric=quantity, measured=value, expected=threshold)]


def gap_appears(pair: Pair, config: OverfitConfig) -> list[Verdict]:
    """Without dropout a gap opens: final test loss − final train loss ≥ min_gap."""
    return _at_least(pair, "gap_nodrop", config.min_gap, "final test loss − train loss",
                     "28.9 on its 50 validation images")


def loss_rises_after_minimum(pair: Pair, config: OverfitConfig) -> list[Verdict]:
    """Without dropout the test loss climbs after its minimum: final ≥ (1 + min_rise) × minimum."""
    if config.min_rise is None:
        return []
    return _at_least(pair, "rise_nodrop", config.min_rise, "final test loss / its minimum − 1",
                     "28.89 / 17.54 − 1 = 0.65")


def dropout_helps(pair: Pair, config: OverfitConfig) -> list[Verdict]:
    q = pair.quantities()
    subject = f"{pair.framework}-seed{pair.seed}"
    return [Verdict("dropout", subject, q["ratio"] <= config.max_ratio,
                    f"{subject}: gap with dropout {q['gap_drop']:.3f} / without {q['gap_nodrop']:.3f} = ratio "
                    f"{q['ratio']:.3f}, threshold ≤ {config.max_ratio} (report: 0.31)",
                    metric="ratio", measured=q["ratio"], expected=config.max_ratio)]


def dropout_lowers_test_loss(pairs: list[Pair]) -> list[Verdict]:
    """The final test loss with dropout, averaged over the seeds, is below the one without."""
    framework, seeds = pairs[0].framework, [p.seed for p in pairs]
    subject = f"{framework}-seeds{'_'.join(map(str, seeds))}"
    with_dropout = statistics.fmean(p.quantities()["test_loss_drop"] for p in pairs)
    without = statistics.fmean(p.quantities()["test_loss_nodrop"] for p in pairs)
    return [Verdict("dropout", subject, with_dropout < without,
                    f"{framework}, seeds {seeds}: mean final test loss with dropout {with_dropout:.3f} must be "
                    f"below without dropout {without:.3f} (report: 11.57 < 28.89 on its 50 validation images)",
                    metric="test_loss_drop", measured=with_dropout, expected=without)]


def all_checks(pair: Pair, config: OverfitConfig) -> list[Verdict]:
    """The checks made on each seed."""
    return gap_appears(pair, config) + loss_rises_after_minimum(pair, config) + dropout_helps(pair, config)


def framework_verdicts(pairs: list[Pair], config: OverfitConfig) -> list[Verdict]:
    """Every check for one framework: each seed's, then the one on the seed average."""
    verdicts = [v for pair in pairs for v in all_checks(pair, config)]
    return verdicts + dropout_lowers_test_loss(pairs)


@dataclass
class OverfitExperiment:
    """Runs and caches pairs (one per framework × seed) for a session."""

    config: OverfitConfig
    mnist: Dataset
    device: object
    pairs: dict[tuple[str, int], Pair] = field(default_factory=dict)
    log: object = None  # harness.runlog.RunLog: every run is appended to it
    profile: str = ""

    def pair(self, framework: str, seed: int) -> Pair:
        if (framework, seed) not in self.pairs:
            subset = small_subset(self.mnist, self.config, seed)
            runs = []
            for dropout in (0.0, self.config.dropout):
                if framework == "keras":
                    history = run_keras(subset, self.config, dropout, seed)
                else:
                    history = run_torch(subset, self.config, dropout, seed, self.device)
                self._log(framework, dropout, history)
                runs.append(history)
            self.pairs[(framework, seed)] = Pair(framework, seed, *runs)
        return self.pairs[(framework, seed)]

    def _log(self, framework: str, dropout: float, history: History) -> None:
        """Append the finished run to the run log, so the report can be re-rendered from the log."""
        if self.log is None:
            return
        run = f"mnist-{framework}-{history.seed}-{dropout}-{uuid.uuid4().hex[:8]}"
        self.log.run_start(run, log_name(framework, dropout), history.seed, profile=self.profile, experiment="mnist",
                           framework=framework, dropout=dropout, device=history.device, parameters=history.parameters,
                           config=dataclasses.asdict(self.config))
        for record in history.epochs:
            self.log.epoch_end(run, record)
        self.log.run_stop(run, history)

    @classmethod
    def from_pairs(cls, config: OverfitConfig, pairs) -> "OverfitExperiment":
        """An experiment of finished pairs only (no data, nothing to train): for re-rendering."""
        experiment = cls(config, mnist=None, device=None)
        experiment.pairs.update({(pair.framework, pair.seed): pair for pair in pairs})
        return experiment

    @classmethod
    def from_log(cls, config: OverfitConfig, histories: dict) -> "OverfitExperiment":
        """The experiment as a run log recorded it (``histories_from_log``): whole pairs only."""
        pairs = []
        for framework in config.frameworks:
            for seed in config.seeds:
                nodrop = histories.get((log_name(framework, 0.0), seed))
                drop = histories.get((log_name(framework, config.dropout), seed))
                if nodrop is not None and drop is not None:
                    pairs.append(Pair(framework, seed, nodrop, drop))
        return cls.from_pairs(config, pairs)

    def distribution(self, framework: str, seeds) -> dict[str, dict[str, float]]:
        values = {q: [] for q in QUANTITIES}
        for seed in seeds:
            for q, v in self.pair(framework, seed).quantities().items():
                values[q].append(v)
        return {q: {"mean": statistics.fmean(v), "std": statistics.stdev(v) if len(v) > 1 else 0.0,
                    "min": min(v), "max": max(v), "n": len(v)} for q, v in values.items()}

    def verdicts(self, framework: str) -> list[Verdict]:
        """The profile's checks for one framework over the profile's seeds (none on generated data)."""
        if self.config.synthetic:
            return []
        return framework_verdicts([self.pair(framework, seed) for seed in self.config.seeds], self.config)

    def false_alarms(self, framework: str, seeds) -> tuple[list[str], int]:
        """Messages of every check that fails on ``seeds`` (the target is none), and how many
        trials were made: one per seed for the per-seed checks, plus one per group of
        ``len(config.seeds)`` seeds for the seed-average check, as a run of the profile makes it."""
        pairs = [self.pair(framework, seed) for seed in seeds]
        failures = [v.message for pair in pairs for v in all_checks(pair, self.config) if not v.passed]
        groups = list(itertools.combinations(pairs, len(self.config.seeds)))
        failures += [v.message for group in groups for v in dropout_lowers_test_loss(list(group)) if not v.passed]
        return failures, len(pairs) + len(groups)


def distribution_path(baselines_dir, profile: str, framework: str, device_class: str):
    from pathlib import Path

    return Path(baselines_dir) / profile / f"mnist-{framework}-{device_class}.csv"


def write_distribution(path, distribution: dict, meta: dict) -> None:
    """The measured distribution of each quantity over the baseline seeds, as reviewable CSV + JSON."""
    from .storage import atomic_write_json, atomic_write_text

    lines = ["quantity,mean,std,min,max,n"]
    lines += [f"{q},{d['mean']:.4f},{d['std']:.4f},{d['min']:.4f},{d['max']:.4f},{d['n']}" for q, d in distribution.items()]
    atomic_write_text(path, "\n".join(lines) + "\n")
    atomic_write_json(path.with_suffix(".meta.json"), meta)


def update_distributions(experiment: OverfitExperiment, baselines_dir, profile: str, device_class: str) -> list[str]:
    """Run every baseline seed per framework, write the distributions, return a summary per framework
    with the checks that would fail on those seeds under the profile's thresholds (false alarms)."""
    from .session import git_commit, versions

    config, lines = experiment.config, []
    for framework in config.frameworks:
        if framework == "keras" and (reason := keras_available()):
            lines.append(f"keras skipped: {reason}")
            continue
        distribution = experiment.distribution(framework, config.baseline_seeds)
        alarms, trials = experiment.false_alarms(framework, config.baseline_seeds)
        path = distribution_path(baselines_dir, profile, framework, device_class if framework == "torch" else "cpu")
        framework_versions = versions()
        if framework == "keras":
            from importlib.metadata import PackageNotFoundError, version

            for package in ("tensorflow", "tensorflow-cpu", "keras"):
                try:
                    framework_versions[package] = version(package)
                except PackageNotFoundError:
                    pass
        write_distribution(path, distribution, {
            "seeds": list(config.baseline_seeds), "versions": framework_versions, "commit": git_commit(),
            "thresholds": {"min_gap": config.min_gap, "min_rise": config.min_rise, "max_ratio": config.max_ratio},
            "false_alarms": alarms, "false_alarm_trials": trials})
        lines.append(f"wrote {path}: {len(alarms)} check(s) would fail over {len(config.baseline_seeds)} seeds "
                     f"and their {trials - len(config.baseline_seeds)} groups of {len(config.seeds)}")
        lines += [f"  {alarm}" for alarm in alarms]
    return lines
