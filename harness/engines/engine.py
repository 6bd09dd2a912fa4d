"""The PyTorch training engine: one readable loop, data kept on the training device.

Given a model name, a data set and a training config, it trains to a number of
epochs and returns a :class:`History` with one record per epoch. A run to the
largest budget serves every smaller one: with a constant learning rate, the same
seed and the same data order, the first 10 epochs of a 20-epoch run *are* a
10-epoch run (tests/test_engine.py proves it bit for bit on CPU). Evaluation
after each epoch draws no random numbers, so it does not disturb that.
"""

from __future__ import annotations

import math
import random
import time
from typing import Callable

import numpy as np
import torch
from torch import nn

from .. import models
from ..stores.data import Dataset
from ..core.history import EpochRecord, History
from ..core.spec import PRECISIONS, ConfigError, TrainConfig

EpochCallback = Callable[[History, EpochRecord], None]
# Called after every optimiser step with (step, loss, model, optimizer): the golden runs (trainguard.replay.golden_runs)
# record the per-step trace through it. Reading the loss there syncs the device each step, so nights pass None.
StepCallback = Callable[[int, torch.Tensor, nn.Module, torch.optim.Optimizer], None]
DIVERGENCE_CHECK_EVERY = 50  # steps between NaN/inf checks of the running loss


def resolve_device(name: str) -> torch.device:
    """``auto`` → CUDA when available, else CPU. Asking for CUDA without it is an error, never a silent CPU run."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"--device {name}: CUDA is not available on this machine (torch {torch.__version__}, "
                              f"torch.version.cuda={torch.version.cuda}); use --device cpu or auto")
        return torch.device(name)
    raise ConfigError(f"--device {name!r}: expected auto, cpu or cuda")




def device_class(device: torch.device, precision: str = "fp32", compiled: bool = False, stacked: bool = False) -> str:
    """The baseline family a run belongs to: numbers are never compared across classes.

    bf16 autocast, torch.compile and several seeds stacked in one model (trainguard.engines.stacked) change
    the arithmetic, so each mode is its own class (``cpu-bf16``, ``cuda-compile``, ``cuda-stacked``,
    ``cuda-bf16-compile``) with its own baseline file.
    """
    return (device.type + ("-bf16" if precision == "bf16" else "") + ("-compile" if compiled else "")
            + ("-stacked" if stacked else ""))


def check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise ConfigError(f"--precision {precision!r}: expected one of {', '.join(PRECISIONS)}")
    return precision


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return "cpu"


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device


def to_device_images(images: np.ndarray, device: torch.device) -> torch.Tensor:
    """uint8 HWC (or HW) numpy → uint8 NCHW tensor on the device. Scaling happens per batch, on the device."""
    tensor = torch.from_numpy(np.ascontiguousarray(images))
    if tensor.ndim == 3:  # greyscale
        tensor = tensor.unsqueeze(-1)
    # channels_last: the NHWC layout the arrays already have, which oneDNN and cuDNN convolve
    # fastest (docs/speed.md); the logical shape stays NCHW.
    return tensor.permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last).to(device)


def to_device_split(images: np.ndarray, labels: np.ndarray, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """One split (images, labels) on the device: uint8 NCHW images (to_device_images), int64 labels."""
    return to_device_images(images, device), torch.from_numpy(labels.astype(np.int64)).to(device)


def normalize(batch_uint8: torch.Tensor, inputs: str = "pm1") -> torch.Tensor:
    """uint8 0–255 → float: ``pm1`` scales to [-1, 1] (the course code's Normalize(0.5, 0.5));
    ``raw`` keeps 0–255, for a model trained on unscaled pixels."""
    batch = batch_uint8.float()
    return batch.div_(127.5).sub_(1.0) if inputs == "pm1" else batch


CROP_PAD = 4  # RandomCrop(32, padding=4), as the course code's transform


def augment_draws(n: int, kind: str, rng: torch.Generator) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """The random numbers one batch of ``n`` images draws for its augmentation, in a fixed order
    (flips, then crop offsets), from ``rng``: a CPU generator seeded from the run's seed, so the
    augmentation is reproducible and independent of the model's own random numbers."""
    if kind == "none":
        return None, None
    flip = torch.rand(n, generator=rng).lt(0.5)
    offsets = torch.randint(0, 2 * CROP_PAD + 1, (2, n), generator=rng) if kind == "flip_crop" else None
    return flip, offsets


def apply_augment(batch_uint8: torch.Tensor, flip: torch.Tensor | None, offsets: torch.Tensor | None) -> torch.Tensor:
    """Flips and padded crops of a uint8 NCHW batch, per sample, without leaving the device."""
    if flip is None:
        return batch_uint8
    n, _, height, width = batch_uint8.shape
    device = batch_uint8.device
    batch = torch.where(flip.to(device)[:, None, None, None], batch_uint8.flip(3), batch_uint8)
    if offsets is not None:
        pad = CROP_PAD
        padded = nn.functional.pad(batch, (pad, pad, pad, pad))  # zeros: black, as RandomCrop(padding=4)
        offsets = offsets.to(device)
        rows = (offsets[0][:, None] + torch.arange(height, device=device))[:, :, None]  # (n, H, 1)
        cols = (offsets[1][:, None] + torch.arange(width, device=device))[:, None, :]  # (n, 1, W)
        # Advanced indexing on dims 0, 2, 3 puts them first: the result is (n, H, W, C).
        crops = padded[torch.arange(n, device=device)[:, None, None], :, rows, cols]
        batch = crops.permute(0, 3, 1, 2)  # NCHW view of NHWC memory: channels_last for free
    return batch


def augment(batch_uint8: torch.Tensor, kind: str, rng: torch.Generator) -> torch.Tensor:
    """Random flips (``flip``) and also padded crops (``flip_crop``) of a uint8 NCHW batch; ``none``: as is."""
    return apply_augment(batch_uint8, *augment_draws(len(batch_uint8), kind, rng))


def make_criterion(config: TrainConfig) -> nn.Module:
    """The training loss: cross-entropy, mean over the batch (one function, so a self-test can change it)."""
    return nn.CrossEntropyLoss()


def epoch_order(n: int, rng: torch.Generator, device: torch.device) -> torch.Tensor:
    """This epoch's order of the ``n`` training images, drawn from the run's own order generator."""
    return torch.randperm(n, generator=rng).to(device)


def make_optimizer(config: TrainConfig, parameters) -> torch.optim.Optimizer:
    if config.optimizer == "adam":
        # epsilon 1e-7, not torch's 1e-8: fixed, since every adam baseline and golden run was measured with it
        # (docs/own-model.md says where the value comes from).
        return torch.optim.Adam(parameters, lr=config.lr, eps=1e-7, weight_decay=config.weight_decay)
    return torch.optim.SGD(parameters, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)


def autocast(device: torch.device, precision: str):
    """bf16 autocast for ``--precision bf16`` (AMX on recent x86 CPUs, tensor cores on GPUs); else a no-op."""
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


@torch.inference_mode()
def evaluate(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int,
             inputs: str = "pm1", precision: str = "fp32") -> tuple[float, float]:
    """Mean loss and accuracy (percent) in eval mode."""
    model.eval()
    criterion = nn.CrossEntropyLoss(reduction="sum")
    loss_sum = torch.zeros((), device=images.device, dtype=torch.float64)
    correct = torch.zeros((), device=images.device, dtype=torch.int64)
    for start in range(0, len(images), batch_size):
        x = normalize(images[start:start + batch_size], inputs)
        y = labels[start:start + batch_size]
        with autocast(images.device, precision):
            out = model(x)
        loss_sum += criterion(out.float(), y).double()
        correct += (out.argmax(1) == y).sum()
    n = len(images)
    return loss_sum.item() / n, 100.0 * correct.item() / n


def evaluation_repeat_diff(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, config: TrainConfig,
                           precision: str = "fp32") -> float:
    """|loss of a second evaluation − loss of the first| on the first evaluation batch.

    An evaluation is a function of the weights and the images: it must not change when repeated.
    Dropout left on at evaluation (``model.eval()`` forgotten) or test-time augmentation makes it
    random — a regression too small for the accuracy bands of a noisy model to see, caught exactly here.
    """
    n = min(len(images), config.eval_batch_size)
    first, _ = evaluate(model, images[:n], labels[:n], config.eval_batch_size, config.inputs, precision)
    second, _ = evaluate(model, images[:n], labels[:n], config.eval_batch_size, config.inputs, precision)
    return abs(second - first)


def train(model_name: str, dataset: Dataset, config: TrainConfig, epochs: int, seed: int,
          device: torch.device, on_epoch: EpochCallback | None = None,
          model_factory: Callable[[], nn.Module] | None = None, on_batch: Callable[[], None] | None = None,
          precision: str = "fp32", compile_model: bool = False, on_step: StepCallback | None = None) -> History:
    """Train ``model_name`` for ``epochs`` epochs; return the per-epoch history.

    A NaN or infinite loss stops the run at the end of the epoch where it appeared
    (checking every batch would force a device sync per step); the history is
    then marked ``diverged`` with that epoch and holds only the finite epochs.
    Running out of device memory marks it ``oom`` with a suggestion.
    """
    seed_everything(seed)
    check_precision(precision)
    if device.type == "cuda" and not torch.are_deterministic_algorithms_enabled():
        # Fixed input shapes: let cuDNN pick the fastest kernels once. (Not bit-reproducible across
        # machines, like every GPU result here; CUDA results have their own baseline class.)
        torch.backends.cudnn.benchmark = True
    model = (model_factory or (lambda: models.build(model_name)))().to(device, memory_format=torch.channels_last)
    history = History(model=model_name, seed=seed, device=device_name(device),
                      parameters=models.parameter_count(model))
    step_model = torch.compile(model) if compile_model else model  # same parameters, compiled forward
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    try:
        _train_epochs(step_model, history, dataset, config, epochs, seed, device, on_epoch, on_batch, precision,
                      on_step)
    except torch.OutOfMemoryError as exc:
        history.status, history.failed_epoch = "oom", len(history.epochs) + 1
        history.message = (f"out of memory on {device_name(device)} ({str(exc).splitlines()[0][:200]}); "
                           f"try a smaller batch_size or eval_batch_size in the profile, or another --device")
    history.peak_memory_mb = peak_memory_mb(device)
    return history


def peak_memory_mb(device: torch.device) -> float | None:
    """The run's peak memory in MiB: allocated CUDA memory since the run's start, or the process's peak RSS."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    try:
        import resource
    except ImportError:  # Windows
        return None
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _train_epochs(model: nn.Module, history: History, dataset: Dataset, config: TrainConfig, epochs: int,
                  seed: int, device: torch.device, on_epoch: EpochCallback | None,
                  on_batch: Callable[[], None] | None = None, precision: str = "fp32",
                  on_step: StepCallback | None = None) -> None:
    optimizer = make_optimizer(config, model.parameters())
    criterion = make_criterion(config)
    x_train, y_train = to_device_split(dataset.x_train, dataset.y_train, device)
    x_test, y_test = to_device_split(dataset.x_test, dataset.y_test, device)
    validation = None
    if dataset.x_val is not None:
        validation = to_device_split(dataset.x_val, dataset.y_val, device)
    # The shuffle comes from its own CPU generator so that the data order depends on the
    # seed alone, not on how many random numbers the model's init or dropout consumed.
    order_rng = torch.Generator().manual_seed(seed)
    augment_rng = torch.Generator().manual_seed(seed + 1_000_003)
    n = len(x_train)
    steps_done = 0
    for epoch in range(1, epochs + 1):
        model.train()
        started = time.perf_counter()
        permutation = epoch_order(n, order_rng, device)
        loss_sum = torch.zeros((), device=device, dtype=torch.float64)
        correct = torch.zeros((), device=device, dtype=torch.int64)
        diverged_at = None
        for step, start in enumerate(range(0, n, config.batch_size), 1):
            idx = permutation[start:start + config.batch_size]
            x = normalize(augment(x_train[idx], config.augment, augment_rng), config.inputs)
            y = y_train[idx]
            with autocast(device, precision):
                out = model(x)
                loss = criterion(out, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += loss.detach().double() * len(idx)
            correct += (out.detach().argmax(1) == y).sum()
            steps_done += 1
            if on_step is not None:
                on_step(steps_done, loss.detach(), model, optimizer)
            if on_batch is not None:
                on_batch()  # counts only: reading the loss here would sync the device every step
            # A NaN/inf loss poisons every later step: look every DIVERGENCE_CHECK_EVERY steps (one
            # device sync per that many steps, not per step) and stop inside the epoch.
            if step % DIVERGENCE_CHECK_EVERY == 0 and not math.isfinite(loss_sum.item()):
                diverged_at = start + len(idx)
                break
        train_loss = loss_sum.item() / n
        seconds = time.perf_counter() - started
        if diverged_at is not None or not math.isfinite(train_loss):
            mark_diverged(history, epoch, loss_sum.item(),
                          f"by image {diverged_at:,} of {n:,}" if diverged_at is not None else "by the end")
            break
        record_epoch(model, history, epoch, epochs, train_loss, 100.0 * correct.item() / n, seconds, (x_test, y_test),
                     validation, config, precision, on_epoch)


def mark_diverged(history: History, epoch: int, loss: float, where: str) -> None:
    """Stop a run whose training loss became NaN or infinite (every later step would be poisoned)."""
    history.status, history.failed_epoch = "diverged", epoch
    history.message = (f"training loss became {loss} in epoch {epoch} ({where}); the run was stopped there — lower "
                       f"the learning rate or check the data")


def record_epoch(model: nn.Module, history: History, epoch: int, epochs: int, train_loss: float, train_acc: float,
                 seconds: float, test, validation, config: TrainConfig, precision: str,
                 on_epoch: EpochCallback | None) -> EpochRecord:
    """The end of one epoch of one run (the engine's and each seed of a stack's): evaluate on the test split —
    twice after the last epoch, to measure that evaluation is repeatable — and on the validation split, then
    record the epoch and announce it."""
    test_loss, test_acc = evaluate(model, *test, config.eval_batch_size, config.inputs, precision)
    extra = {}
    if epoch == epochs:
        extra["eval_repeat_diff"] = evaluation_repeat_diff(model, *test, config, precision)
    if validation is not None:
        val_loss, val_acc = evaluate(model, *validation, config.eval_batch_size, config.inputs, precision)
        extra.update(val_loss=val_loss, val_acc=val_acc)
    record = EpochRecord(epoch=epoch, train_loss=train_loss, train_acc=train_acc, test_loss=test_loss,
                         test_acc=test_acc, seconds=seconds, extra=extra)
    history.epochs.append(record)
    if on_epoch is not None:
        on_epoch(history, record)
    return record
