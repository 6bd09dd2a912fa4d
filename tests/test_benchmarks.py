"""The side-by-side benchmark runs end to end on a few generated images (timings are not checked)."""

import numpy as np
import pytest

from benchmarks import side_by_side


def test_naive_loop_augments_like_the_engine_per_sample():
    from benchmarks import naive_loop  # here, not above: torchvision's import would slow every collection

    images = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    plain = naive_loop.ArrayCIFAR(images, np.zeros(4, dtype=np.int64))
    cropped = naive_loop.ArrayCIFAR(images, np.zeros(4, dtype=np.int64), augment="flip_crop")
    assert plain[0][0].shape == cropped[0][0].shape == (3, 32, 32)
    assert float(plain[0][0].min()) >= -1.0 and float(plain[0][0].max()) <= 1.0
    assert any(not np.array_equal(plain[i][0].numpy(), cropped[i][0].numpy()) for i in range(4))


def test_side_by_side_prints_a_row_per_model_with_its_augmentation(capsys):
    assert side_by_side.main(["--images", "100", "--models", "Baseline1", "Baseline2", "--profile", "seed",
                              "--augment", "--device", "cpu", "--rounds", "2"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| Baseline")]
    assert [r.split(" | ")[:3] for r in rows] == [["| Baseline1", "64", "none"], ["| Baseline2", "8", "flip_crop"]]
    # naive s | engine s | ratio, each "median (lowest–highest)" over the 2 rounds
    assert all(len(r.split(" | ")) == 6 and r.split(" | ")[5].count("–") == 1 and "×" in r.split(" | ")[5]
               for r in rows)


def test_ratios_are_paired_per_round_then_summarised():
    # Round 2 ran on a machine 2x slower for both loops: its ratio is still 2, and so is the median.
    rounds = [{"naive": 4.0, "engine": 2.0}, {"naive": 8.0, "engine": 4.0}, {"naive": 6.0, "engine": 2.0}]
    assert side_by_side.row_of(rounds, ["engine"]) == ["6.00 (4.00–8.00)", "2.00 (2.00–4.00)",
                                                       "2.00× (2.00–3.00)"]
    assert side_by_side.spread([1.5]) == "1.50"


def test_side_by_side_needs_a_round(capsys):
    with pytest.raises(SystemExit):
        side_by_side.main(["--rounds", "0"])
    assert "--rounds 0" in capsys.readouterr().err
