"""MNIST overfitting and the dropout fix (PROTOCOL.md, Experiment 1), per framework.

Each check is made on the mean over the profile's MNIST seeds (held out of its baseline seeds):
the gaps against the bands derived from the per-seed baseline, then the report's conclusions.
Keras cases are skipped, with the reason, where TensorFlow is not installed.
"""

import pytest

from trainguard.overfit import keras_available

pytestmark = pytest.mark.slow


def _checked(mnist_experiment, framework):
    if mnist_experiment.config.synthetic:
        pytest.skip("generated MNIST-shaped data (a timing profile): no overfitting checks")
    if framework == "keras" and (reason := keras_available()):
        pytest.skip(reason)


def test_mnist_gaps_within_baseline(mnist_experiment, trainguard_matrix, trainguard_check, mnist_framework):
    """The gap appears without dropout and dropout shrinks it, as much as in the baseline (derived bands)."""
    _checked(mnist_experiment, mnist_framework)
    verdicts = trainguard_matrix.mnist_band_verdicts(mnist_experiment, mnist_framework)
    if not verdicts:
        pytest.skip(f"no MNIST {mnist_framework} baseline: create it with trainguard baselines update")
    trainguard_check(verdicts)


def test_mnist_dropout_conclusions(mnist_experiment, trainguard_check, mnist_framework):
    """The report's conclusions on the seed mean: dropout shrinks the gap and lowers the final test loss."""
    _checked(mnist_experiment, mnist_framework)
    trainguard_check(mnist_experiment.conclusions(mnist_framework))
