"""Experiment 1 (MNIST, 200 images): the overfitting gap appears without dropout and dropout shrinks it.

Two kinds, on for a profile with an [mnist] section (real data), one case per framework: ``mnist_gaps`` —
both gaps, each averaged over the profile's MNIST seeds, inside the bands derived from the per-seed baseline
(``mnist-<framework>-<device>.csv``) — and ``mnist_conclusions`` — the report's conclusions on the seed mean
(dropout shrinks the gap, lowers the final test loss). The Keras cases are skipped, with the reason, where
TensorFlow is not installed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..core import compare
from ..stores import baselines as bl
from ..stores.mnist_baselines import load_distribution
from . import Case, CheckKind, Part, Reference

# trainguard.engines.overfit (the experiment, and so torch) is imported where a check runs, not when the plugin lists
# the cases: collecting a profile's tests imports no training engine.


def _framework_cases(kind: str, profile) -> list[Case]:
    mnist = profile.mnist
    if mnist is None or mnist.synthetic:  # generated MNIST-shaped data (a timing profile): nothing to check
        return []
    return [Case(kind, framework, f"mnist-{framework}", (framework,)) for framework in mnist.frameworks]


def _unavailable(session, case: Case) -> str | None:
    """A re-rendered run (an experiment without data) checks only frameworks whose every seed it holds; a run
    that trains needs the framework installed."""
    framework, experiment = case.params[0], session.built_experiment
    if experiment is not None and experiment.mnist is None:
        seeds = [s for s in experiment.config.seeds if (framework, s) in experiment.pairs]
        if not seeds:
            return "The MNIST experiment is re-rendered only from a run log (--from-log): it has no result cache."
        if seeds != list(experiment.config.seeds):
            return (f"MNIST {framework}: the run log(s) hold seeds {seeds} of {list(experiment.config.seeds)}; "
                    f"its checks are not re-rendered")
        return None
    from ..engines import overfit

    if framework == "keras" and (reason := overfit.keras_available()):
        return f"MNIST keras runs skipped: {reason}"
    return None


def _stopped(session, case: Case) -> list:
    """The MNIST runs of this framework that stopped (a timeout, a hung Keras child): the case fails with them."""
    experiment = session.experiment
    if experiment is None or experiment.mnist is None:  # re-rendered from a log: whole pairs only
        return []
    return experiment.stopped(case.params[0])


def _deliver(session, case: Case) -> None:
    """The execute stage's part for a framework's cases: its check seeds' pairs, held ones read (the executor, or
    an earlier case, delivered them), the others trained here (trainguard.engines.overfit.train_arm)."""
    experiment = session.experiment
    if experiment is None or experiment.mnist is None:  # re-rendered from a run log: nothing to train
        return
    for seed in experiment.config.seeds:
        experiment.deliver(case.params[0], seed, session.matrix.printer)


def distribution_file(matrix, framework: str):
    return matrix.references.mnist(framework)


def read(matrix, framework: str):
    """The per-seed MNIST baseline of ``framework`` (None if absent; a malformed one raises ConfigError)."""
    return load_distribution(distribution_file(matrix, framework))


class MnistGapBands(CheckKind):
    name = "mnist_gaps"
    reference_policy = "stored"

    def enabled(self, profile) -> bool:
        return profile.mnist is not None

    def band_checks(self, profile) -> int:
        return profile.mnist.band_checks()

    def cases(self, profile) -> list[Case]:
        return _framework_cases(self.name, profile)

    def unavailable(self, session, case) -> str | None:
        return _unavailable(session, case)

    def stopped_runs(self, session, case) -> list:
        return _stopped(session, case)

    def deliver(self, session, case, runner=None) -> None:
        _deliver(session, case)

    def reference_key(self, case):
        return case.params[0] if case is not None else None

    def reference(self, session, case) -> Reference:
        framework = case.params[0]
        baseline = read(session.matrix, framework)
        if baseline is not None:
            return Reference(baseline)
        return Reference(missing=f"MNIST {framework}: no per-seed baseline {distribution_file(session.matrix, framework)}"
                                 f" to check the gaps against; create it with trainguard baselines update --profile "
                                 f"{session.profile.cli_name}")

    def verdicts(self, session, case, baseline) -> list[compare.Verdict]:
        from ..engines import overfit

        pairs = session.experiment.seed_pairs(case.params[0])
        return overfit.gap_verdicts(pairs, baseline.values, session.alpha, session.profile.statistics.power,
                                    baseline.describe())

    def update(self, session) -> list[str]:
        if session.profile.mnist.synthetic:
            return []
        return update_distributions(session.experiment, session.matrix.references)


class MnistConclusions(CheckKind):
    name = "mnist_conclusions"

    def enabled(self, profile) -> bool:
        return profile.mnist is not None

    def cases(self, profile) -> list[Case]:
        return _framework_cases(self.name, profile)

    def unavailable(self, session, case) -> str | None:
        return _unavailable(session, case)

    def stopped_runs(self, session, case) -> list:
        return _stopped(session, case)

    def deliver(self, session, case, runner=None) -> None:
        _deliver(session, case)

    def verdicts(self, session, case, reference) -> list[compare.Verdict]:
        return session.experiment.conclusions(case.params[0])

    def summary_part(self, session) -> "MnistPart | None":
        """The experiment's section: what was trained (whichever of its checks ran), with the report's figures."""
        experiment = session.built_experiment
        complete = [experiment.pairs[k] for k in sorted(experiment.pairs) if experiment.pairs[k].complete] if experiment else []
        if not complete:
            return None
        return MnistPart(experiment.config, complete,
                         read_published(session.matrix))


def read_published(matrix) -> dict[str, float]:
    """The course report's own MNIST figures (baselines/published-mnist.csv); {} without the file."""
    path = Path(matrix.options.baselines_dir) / "published-mnist.csv"
    return bl.load_published_mnist(path) if path.exists() else {}


@dataclass
class MnistPart(Part):
    """Experiment 1 in the report: every seed's gaps, the first seed's epochs per framework, its loss figure."""

    config: object  # the profile's OverfitConfig
    pairs: list = field(default_factory=list)  # trainguard.engines.overfit pairs (without / with dropout), by (framework, seed)
    published: dict[str, float] = field(default_factory=dict)

    def sections(self, summary, path, figures: bool) -> list[str]:
        drawn = draw_figures(self.pairs, self.config, Path(path)) if figures else {}
        return [section(self.pairs, self.config, drawn, self.published)]


def draw_figures(pairs: list, config, path: Path) -> dict[str, str]:
    """Experiment 1's loss curves (first seed per framework, without and with dropout): framework → PNG name."""
    from ..core import plots

    figures = {}
    for framework in dict.fromkeys(p.framework for p in pairs):
        first = next(p for p in pairs if p.framework == framework)
        figure = path.parent / f"{path.stem}-mnist-loss-{framework}.png"
        plots.loss_curves(figure, f"Model loss — {framework}, seed {first.seed}",
                          {"without dropout": first.nodrop, f"Dropout({config.dropout})": first.drop})
        figures[framework] = figure.name
    return figures


def section(pairs: list, config, figures: dict[str, str], published: dict[str, float]) -> str:
    """Experiment 1: every seed's gaps (and the report's own, on its 50 validation images), then per framework
    its first seed's epochs and loss figure."""
    lines = ["## MNIST overfitting and the dropout fix (Experiment 1)", "",
             f"{config.train_images} training images per seed (class-balanced), {config.validation_split:.0%} held out "
             f"for validation, batch {config.batch_size}, raw pixels, Adam lr {config.lr}, {config.epochs} epochs; "
             f"test = MNIST's 10,000 test images. Checks, on the mean over seeds {list(config.seeds)}: the gaps "
             f"without and with dropout inside the bands derived from the per-seed baseline (see Checks), the "
             f"gap and the final test loss lower with dropout"
             + (f", test-loss rise ≥ {config.min_rise:.0%}." if config.min_rise is not None
                else "; test-loss rise not checked."), "", _markdown(gap_rows(pairs, published)), ""]
    if config.min_rise is None and config.rise_note:
        lines += [f"> Rise check off: {config.rise_note}", ""]
    for framework in dict.fromkeys(p.framework for p in pairs):
        first = next(p for p in pairs if p.framework == framework)
        lines += [f"### {framework}, seed {first.seed}: per epoch", "", _markdown(epoch_rows(first)), ""]
        if framework in figures:
            lines += [f"![Model loss, {framework}]({figures[framework]})", ""]
    return "\n".join(lines)


def _markdown(records: list[dict]) -> str:
    import pandas as pd  # not at import: the plugin lists the cases without pandas

    return pd.DataFrame.from_records(records).to_markdown(index=False, disable_numparse=True)


def gap_rows(pairs: list, published: dict[str, float]) -> list[dict]:
    """One row per (framework, seed), then the course report's own figures (baselines/published-mnist.csv)."""
    rows = []
    for pair in pairs:
        q = pair.quantities()
        rows.append({"framework": pair.framework, "seed": pair.seed,
                     "gap without dropout": f"{q['gap_nodrop']:.2f}", "gap with dropout": f"{q['gap_drop']:.2f}",
                     "ratio": f"{q['ratio']:.2f}", "test-loss rise": f"{q['rise_nodrop']:.1%}",
                     "final test loss (no dropout / dropout)": f"{q['test_loss_nodrop']:.2f} / {q['test_loss_drop']:.2f}"})
    if published:
        rows.append({"framework": "report (val)", "seed": "—", "gap without dropout": f"{published['gap_nodrop']}",
                     "gap with dropout": f"{published['gap_drop']}", "ratio": f"{published['ratio']}",
                     "test-loss rise": f"{published['rise_nodrop']:.0%}",
                     "final test loss (no dropout / dropout)":
                         f"{published['test_loss_nodrop']} / {published['test_loss_drop']}"})
    return rows


def epoch_rows(pair) -> list[dict]:
    """The course report's per-epoch Keras log (loss, accuracy, val_loss, val_accuracy) of one seed, without and
    with dropout, plus the test split."""
    def columns(epoch, suffix: str) -> dict:
        return {f"loss{suffix}": f"{epoch.train_loss:.4f}", f"accuracy{suffix}": f"{epoch.train_acc / 100:.4f}",
                f"val_loss{suffix}": f"{epoch.extra.get('val_loss', float('nan')):.4f}",
                f"val_accuracy{suffix}": f"{epoch.extra.get('val_acc', float('nan')) / 100:.4f}",
                f"test loss{suffix}": f"{epoch.test_loss:.4f}", f"test acc{suffix}": f"{epoch.test_acc / 100:.4f}"}

    return [{"epoch": a.epoch, **columns(a, ""), **columns(b, " (dropout)")} for a, b in zip(pair.nodrop.epochs, pair.drop.epochs)]


def update_distributions(experiment, references) -> list[str]:
    """Run every baseline seed per framework and write its per-seed quantities; a summary line each."""
    import dataclasses
    import statistics

    from ..core.environment import git_commit, versions
    from ..engines.overfit import keras_available
    from ..stores.mnist_baselines import write_distribution

    config, lines = experiment.config, []
    for framework in config.frameworks:
        if framework == "keras" and (reason := keras_available()):
            lines.append(f"keras skipped: {reason}")
            continue
        per_seed = experiment.per_seed(framework, config.baseline_seeds)
        path = references.mnist(framework)
        framework_versions = versions()
        if framework == "keras":
            from importlib.metadata import PackageNotFoundError, version

            for package in ("tensorflow", "tensorflow-cpu", "keras"):
                try:
                    framework_versions[package] = version(package)
                except PackageNotFoundError:
                    pass
        write_distribution(path, per_seed, {"seeds": list(config.baseline_seeds), "versions": framework_versions,
                                            "threads": experiment.threads, "commit": git_commit(), "config": dataclasses.asdict(config)})
        gaps = [q["gap_nodrop"] for q in per_seed.values()]
        lines.append(f"wrote {path}: {len(per_seed)} seeds, gap without dropout {statistics.fmean(gaps):.3f} "
                     f"± {statistics.stdev(gaps):.3f}")
    return lines
