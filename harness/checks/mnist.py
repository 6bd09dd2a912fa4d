"""Experiment 1 (MNIST, 200 images): the overfitting gap appears without dropout and dropout shrinks it.

Two kinds, on for a profile with an [mnist] section (real data), one case per framework: ``mnist_gaps`` —
both gaps, each averaged over the profile's MNIST seeds, inside the bands derived from the per-seed baseline
(``mnist-<framework>-<device>.csv``) — and ``mnist_conclusions`` — the report's conclusions on the seed mean
(dropout shrinks the gap, lowers the final test loss). The Keras cases are skipped, with the reason, where
TensorFlow is not installed.
"""

from __future__ import annotations

from .. import compare
from . import Case, CheckKind, Reference

# trainguard.overfit (the experiment, and so torch) is imported where a check runs, not when the plugin lists
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
    from .. import overfit

    if framework == "keras" and (reason := overfit.keras_available()):
        return f"MNIST keras runs skipped: {reason}"
    return None


def distribution_file(matrix, framework: str):
    from .. import overfit

    device_class = matrix.device.type if framework == "torch" else "cpu"  # MNIST runs are always fp32
    return overfit.distribution_path(matrix.options.baselines_dir, matrix.profile.name, framework, device_class)


def read(matrix, framework: str):
    """The per-seed MNIST baseline of ``framework`` (None if absent; a malformed one raises ConfigError)."""
    from .. import overfit

    return overfit.load_distribution(distribution_file(matrix, framework))


class MnistGapBands(CheckKind):
    name = "mnist_gaps"
    reference_policy = "stored"

    def enabled(self, profile) -> bool:
        return profile.mnist is not None

    def band_checks(self, profile) -> int:
        return profile.mnist.band_check_count()

    def cases(self, profile) -> list[Case]:
        return _framework_cases(self.name, profile)

    def unavailable(self, session, case) -> str | None:
        return _unavailable(session, case)

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
        from .. import overfit

        pairs = session.experiment.seed_pairs(case.params[0])
        return overfit.gap_verdicts(pairs, baseline.values, session.alpha, session.profile.statistics.power,
                                    baseline.describe())

    def update(self, session) -> list[str]:
        from .. import overfit

        if session.profile.mnist.synthetic:
            return []
        return overfit.update_distributions(session.experiment, session.matrix.options.baselines_dir,
                                            session.profile.name, session.matrix.device.type)


class MnistConclusions(CheckKind):
    name = "mnist_conclusions"

    def enabled(self, profile) -> bool:
        return profile.mnist is not None

    def cases(self, profile) -> list[Case]:
        return _framework_cases(self.name, profile)

    def unavailable(self, session, case) -> str | None:
        return _unavailable(session, case)

    def verdicts(self, session, case, reference) -> list[compare.Verdict]:
        return session.experiment.conclusions(case.params[0])
