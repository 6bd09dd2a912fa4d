"""The training engine on CPU: determinism, budget snapshots, divergence."""

import dataclasses
import json

import pytest
import torch

from trainguard import models
from trainguard.stores import data
from trainguard.engines import engine
from trainguard.core.history import History
from trainguard.core.spec import ConfigError, TrainConfig

CPU = torch.device("cpu")
CONFIG = TrainConfig(lr=0.01, batch_size=16, eval_batch_size=50)


@pytest.fixture(scope="module")
def tiny():
    return data.synthetic("cifar10", train_per_class=8, test_per_class=5)


@pytest.mark.parametrize("model", ["Baseline2", "NewModel2"])  # NewModel2: dropout and BatchNorm
def test_same_seed_gives_identical_histories(tiny, model):
    a = engine.train(model, tiny, CONFIG, 2, seed=3, device=CPU)
    b = engine.train(model, tiny, CONFIG, 2, seed=3, device=CPU)
    strip = lambda h: [dataclasses.replace(e, seconds=0.0) for e in h.epochs]
    assert strip(a) == strip(b)


def test_different_seed_gives_different_history(tiny):
    a = engine.train("Baseline2", tiny, CONFIG, 1, seed=3, device=CPU)
    b = engine.train("Baseline2", tiny, CONFIG, 1, seed=4, device=CPU)
    assert a.epochs[0].train_loss != b.epochs[0].train_loss


def test_short_run_equals_prefix_of_long_run_bit_for_bit(tiny):
    """One run to the largest budget serves every smaller budget (constant lr, same order)."""
    long = engine.train("NewModel2", tiny, CONFIG, 4, seed=7, device=CPU)
    short = engine.train("NewModel2", tiny, CONFIG, 2, seed=7, device=CPU)
    for a, b in zip(short.epochs, long.epochs[:2]):
        assert (a.train_loss, a.train_acc, a.test_loss, a.test_acc) == (b.train_loss, b.train_acc, b.test_loss, b.test_acc)
    assert long.at(2).test_loss == short.at(2).test_loss


def test_history_round_trips_through_json(tiny):
    history = engine.train("Baseline1", tiny, CONFIG, 2, seed=0, device=CPU)
    again = History.from_json(json.loads(json.dumps(history.to_json())))
    assert again == history
    assert set(history.to_json()["epochs"][0]) >= {"train_loss", "train_acc", "test_loss", "test_acc", "seconds"}


def test_records_running_metrics_per_epoch(tiny):
    history = engine.train("Baseline2", tiny, CONFIG, 3, seed=0, device=CPU)
    assert [e.epoch for e in history.epochs] == [1, 2, 3]
    for e in history.epochs:
        assert 0 <= e.train_acc <= 100 and 0 <= e.test_acc <= 100 and e.train_loss > 0 and e.seconds > 0
    assert history.parameters == 62006 and history.device == "cpu"


def test_divergence_stops_the_run_and_is_recorded(tiny):
    history = engine.train("Baseline2", tiny, dataclasses.replace(CONFIG, lr=1e6), 5, seed=0, device=CPU)
    assert history.status == "diverged" and history.failed_epoch is not None
    assert len(history.epochs) == history.failed_epoch - 1
    with pytest.raises(IndexError, match="diverged"):
        history.at(5)


def test_divergence_is_caught_inside_the_epoch(monkeypatch):
    """The run stops within the epoch where the loss turns NaN, not after finishing it."""
    monkeypatch.setattr(engine, "DIVERGENCE_CHECK_EVERY", 2)
    big = data.synthetic("cifar10", train_per_class=40, test_per_class=2)  # 400 images = 25 steps of 16
    steps = []
    history = engine.train("Baseline2", big, dataclasses.replace(CONFIG, lr=1e8), 3, seed=0, device=CPU,
                           on_batch=lambda: steps.append(1))
    assert history.status == "diverged" and history.failed_epoch == 1 and history.epochs == []
    assert len(steps) < 25 and "by image" in history.message and "in epoch 1" in history.message


def test_device_resolution():
    assert engine.resolve_device("cpu").type == "cpu"
    assert engine.resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ConfigError, match="expected auto, cpu or cuda"):
        engine.resolve_device("tpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA error")
def test_cuda_without_cuda_is_an_error_not_a_silent_cpu_run():
    with pytest.raises(ConfigError, match="CUDA is not available"):
        engine.resolve_device("cuda")


@pytest.mark.parametrize("name", models.MODEL_NAMES)
def test_docstring_states_the_true_parameter_count(name):
    count = models.parameter_count(models.build(name))
    assert f"{count:,} parameters" in models.REGISTRY[name].__doc__


def test_model_capacity_grows_as_the_report_describes():
    count = {n: models.parameter_count(models.build(n)) for n in models.MODEL_NAMES}
    assert count["Baseline2"] < count["NewModel1"] < count["NewModel2"]
    nm2 = models.build("NewModel2")
    assert sum(isinstance(m, torch.nn.MaxPool2d) for m in nm2.modules()) > 2
    assert any(isinstance(m, torch.nn.Dropout) for m in nm2.modules())


def test_out_of_memory_is_recorded_with_advice(tiny):
    class Greedy(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Linear(1, 1)

        def forward(self, x):
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    history = engine.train("Greedy", tiny, CONFIG, 2, seed=0, device=CPU, model_factory=Greedy)
    assert history.status == "oom" and history.failed_epoch == 1 and history.epochs == []
    assert "smaller batch_size" in history.message and "20.00 GiB" in history.message


def _images(n=6):
    return torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))


def test_augment_none_is_the_identity():
    batch = _images()
    assert engine.augment(batch, "none", torch.Generator()) is batch


def test_flip_crop_yields_shifted_flipped_copies_with_black_borders():
    batch = _images(64)
    out = engine.augment(batch, "flip_crop", torch.Generator().manual_seed(1))
    assert out.shape == batch.shape and out.dtype == torch.uint8
    padded = torch.nn.functional.pad(batch, (4, 4, 4, 4))
    for i in range(len(batch)):  # each output is some 32x32 window of the padded image, maybe mirrored
        windows = [padded[i, :, r:r + 32, c:c + 32] for r in range(9) for c in range(9)]
        assert any(torch.equal(out[i], w) or torch.equal(out[i], w.flip(2)) for w in windows)
    assert not torch.equal(out, batch)  # 64 images: some were moved


def test_flip_only_mirrors_about_half_and_is_seeded():
    batch = _images(200)
    out = engine.augment(batch, "flip", torch.Generator().manual_seed(2))
    flipped = [not torch.equal(o, b) for o, b in zip(out, batch)]
    assert all(torch.equal(o, b) or torch.equal(o, b.flip(2)) for o, b in zip(out, batch))
    assert 70 < sum(flipped) < 130
    assert torch.equal(out, engine.augment(batch, "flip", torch.Generator().manual_seed(2)))


def test_augmented_training_is_deterministic(tiny):
    config = dataclasses.replace(CONFIG, augment="flip_crop")
    a = engine.train("Baseline2", tiny, config, 2, seed=5, device=CPU)
    b = engine.train("Baseline2", tiny, config, 2, seed=5, device=CPU)
    plain = engine.train("Baseline2", tiny, CONFIG, 2, seed=5, device=CPU)
    assert [e.train_loss for e in a.epochs] == [e.train_loss for e in b.epochs]
    assert [e.train_loss for e in a.epochs] != [e.train_loss for e in plain.epochs]
