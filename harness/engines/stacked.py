"""Several seeds of one model trained at once, as one vmapped model (``--stack-seeds``).

At batch 8 a GPU spends its time launching kernels, not computing: one seed of the ``seed``
protocol is ~125,000 optimizer steps per model. Stacking k seeds' parameters along a new leading
dimension (``torch.func.stack_module_state``) and running the model under ``torch.func.vmap``
makes every launch do k seeds' work, so k seeds cost about one seed's launches.

Per seed everything is what a separate run (``engine.train``) of that seed draws:
- the initial weights (the model is built after ``seed_everything(seed)``);
- the data order and the flips/crops (the same per-seed generators, the same calls);
- the dropout masks: each :class:`SeedDropout` reads a mask passed in as a per-seed buffer, drawn
  with the seed's own generator by the very call ``nn.functional.dropout`` makes on a CPU
  (``empty_like(x).bernoulli_(1 - p)``), starting from the state the global generator has in a
  separate run after the model was built. On CUDA the separate run's fused dropout kernel draws
  differently, so there the stacked dropout masks are equal in distribution only.
- the loss is the sum of the seeds' mean losses: its gradient for seed i's slice is seed i's
  gradient, and SGD/Adam are element-wise, so seed i's update is its own.

What differs is the arithmetic: a vmapped convolution is one grouped convolution and a vmapped
linear layer one batched matrix product, which sum in another order than the separate run's
kernels. The per-seed results therefore equal separate runs to rounding at first and then drift
as rounding does in any chaotic training (tests/test_stacked.py states and checks the tolerance
on CPU), and a stacked run is its own baseline class (``cpu-stacked``, ``cuda-stacked``).
"""

from __future__ import annotations

import copy
import math
import time
from typing import Callable

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from . import engine
from .. import models
from ..stores.data import Dataset
from .engine import (EpochCallback, apply_augment, augment_draws, autocast, device_name, make_optimizer,
                     mark_diverged, normalize, peak_memory_mb, record_epoch, seed_everything, to_device_split)
from ..core.history import History
from ..core.spec import ConfigError, TrainConfig


class SeedDropout(nn.Module):
    """Dropout whose mask comes in from outside (a buffer that vmap slices per seed).

    In eval mode, or with p = 0, it is the identity, as ``nn.Dropout`` is. In train mode it
    multiplies by ``mask``, which the stacked trainer draws per seed before each step.
    """

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p
        self.register_buffer("mask", torch.ones(0), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        return x * self.mask


def with_seed_dropout(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with every ``nn.Dropout`` replaced by a :class:`SeedDropout` of the same p."""
    model = copy.deepcopy(model)
    for name, child in list(model.named_modules()):
        for attr, sub in list(child.named_children()):
            if type(sub) is nn.Dropout:  # exactly nn.Dropout: Dropout2d etc. draw per channel
                setattr(child, attr, SeedDropout(sub.p))
            elif isinstance(sub, nn.modules.dropout._DropoutNd) and sub.p > 0:
                raise ConfigError(f"--stack-seeds: {type(sub).__name__} in {name or 'the model'}.{attr} is not "
                                  f"supported (only nn.Dropout); train this model without --stack-seeds")
    return model


def dropout_shapes(model: nn.Module, sample: torch.Tensor) -> list[tuple[str, float, tuple[int, ...]]]:
    """(module name, p, input shape without the batch dimension) of each dropout, in call order."""
    calls: list[tuple[str, float, tuple[int, ...]]] = []
    hooks = [module.register_forward_pre_hook(
                 lambda mod, args, name=name: calls.append((name, mod.p, tuple(args[0].shape[1:]))))
             for name, module in model.named_modules() if type(module) is nn.Dropout and module.p > 0]
    was_training = model.training
    try:
        with torch.no_grad():
            model.eval()(sample)  # eval: no random numbers drawn, no BatchNorm statistics touched
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()
    return calls


def augment_stack(batch_uint8: torch.Tensor, kind: str, rngs: list[torch.Generator]) -> torch.Tensor:
    """Augment k seeds' batches, concatenated seed after seed, in one pass on the device; each seed's
    flips and crops are the ones its own generator gives its separate run (engine.augment)."""
    per_seed = len(batch_uint8) // len(rngs)
    draws = [augment_draws(per_seed, kind, rng) for rng in rngs]
    if draws[0][0] is None:
        return batch_uint8
    flips = torch.cat([flip for flip, _ in draws])
    offsets = None if draws[0][1] is None else torch.cat([off for _, off in draws], dim=1)
    return apply_augment(batch_uint8, flips, offsets)


class SeedStack:
    """k independent models of one architecture, one per seed, as stacked tensors."""

    def __init__(self, model_name: str, seeds: list[int], device: torch.device,
                 model_factory: Callable[[], nn.Module] | None, sample: torch.Tensor) -> None:
        build = model_factory or (lambda: models.build(model_name))
        self.device = device
        members, self.dropout_generators = [], []
        for seed in seeds:
            seed_everything(seed)
            members.append(build().to(device))
            # A separate run draws its dropout masks from the global generator, starting here.
            generator = torch.Generator(device=device)
            generator.set_state(torch.get_rng_state() if device.type == "cpu" else torch.cuda.get_rng_state(device))
            self.dropout_generators.append(generator)
        self.parameter_count = models.parameter_count(members[0])
        self.dropouts = dropout_shapes(members[0], sample)
        self.module = with_seed_dropout(members[0])  # the template whose forward vmap runs; its own tensors unused
        self.eval_module = with_seed_dropout(members[0])  # evaluates one seed's slice at a time
        params, buffers = stack_module_state([with_seed_dropout(m) for m in members])
        self.params = {k: v.detach().requires_grad_(True) for k, v in params.items()}
        self.buffers = buffers

    def draw_masks(self, batch: int) -> None:
        """Per seed, the masks a separate run's dropout calls draw for a batch of this size, in call order."""
        for name, p, shape in self.dropouts:
            masks = [torch.empty((batch, *shape), device=self.device).bernoulli_(1 - p, generator=g).div_(1 - p)
                     for g in self.dropout_generators]
            self.buffers[f"{name}.mask"] = torch.stack(masks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (k, B, C, H, W) → (k, B, classes), each seed through its own weights."""
        def one(params, buffers, images):
            return functional_call(self.module, (params, buffers), (images,))
        return vmap(one)(self.params, self.buffers, x)

    def member(self, i: int) -> tuple[dict, dict]:
        """Seed i's tensors (views into the stack) for ``functional_call``."""
        params = {k: v[i].detach() for k, v in self.params.items()}
        buffers = {k: v[i] for k, v in self.buffers.items() if not k.endswith(".mask")}
        return params, buffers


class _Member(nn.Module):
    """Seed i of a stack as an ordinary module, so that the engine's evaluation runs on it unchanged."""

    def __init__(self, stack: SeedStack, i: int) -> None:
        super().__init__()
        self.stack, self.i = stack, i

    def forward(self, x):
        params, buffers = self.stack.member(self.i)
        return functional_call(self.stack.eval_module, (params, buffers), (x,))

    def train(self, mode: bool = True):
        self.stack.eval_module.train(mode)
        return super().train(mode)


def train_stacked(model_name: str, dataset: Dataset, config: TrainConfig, epochs: int, seeds: list[int],
                  device: torch.device, on_epoch: EpochCallback | None = None,
                  model_factory: Callable[[], nn.Module] | None = None, on_batch: Callable[[], None] | None = None,
                  precision: str = "fp32", compile_model: bool = False) -> list[History]:
    """Train ``model_name`` for each seed in ``seeds`` at once; return one History per seed, in order.

    A seed whose loss becomes NaN/inf is marked ``diverged`` at that epoch; the other seeds go on
    (their tensors are independent of it). Each epoch's ``seconds`` is the stack's wall time divided
    by k: the share of one seed. ``on_epoch(history, record)`` is called per seed, as the engine calls it.

    ``compile_model``: ``torch.compile`` the step's forward and loss (and so its backward); on CUDA in
    mode ``reduce-overhead``, which replays the step as a CUDA graph — one launch instead of hundreds,
    the lever for batch-8 training. On a CPU the default mode.
    """
    if len(set(seeds)) != len(seeds) or not seeds:
        raise ConfigError(f"--stack-seeds: seeds must be distinct and at least one, got {seeds}")
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    x_train, y_train = to_device_split(dataset.x_train, dataset.y_train, device)
    x_test, y_test = to_device_split(dataset.x_test, dataset.y_test, device)
    validation = to_device_split(dataset.x_val, dataset.y_val, device) if dataset.x_val is not None else None
    stack = SeedStack(model_name, seeds, device, model_factory, normalize(x_train[:1], config.inputs))
    histories = [History(model=model_name, seed=s, device=device_name(device), parameters=stack.parameter_count)
                 for s in seeds]
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    try:
        _train_epochs(stack, histories, x_train, y_train, (x_test, y_test), validation, config, epochs, seeds, device,
                      on_epoch, on_batch, precision, compile_model)
    except torch.OutOfMemoryError as exc:
        for history in histories:
            if history.completed:
                history.status, history.failed_epoch = "oom", len(history.epochs) + 1
                history.message = (f"out of memory on {device_name(device)} with {len(seeds)} seeds stacked "
                                   f"({str(exc).splitlines()[0][:200]}); stack fewer seeds or use a smaller batch")
    for history in histories:
        history.peak_memory_mb = peak_memory_mb(device)
    return histories


def _train_epochs(stack: SeedStack, histories: list[History], x_train, y_train, test, validation,
                  config: TrainConfig, epochs: int, seeds: list[int], device: torch.device,
                  on_epoch: EpochCallback | None, on_batch: Callable[[], None] | None, precision: str,
                  compile_model: bool = False) -> None:
    # the engine's seams, looked up at run time (engine.make_criterion, engine.epoch_order): the same loss and data
    # order as a separate run, and a self-test that replaces one reaches stacked runs too
    criterion = engine.make_criterion(config)

    def losses(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Scores (k, B, classes) and each seed's mean loss (k,)."""
        with autocast(device, precision):
            out = stack.forward(x)
            return out, vmap(criterion)(out, y)

    if compile_model:
        losses = torch.compile(losses, mode="reduce-overhead" if device.type == "cuda" else None)
    optimizer = make_optimizer(config, stack.params.values())
    order_rngs = [torch.Generator().manual_seed(s) for s in seeds]
    augment_rngs = [torch.Generator().manual_seed(s + 1_000_003) for s in seeds]
    n, k = len(x_train), len(seeds)
    members = [_Member(stack, i) for i in range(k)]
    for epoch in range(1, epochs + 1):
        stack.module.train()
        started = time.perf_counter()
        permutations = torch.stack([engine.epoch_order(n, g, torch.device("cpu")) for g in order_rngs]).to(device)
        loss_sums = torch.zeros(k, device=device, dtype=torch.float64)
        correct = torch.zeros(k, device=device, dtype=torch.int64)
        for start in range(0, n, config.batch_size):
            idx = permutations[:, start:start + config.batch_size]  # (k, B)
            x = normalize(augment_stack(x_train[idx.flatten()], config.augment, augment_rngs), config.inputs)
            x = x.unflatten(0, idx.shape)  # (k, B, C, H, W)
            y = y_train[idx]  # (k, B)
            stack.draw_masks(idx.shape[1])
            out, per_seed = losses(x, y)  # (k, B, classes), (k,)
            optimizer.zero_grad(set_to_none=True)
            per_seed.sum().backward()
            optimizer.step()
            loss_sums += per_seed.detach().double() * idx.shape[1]
            correct += (out.detach().argmax(2) == y).sum(1)
            if on_batch is not None:
                on_batch()
        seconds = (time.perf_counter() - started) / k
        train_losses = (loss_sums / n).tolist()
        for i, history in enumerate(histories):
            if not history.completed:  # diverged in an earlier epoch
                continue
            if not math.isfinite(train_losses[i]):
                mark_diverged(history, epoch, train_losses[i], f"seed {seeds[i]}, {k} seeds stacked")
                continue
            record_epoch(members[i], history, epoch, epochs, train_losses[i], 100.0 * correct[i].item() / n, seconds,
                         test, validation, config, precision, on_epoch)
        if not any(h.completed for h in histories):
            break
