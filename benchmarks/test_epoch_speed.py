"""pytest-benchmark timings of one training epoch: engine vs the naive loop, per model.

    pytest benchmarks/ --benchmark-only              # 2,000 generated images, CPU or CUDA (auto)
    pytest benchmarks/ --benchmark-only --benchmark-compare   # against the last saved run

No timing is asserted (timing targets live in the printed comparison, not in pass/fail);
the benchmarks only check that both loops trained.
"""

import dataclasses

import pytest
import torch

from benchmarks.naive_loop import train_epochs as naive_epochs
from trainguard.stores import data
from trainguard.engines import engine
from trainguard.core.spec import load_profile

from trainguard.models import MODEL_NAMES as MODELS
DEVICE = engine.resolve_device("auto")


@pytest.fixture(scope="module")
def images():
    return data.synthetic("cifar10", train_per_class=200, test_per_class=10)


def _config(model):
    return dataclasses.replace(load_profile("cifar-models-ci").training(model), augment="none")


@pytest.mark.parametrize("model", MODELS)
def test_engine_epoch(benchmark, images, model):
    history = benchmark.pedantic(engine.train, args=(model, images, _config(model), 1, 0, DEVICE), rounds=3,
                                 warmup_rounds=1)
    assert history.completed and len(history.epochs) == 1


@pytest.mark.parametrize("model", MODELS)
def test_naive_epoch(benchmark, images, model):
    config = _config(model)
    seconds = benchmark.pedantic(naive_epochs, args=(model, images.x_train, images.y_train, config.batch_size, 1,
                                                     DEVICE), rounds=3, warmup_rounds=1)
    assert len(seconds) == 1 and seconds[0] > 0


@pytest.mark.skipif(DEVICE.type != "cpu" or not torch.backends.mkldnn.is_available(), reason="bf16 timing on CPU")
@pytest.mark.parametrize("model", ("Baseline2", "NewModel2"))
def test_engine_epoch_bf16(benchmark, images, model):
    history = benchmark.pedantic(engine.train, args=(model, images, _config(model), 1, 0, DEVICE),
                                 kwargs={"precision": "bf16"}, rounds=3, warmup_rounds=1)
    assert history.completed
