"""Experiment 1 of docs/protocol.md: a dense network on 200 MNIST images overfits; Dropout(0.5) fixes it.

Runs the same protocol in PyTorch (always) and in Keras (when TensorFlow is installed):
200 training images (seeded, class-balanced), the last 25 % of them held out for
validation (Keras' ``validation_split=0.25``), batch 32, raw pixels 0–255, Adam at Keras'
defaults, 10 epochs, and after every epoch an evaluation on MNIST's 10,000 test images.

The checks rest on the large test set and are made on the mean over the profile's ``seeds``
(held out of ``baseline_seeds``):
- the gap without dropout (final test loss − final train loss) and the gap with dropout each lie
  in the band derived from the baseline seeds' values (harness/core/stats.py): the gap appears and
  dropout keeps shrinking it, by as much as it did when the baseline was measured;
- the report's conclusions: the mean gap with dropout is below the gap without, and so is the
  mean final test loss (and, where ``min_rise`` is set, the test loss rises after its minimum).

Why the last check is made on the seed average: per seed it is a coin that lands wrong now
and then (measured over 20 seeds: 1 torch and 3 keras seeds had a higher final test loss
with dropout, the test loss bouncing by ±3 between epochs), while the mean over 3 seeds
failed for none of the 1,140 three-seed groups of those 20 seeds in either framework.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
import uuid
from dataclasses import dataclass, field

import numpy as np

from . import engine
from ..core.compare import Verdict
from ..stores.data import Dataset
from ..core.history import History
from ..core.spec import MNIST_BAND_QUANTITIES, MNIST_QUANTITIES, OverfitConfig

QUANTITIES = MNIST_QUANTITIES


def load_mnist(config: OverfitConfig, data_dir=None, allow_download: bool = True) -> Dataset:
    """The experiment's data: MNIST through the data loaders, or generated tensors of its shape."""
    from ..stores import data

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


def subset_indices(labels: np.ndarray, config: OverfitConfig, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The training indices ``seed`` draws: ``train_images`` images, class-balanced, in the seed's order;
    (fitted, validation) with the last ``validation_split`` as validation, as Keras' validation_split takes it."""
    rng = np.random.default_rng(seed)
    per_class = config.train_images // 10
    chosen = np.concatenate([rng.choice(np.flatnonzero(labels == c), per_class, replace=False) for c in range(10)])
    rng.shuffle(chosen)
    n_val = int(round(len(chosen) * config.validation_split))
    return chosen[:-n_val], chosen[-n_val:]


def small_subset(mnist: Dataset, config: OverfitConfig, seed: int) -> Dataset:
    """The experiment's data for one seed: its drawn training images (see subset_indices), all test images."""
    from ..stores.data import check_export_view

    fit, val = subset_indices(mnist.y_train, config, seed)
    subset = Dataset(mnist.name, mnist.x_train[fit], mnist.y_train[fit], mnist.x_test, mnist.y_test,
                     mnist.source, mnist.verification,
                     [f"{config.train_images} train images (seed {seed}, {config.train_images // 10} per class): "
                      f"{len(fit)} fitted, {len(val)} validation"],
                     x_val=mnist.x_train[val], y_val=mnist.y_train[val])
    if mnist.export is not None:
        check_export_view(subset, mnist.export, mnist.export.get("seeds", {}).get(str(seed)), f"MNIST seed {seed}")
    return subset


def run_torch(subset: Dataset, config: OverfitConfig, dropout: float, seed: int, device, on_step=None,
              prepare=None, on_batch=None) -> History:
    """One arm in PyTorch; ``on_step`` and ``prepare`` (applied to the built model) serve the golden runs."""
    from ..models.mnist import DenseMNIST

    def build():
        model = DenseMNIST(dropout)
        return prepare(model) if prepare is not None else model

    return engine.train(f"DenseMNIST(dropout={dropout})", subset, config.train_config(), config.epochs, seed,
                        device, model_factory=build, on_step=on_step, on_batch=on_batch)


def train_arm(framework: str, subset: Dataset, config: OverfitConfig, dropout: float, seed: int, device,
              threads: int | None = None) -> History:
    """One arm of a pair, the one way it is trained whoever asks (a night in process, a Ray worker): a run the night's
    time limit, a hung Keras child or a lock held past its bound stops is a ``timeout`` run (its checks fail with the
    message), not an error that ends the night."""
    from ..core import watchdog
    from ..core.storage import WaitTimeout

    label = log_name(framework, dropout)
    if watchdog.passed():
        return History.not_trained(label, seed, "cpu", "timeout", f"not trained: {watchdog.describe_limit()} had passed")
    try:
        if framework == "keras":
            return run_keras(subset, config, dropout, seed, threads)
        return run_torch(subset, config, dropout, seed, device,
                         on_batch=lambda: watchdog.check(f"MNIST {framework} seed {seed}"))
    except WaitTimeout as exc:  # a lock held past its bound, or the night's limit (watchdog.DeadlineExceeded)
        return History.not_trained(label, seed, "cpu", "timeout", str(exc))


def run_keras(subset: Dataset, config: OverfitConfig, dropout: float, seed: int, threads: int | None = None) -> History:
    from .keras_engine import train_in_subprocess

    return train_in_subprocess(subset, config, dropout, seed, threads)


@dataclass
class Pair:
    """One seed of the experiment: the run without and the run with dropout."""

    framework: str
    seed: int
    nodrop: History
    drop: History

    @property
    def stopped(self) -> list[History]:
        """Its runs that did not complete every epoch (a stopped run measured no gap)."""
        return [h for h in (self.nodrop, self.drop) if not (h.completed and h.epochs)]

    @property
    def complete(self) -> bool:
        return not self.stopped

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


#: Quantities checked against the per-seed baseline with a derived band (harness/core/stats.py).
BAND_QUANTITIES = MNIST_BAND_QUANTITIES
QUANTITY_LABELS = {"gap_nodrop": "gap without dropout (final test loss − train loss)",
                   "gap_drop": "gap with dropout (final test loss − train loss)"}


def _mean(pairs: list[Pair], quantity: str) -> float:
    return statistics.fmean(p.quantities()[quantity] for p in pairs)


def _subject(pairs: list[Pair]) -> str:
    return f"{pairs[0].framework}-seeds{'_'.join(str(p.seed) for p in pairs)}"


def gap_verdicts(pairs: list[Pair], baseline: dict[str, list[float]], alpha: float, power: float,
                 source: str) -> list[Verdict]:
    """The gap without dropout and the gap with it, each averaged over the night's seeds, inside the
    band derived from the baseline seeds' values: the gap must appear, dropout must keep shrinking it."""
    from ..core.compare import check_band
    from ..core.stats import derive_band

    verdicts = []
    for quantity in BAND_QUANTITIES:
        band = derive_band(baseline[quantity], len(pairs), alpha, resolution=1e-4, power=power)
        verdict = check_band(_subject(pairs), quantity, QUANTITY_LABELS[quantity], _mean(pairs, quantity), band, source,
                             check="overfit" if quantity == "gap_nodrop" else "dropout")
        verdicts.append(verdict)
    return verdicts


def loss_rises_after_minimum(pair: Pair, config: OverfitConfig) -> list[Verdict]:
    """Without dropout the test loss climbs after its minimum: final ≥ (1 + min_rise) × minimum."""
    if config.min_rise is None:
        return []
    value, subject = pair.quantities()["rise_nodrop"], f"{pair.framework}-seed{pair.seed}"
    return [Verdict("overfit", subject, value >= config.min_rise,
                    f"{subject} without dropout: final test loss / its minimum − 1 = {value:.3f}, threshold ≥ "
                    f"{config.min_rise}", metric="rise_nodrop", measured=value,
                    expected=config.min_rise)]


def dropout_shrinks_gap(pairs: list[Pair]) -> list[Verdict]:
    """The report's conclusion: averaged over the seeds, the gap with dropout is below the gap without."""
    with_dropout, without = _mean(pairs, "gap_drop"), _mean(pairs, "gap_nodrop")
    return [Verdict("dropout", _subject(pairs), with_dropout < without,
                    f"{pairs[0].framework}, seeds {[p.seed for p in pairs]}: mean gap with dropout {with_dropout:.3f} "
                    f"must be below the gap without {without:.3f}",
                    metric="ratio", measured=with_dropout, expected=without)]


def dropout_lowers_test_loss(pairs: list[Pair]) -> list[Verdict]:
    """The final test loss with dropout, averaged over the seeds, is below the one without."""
    framework, seeds = pairs[0].framework, [p.seed for p in pairs]
    with_dropout = _mean(pairs, "test_loss_drop")
    without = _mean(pairs, "test_loss_nodrop")
    return [Verdict("dropout", _subject(pairs), with_dropout < without,
                    f"{framework}, seeds {seeds}: mean final test loss with dropout {with_dropout:.3f} must be "
                    f"below without dropout {without:.3f}",
                    metric="test_loss_drop", measured=with_dropout, expected=without)]


def conclusion_verdicts(pairs: list[Pair], config: OverfitConfig) -> list[Verdict]:
    """The report's qualitative conclusions for one framework (no baseline needed)."""
    rises = [v for pair in pairs for v in loss_rises_after_minimum(pair, config)]
    return rises + dropout_shrinks_gap(pairs) + dropout_lowers_test_loss(pairs)


@dataclass
class OverfitExperiment:
    """Runs and caches pairs (one per framework × seed) for a session."""

    config: OverfitConfig
    mnist: Dataset
    device: object
    pairs: dict[tuple[str, int], Pair] = field(default_factory=dict)
    log: object = None  # trainguard.stores.runlog.RunLog: every run is appended to it
    profile: str = ""
    threads: int | None = None  # TensorFlow's threads in the Keras child (torch's are the process's)

    def pair(self, framework: str, seed: int) -> Pair:
        """The pair of ``framework`` and ``seed`` as held; a pair the execute stage did not deliver is two
        ``missing`` runs (not kept: reading never trains — :meth:`deliver` does)."""
        if (framework, seed) in self.pairs:
            return self.pairs[(framework, seed)]
        return Pair(framework, seed, *[History.not_trained(log_name(framework, dropout), seed, "cpu", "missing",
                                                           "no result: the night's execute stage did not deliver this run")
                                       for dropout in (0.0, self.config.dropout)])

    def deliver(self, framework: str, seed: int, printer=None) -> Pair:
        """The pair of ``framework`` and ``seed``: run here (both arms) unless it is already held."""
        if (framework, seed) not in self.pairs:
            if printer is not None:
                printer(f"[trainguard] MNIST {framework} seed {seed}: training without and with dropout")
            subset = small_subset(self.mnist, self.config, seed)
            runs = [train_arm(framework, subset, self.config, dropout, seed, self.device, self.threads)
                    for dropout in (0.0, self.config.dropout)]
            self.record_pair(framework, seed, runs)
        return self.pairs[(framework, seed)]

    def record_pair(self, framework: str, seed: int, runs: list[History]) -> Pair:
        """Hold a pair's two runs (without, with dropout), run here or elsewhere (a Ray worker), and append each
        that started to the run log, so the report can be re-rendered from the log."""
        for dropout, history in zip((0.0, self.config.dropout), runs):
            if history.status != "missing":  # a run that never started leaves nothing in the run log
                self._log(framework, dropout, history)
        self.pairs[(framework, seed)] = Pair(framework, seed, *runs)
        return self.pairs[(framework, seed)]

    def stopped(self, framework: str) -> list[History]:
        """The runs of ``framework``'s seeds that did not complete (their cases fail with why)."""
        return [h for pair in self.seed_pairs(framework) for h in pair.stopped]

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

    def seed_pairs(self, framework: str) -> list[Pair]:
        return [self.pair(framework, seed) for seed in self.config.seeds]

    def conclusions(self, framework: str) -> list[Verdict]:
        return [] if self.config.synthetic else conclusion_verdicts(self.seed_pairs(framework), self.config)

    def per_seed(self, framework: str, seeds) -> dict[int, dict[str, float]]:
        """Every seed's quantities (a baseline update: held pairs read, the others trained now): a run that stopped
        is an error, never a short baseline."""
        pairs = {seed: self.deliver(framework, seed) for seed in seeds}
        if stopped := [h for pair in pairs.values() for h in pair.stopped]:
            raise RuntimeError(f"MNIST {framework} baseline: {len(stopped)} run(s) did not complete, the first "
                               f"{stopped[0].model} seed {stopped[0].seed}: {stopped[0].status} ({stopped[0].message}); "
                               f"nothing was written")
        return {seed: pair.quantities() for seed, pair in pairs.items()}
