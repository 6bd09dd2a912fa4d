"""The foreign script of examples/mnist_classic guarded on the real MNIST copy (TRAINGUARD_DATA_DIR holds
mnist.npz: the adapter trains on its first 2,000 training images and evaluates on the first 500 test images): the
golden replayed identical, the baseline measured, a held-out seed within every band. Slow: real data, about two
minutes on 2 CPU cores."""

import os
import shutil
from pathlib import Path

import pytest

from trainguard import cli

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "mnist_classic"


@pytest.mark.slow
def test_the_foreign_script_on_real_mnist_replays_identical_and_passes_its_bands(tmp_path, monkeypatch, capsys):
    data = os.environ.get("TRAINGUARD_DATA_DIR")
    if not data or not (Path(data) / "mnist.npz").exists():
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true without TRAINGUARD_DATA_DIR/mnist.npz: this test needs the real MNIST copy")
        pytest.skip("no TRAINGUARD_DATA_DIR with mnist.npz")
    for name in ("train.py", "guard.py"):
        shutil.copy(EXAMPLE / name, tmp_path / name)
    monkeypatch.chdir(tmp_path)
    common = ["--data-dir", data]
    for action in (["replay", "--update"], ["replay"], ["baseline"], ["check"]):
        assert cli.main(["guard", "guard.py:mnist", *action, *common]) == 0, capsys.readouterr()
    out = capsys.readouterr().out
    assert "identical: mnist default: identical to the golden run" in out and "4 passed, 0 failed" in out
    accuracies = [line for line in out.splitlines() if line.startswith("PASS default-2 test_acc")]
    print(accuracies[0])
    assert float(accuracies[0].split(":")[1].split()[0]) > 80  # real digits are learnt (chance: 10)
