"""MNIST overfitting and the dropout fix (PROTOCOL.md, Experiment 1), per framework: the ci profile's declared
experiments (trainguard.experiments.mnist_overfit:torch and :keras), checked as any declared experiment is.

Each check is made on the mean over the experiment's check seeds (held out of its baseline seeds): every declared
metric (train loss, test loss, the gap) of both variants inside the band of the stored baseline seeds, then the
report's conclusions as claims (dropout shrinks the gap and lowers the final test loss). The Keras case is skipped,
with the reason, where TensorFlow is not installed.
"""

import pytest

pytestmark = pytest.mark.slow


@pytest.mark.trainguard_kinds("experiments")
@pytest.mark.trainguard_experiment("torch", "keras")  # the MNIST plug-in's arms, whatever else the profile declares
def test_mnist_overfit_within_baseline(trainguard_case):  # [torch-nodrop-10], [torch-dropout-10], [torch-claims], keras
    """Each variant's metrics within their bands, and the report's conclusions held, on the check seeds' mean."""
    trainguard_case.check()


@pytest.mark.trainguard_kinds("experiment_replay")
@pytest.mark.trainguard_experiment("torch", "keras")
def test_mnist_overfit_replays(trainguard_case):  # [torch], [keras] (its child reports every batch's loss and lr)
    """The golden run of each variant rerun step by step: identical, or within its noise envelope."""
    trainguard_case.check()
