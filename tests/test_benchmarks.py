"""The side-by-side benchmark runs end to end on a few generated images (timings are not checked)."""

import numpy as np

from benchmarks import naive_loop, side_by_side


def test_naive_loop_augments_like_the_engine_per_sample():
    images = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    plain = naive_loop.ArrayCIFAR(images, np.zeros(4, dtype=np.int64))
    cropped = naive_loop.ArrayCIFAR(images, np.zeros(4, dtype=np.int64), augment="flip_crop")
    assert plain[0][0].shape == cropped[0][0].shape == (3, 32, 32)
    assert float(plain[0][0].min()) >= -1.0 and float(plain[0][0].max()) <= 1.0
    assert any(not np.array_equal(plain[i][0].numpy(), cropped[i][0].numpy()) for i in range(4))


def test_side_by_side_prints_a_row_per_model_with_its_augmentation(capsys):
    assert side_by_side.main(["--images", "100", "--models", "Baseline1", "Baseline2", "--profile", "seed",
                              "--augment", "--device", "cpu"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| Baseline")]
    assert [r.split(" | ")[:3] for r in rows] == [["| Baseline1", "64", "none"], ["| Baseline2", "8", "flip_crop"]]
    assert all(r.rstrip(" |").endswith("×") for r in rows)
