"""Epoch time of trainguard's engine against the naive reference loop, measured side by side in
one process on the same data, per model, with the ratio.

    python -m benchmarks.side_by_side                       # CPU or CUDA (auto), 5,000 generated images
    python -m benchmarks.side_by_side --images 50000 --bf16 --device cuda
    python -m benchmarks.side_by_side --profile seed --augment   # the protocol's flip + crop on both sides

Each loop trains two epochs; the second epoch's time is reported (the first pays one-off
costs: oneDNN/cuDNN kernel selection, allocator warm-up). Generated images of CIFAR-10's
shape are used unless --real is given: timing does not depend on pixel values.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time

import numpy as np
import torch

from benchmarks.naive_loop import train_epochs as naive_epochs
from harness import data, engine
from harness.spec import load_profile

MODELS = ("Baseline1", "Baseline2", "NewModel1", "NewModel2")


def dataset_of(n: int, real: bool) -> data.Dataset:
    if real:
        full = data.load("cifar10", allow_download=False)
        return data.Dataset(full.name, full.x_train[:n], full.y_train[:n], full.x_test[:1000], full.y_test[:1000],
                            full.source, full.verification)
    return data.synthetic("cifar10", train_per_class=n // 10, test_per_class=100)


def engine_epoch(model: str, dataset: data.Dataset, config, device, precision: str, compiled: bool) -> float:
    history = engine.train(model, dataset, config, 2, seed=0, device=device, precision=precision,
                           compile_model=compiled)
    return history.epochs[1].seconds


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=5000, help="training images per epoch [5000]")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--profile", default="ci", help="batch size and lr per model come from this profile [ci]")
    parser.add_argument("--models", nargs="*", default=list(MODELS))
    parser.add_argument("--bf16", action="store_true", help="also time the engine with --precision bf16")
    parser.add_argument("--compile", action="store_true", help="also time the engine with torch.compile")
    parser.add_argument("--real", action="store_true", help="use the real CIFAR-10 (TRAINGUARD_DATA_DIR)")
    parser.add_argument("--augment", action="store_true",
                        help="keep the profile's augmentation on both sides (naive: per-sample PIL transforms; "
                             "engine: per batch on the device) [both without]")
    args = parser.parse_args(argv)
    device = engine.resolve_device(args.device)
    profile = load_profile(args.profile)
    dataset = dataset_of(args.images, args.real)
    print(f"device {engine.device_name(device)}, torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"{len(dataset.x_train):,} {'real' if args.real else 'generated'} images, profile {profile.name}; "
          f"seconds per epoch (2nd epoch)")
    header = ["model", "batch", "augment", "naive s", "engine s", "ratio"]
    if args.bf16:
        header += ["engine bf16 s", "ratio bf16"]
    if args.compile:
        header += ["engine compile s", "ratio compile"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    started = time.time()
    for model in args.models:
        config = profile.training(model)
        if not args.augment:
            config = dataclasses.replace(config, augment="none")
        naive = naive_epochs(model, dataset.x_train, dataset.y_train, config.batch_size, 2, device, lr=config.lr,
                             augment=config.augment)[1]
        fast = engine_epoch(model, dataset, config, device, "fp32", False)
        row = [model, str(config.batch_size), config.augment, f"{naive:.2f}", f"{fast:.2f}", f"{naive / fast:.2f}×"]
        if args.bf16:
            bf16 = engine_epoch(model, dataset, config, device, "bf16", False)
            row += [f"{bf16:.2f}", f"{naive / bf16:.2f}×"]
        if args.compile:
            compiled = engine_epoch(model, dataset, config, device, "fp32", True)
            row += [f"{compiled:.2f}", f"{naive / compiled:.2f}×"]
        print("| " + " | ".join(row) + " |", flush=True)
    print(f"total {time.time() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
