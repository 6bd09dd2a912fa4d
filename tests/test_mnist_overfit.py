"""MNIST overfitting and the dropout fix (PROTOCOL.md, Experiment 1), per framework.

Each check is made on the mean over the profile's MNIST seeds (held out of its baseline seeds):
the gaps against the bands derived from the per-seed baseline, then the report's conclusions.
Keras cases are skipped, with the reason, where TensorFlow is not installed.
"""

import pytest

pytestmark = pytest.mark.slow


@pytest.mark.trainguard_kinds("mnist_gaps")
def test_mnist_gaps_within_baseline(trainguard_case):
    """The gap appears without dropout and dropout shrinks it, as much as in the baseline (derived bands)."""
    trainguard_case.check()


@pytest.mark.trainguard_kinds("mnist_conclusions")
def test_mnist_dropout_conclusions(trainguard_case):
    """The report's conclusions on the seed mean: dropout shrinks the gap and lowers the final test loss."""
    trainguard_case.check()
