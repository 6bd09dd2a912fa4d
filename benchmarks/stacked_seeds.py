"""k seeds trained one after another (the engine) against k seeds stacked in one model
(``--stack-seeds``), side by side in one process, per model, with the ratio and what it makes of
the full ``seed`` protocol (50,000 images × 20 epochs per model, batch 8, flip + crop).

    python -m benchmarks.stacked_seeds                          # CPU or CUDA (auto), 3 seeds, 2,000 images
    python -m benchmarks.stacked_seeds --device cuda --images 10000 --seeds 3

Paired rounds, as benchmarks/side_by_side.py: in each round the separate runs and the stack each
train two epochs on the same generated images and the second epoch is timed (the first pays cuDNN
kernel selection and allocator warm-up). "seed protocol" extrapolates the stack's time per image
to 4 models × 20 epochs × 50,000 images: training time only, evaluation excluded, as the report's
"training time" counts it.
"""

from __future__ import annotations

import argparse
import statistics
import sys

import torch

from benchmarks.side_by_side import spread
from trainguard.stores import data
from trainguard.engines import engine, stacked
from trainguard.models import MODEL_NAMES as MODELS
from trainguard.core.spec import load_profile

PROTOCOL_IMAGES, PROTOCOL_EPOCHS = 50_000, 20


def stacked_epoch(model: str, dataset: data.Dataset, config, device, seeds: list[int], compiled: bool) -> float:
    histories = stacked.train_stacked(model, dataset, config, 2, seeds, device, compile_model=compiled)
    return histories[0].epochs[1].seconds * len(seeds)  # a stacked epoch's seconds are one seed's share


def measure_round(model: str, dataset: data.Dataset, config, device, seeds: list[int],
                  compiled: bool) -> dict[str, float]:
    """Wall seconds of the second epoch: all seeds one after another, then all seeds stacked (and compiled)."""
    seconds = {"separate": sum(engine.train(model, dataset, config, 2, seed, device).epochs[1].seconds
                               for seed in seeds),
               "stacked": stacked_epoch(model, dataset, config, device, seeds, False)}
    if compiled:
        seconds["compiled"] = stacked_epoch(model, dataset, config, device, seeds, True)
    return seconds


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--images", type=int, default=2000, help="generated training images per epoch [2000]")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per stack [3]")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--compile", action="store_true",
                        help="also time the stack under torch.compile (CUDA: reduce-overhead, a CUDA graph per step)")
    args = parser.parse_args(argv)
    device = engine.resolve_device(args.device)
    config = load_profile("seed").training("Baseline2")  # batch 8, flip + crop, lr 0.01
    config = config.__class__(**{**vars(config), "eval_batch_size": 1000})
    dataset = data.synthetic("cifar10", train_per_class=args.images // 10, test_per_class=10)
    seeds = list(range(args.seeds))
    print(f"# {args.seeds} seeds one after another vs stacked — {engine.device_name(device)}, torch "
          f"{torch.__version__}, {torch.get_num_threads()} threads, {len(dataset.x_train):,} generated images per "
          f"epoch, batch {config.batch_size}, {config.augment}; median (lowest–highest) of {args.rounds} rounds\n")
    modes = ["stacked"] + (["compiled"] if args.compile else [])
    print("| model | separate, s/epoch | " + " | ".join(f"{m}, s/epoch | {m} speed-up | seed protocol, {m}, s"
                                                          for m in modes) + " |")
    print("|---" * (2 + 3 * len(modes)) + "|")
    totals = {mode: 0.0 for mode in modes}
    for model in args.models.split(","):
        rounds = [measure_round(model, dataset, config, device, seeds, args.compile) for _ in range(args.rounds)]
        cells = [model, spread([r["separate"] for r in rounds])]
        for mode in modes:
            seconds = [r[mode] for r in rounds]
            protocol = statistics.median(seconds) / len(dataset.x_train) * PROTOCOL_IMAGES * PROTOCOL_EPOCHS
            totals[mode] += protocol
            cells += [spread(seconds), spread([r["separate"] / r[mode] for r in rounds], "×"), f"{protocol:,.0f}"]
        print("| " + " | ".join(cells) + " |", flush=True)
    for mode, total in totals.items():
        print(f"\nseed protocol, {args.seeds} seeds, all models, {mode} (extrapolated training time): {total:,.0f} s "
              f"(goal: 60 s on one H100)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
