"""The golden runs of the chosen profile (``--tg-profile``, default ``ci``), replayed step by step.

Seconds per model: ``pytest -m replay --tg-profile ci``. Each case is identical to its golden, within the
measured rounding noise on another environment, or it fails naming the first step and quantity that moved
(docs/replay.md). Real data, so it is also part of ``pytest -m slow``.
"""

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.replay]


def test_replay_matches_golden(trainguard_replay, trainguard_check, golden_run):
    trainguard_check(trainguard_replay(golden_run))



@pytest.mark.trainguard_kinds("experiment_replay")
@pytest.mark.trainguard_experiment("ci")
def test_the_cifar10_plug_in_replays(trainguard_case):  # [replay]: every model's golden run, as the ci profile's
    """The CIFAR-10 plug-in's golden runs (the ci profile declares it), step by step, with its full-scale inputs."""
    trainguard_case.check()
