"""The golden runs of the chosen profile (``--tg-profile``, default ``ci``), replayed step by step.

Seconds per model: ``pytest -m replay --tg-profile ci``. Each case is identical to its golden, within the
measured rounding noise on another environment, or it fails naming the first step and quantity that moved
(docs/replay.md). Real data, so it is also part of ``pytest -m slow``.
"""

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.replay]


def test_replay_matches_golden(trainguard_replay, trainguard_check, golden_run):
    trainguard_check(trainguard_replay(golden_run))


def test_the_cifar_plug_in_replays_its_committed_golden_runs(capsys):
    """The CIFAR-10 plug-in's golden runs, committed beside the MNIST plug-ins' (baselines/ci/experiments/
    cifar-models-ci/golden, written by ``trainguard guard trainguard.experiments.cifar_models:ci replay --update
    --dir baselines/ci/experiments --threads 2``), replay through the guard as a user's would: every model identical
    or within the rounding noise measured when they were written. Needs the real CIFAR-10 (TRAINGUARD_DATA_DIR): a
    skip without it, a failure under CI=true."""
    import os
    from pathlib import Path

    from trainguard import cli
    from trainguard.core.spec import packaged_baselines_dir, strict_default

    data = os.environ.get("TRAINGUARD_DATA_DIR")
    if not data or not (Path(data) / "cifar10.npz").exists():
        if strict_default():
            pytest.fail("CI=true and no cifar10.npz in TRAINGUARD_DATA_DIR: the plug-in's replay needs the real data")
        pytest.skip("no cifar10.npz in TRAINGUARD_DATA_DIR")
    directory = packaged_baselines_dir() / "ci" / "experiments"
    code = cli.main(["guard", "trainguard.experiments.cifar_models:ci", "replay", "--dir", str(directory)])
    out = capsys.readouterr().out
    assert code == 0, out
    lines = [line for line in out.splitlines() if line.startswith(("identical:", "numerics differ:"))]
    assert len(lines) == 4, out  # one per model: Baseline1, Baseline2, NewModel1, NewModel2
