"""Epoch time of trainguard's engine against the naive reference loop, measured side by side in
one process on the same data, per model, with the ratio.

    python -m benchmarks.side_by_side                       # CPU or CUDA (auto), 5,000 generated images
    python -m benchmarks.side_by_side --images 50000 --bf16 --device cuda
    python -m benchmarks.side_by_side --profile seed --augment   # the protocol's flip + crop on both sides

Measured in paired rounds: in each round every loop (naive, engine, and bf16 / compile when
asked) trains two epochs, one after the other, and the second epoch is timed (the first pays
one-off costs: oneDNN/cuDNN kernel selection, allocator warm-up, torch.compile's compilation).
Each round gives one ratio per mode: naive time / that loop's time, from epochs seconds apart.
A cell shows the median over the rounds and, in brackets, the lowest and highest. Pairing
matters on a shared VM: this project's 2-core CPU drifts by 20–30 % over minutes (the same
Baseline2 epoch took 2.06 s, then 2.84 s), which unpaired numbers would turn into a fake speed-up
or slow-down. Generated images of CIFAR-10's shape are used unless --real is given: timing does
not depend on pixel values.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time

import torch

from trainguard.stores import data
from trainguard.engines import engine
from trainguard.core.spec import load_profile

from trainguard.models import MODEL_NAMES as MODELS
ENGINE_MODES = {"engine": ("fp32", False), "bf16": ("bf16", False), "compile": ("fp32", True)}


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


def naive_epoch(model: str, dataset: data.Dataset, config, device) -> float:
    # imported here: torchvision and PIL take seconds to import, and every collection of the tests imports this module
    from benchmarks.naive_loop import train_epochs as naive_epochs

    return naive_epochs(model, dataset.x_train, dataset.y_train, config.batch_size, 2, device, lr=config.lr,
                        augment=config.augment)[1]


def measure_round(model: str, dataset: data.Dataset, config, device, modes: list[str]) -> dict[str, float]:
    """One round: the naive loop, then each engine mode, back to back; second-epoch seconds of each."""
    seconds = {"naive": naive_epoch(model, dataset, config, device)}
    for mode in modes:
        precision, compiled = ENGINE_MODES[mode]
        seconds[mode] = engine_epoch(model, dataset, config, device, precision, compiled)
    return seconds


def spread(values: list[float], unit: str = "") -> str:
    """Median and, over several rounds, the lowest–highest: the noise is part of the result."""
    if len(values) == 1:
        return f"{values[0]:.2f}{unit}"
    return f"{statistics.median(values):.2f}{unit} ({min(values):.2f}–{max(values):.2f})"


def row_of(rounds: list[dict[str, float]], modes: list[str]) -> list[str]:
    """Cells for one model: per mode its seconds and its ratio to the naive loop of the same round."""
    cells = [spread([r["naive"] for r in rounds])]
    for mode in modes:
        cells += [spread([r[mode] for r in rounds]), spread([r["naive"] / r[mode] for r in rounds], "×")]
    return cells


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=5000, help="training images per epoch [5000]")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--profile", default="cifar-models-ci", help="batch size and lr per model come from this profile (the ci profile's CIFAR-10 plug-in's settings) [cifar-models-ci]")
    parser.add_argument("--models", nargs="*", default=list(MODELS))
    parser.add_argument("--rounds", type=int, default=3,
                        help="paired rounds per model; cells show the median over rounds (lowest–highest) [3]")
    parser.add_argument("--bf16", action="store_true", help="also time the engine with --precision bf16")
    parser.add_argument("--compile", action="store_true", help="also time the engine with torch.compile")
    parser.add_argument("--real", action="store_true", help="use the real CIFAR-10 (TRAINGUARD_DATA_DIR)")
    parser.add_argument("--augment", action="store_true",
                        help="keep the profile's augmentation on both sides (naive: per-sample PIL transforms; "
                             "engine: per batch on the device) [both without]")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error(f"--rounds {args.rounds}: at least one round is needed")
    device = engine.resolve_device(args.device)
    profile = load_profile(args.profile)
    dataset = dataset_of(args.images, args.real)
    modes = ["engine"] + ["bf16"] * args.bf16 + ["compile"] * args.compile
    print(f"device {engine.device_name(device)}, torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"{len(dataset.x_train):,} {'real' if args.real else 'generated'} images, profile {profile.name}; "
          f"seconds per epoch (2nd epoch) and ratio to the naive loop of the same round: "
          f"median of {args.rounds} round(s) (lowest–highest)")
    header = ["model", "batch", "augment", "naive s"]
    for mode in modes:
        header += [f"{mode} s", "ratio" if mode == "engine" else f"ratio {mode}"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    started = time.time()
    for model in args.models:
        config = profile.training(model)
        if not args.augment:
            config = dataclasses.replace(config, augment="none")
        rounds = [measure_round(model, dataset, config, device, modes) for _ in range(args.rounds)]
        row = [model, str(config.batch_size), config.augment, *row_of(rounds, modes)]
        print("| " + " | ".join(row) + " |", flush=True)
    print(f"total {time.time() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
