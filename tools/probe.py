"""Calibration probe: train one model on the full CIFAR-10 with a given config and print
per-epoch numbers beside the published per-epoch log (PROTOCOL.md). Used to choose the
`seed` profile's unstated hyperparameters (issue 4); not part of the test suite.

    python tools/probe.py NewModel1 --epochs 20 --augment flip_crop --batch-size 32 --out /tmp/p.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time

import torch

from trainguard import models
from trainguard.stores import data
from trainguard.engines import engine
from trainguard.core.spec import TrainConfig

PUBLISHED_EPOCHS = {  # epoch index (0-based) -> (loss, train acc), PROTOCOL.md
    "Baseline1": {0: (2.1698, 28.33), 4: (2.0780, 37.80), 9: (2.0610, 39.27), 14: (2.0529, 40.16), 19: (2.0504, 40.46)},
    "Baseline2": {0: (1.9207, 28.43), 4: (1.3082, 52.95), 9: (1.1546, 58.98), 14: (1.0669, 62.50), 19: (1.0326, 63.77)},
    "NewModel1": {0: (1.8080, 33.15), 4: (1.0998, 60.81), 9: (0.8942, 68.25), 14: (0.8058, 71.82), 19: (0.7551, 73.63)},
    "NewModel2": {0: (1.9226, 26.77), 4: (0.8700, 70.11), 9: (0.5916, 79.61), 14: (0.4701, 84.02), 19: (0.4007, 86.08)},
}
PUBLISHED_TEST = {"Baseline1": (39.60, 41.94), "Baseline2": (60.91, 66.27), "NewModel1": (71.50, 73.92),
                  "NewModel2": (79.67, 84.61)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--momentum", type=float, default=0.0)
    parser.add_argument("--augment", default="none")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--out")
    parser.add_argument("--model-args", default="", help="keyword arguments for the model, e.g. batchnorm=0,conv_dropout=0")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    dataset = data.load("cifar10", allow_download=False)
    config = TrainConfig(lr=0.01, momentum=args.momentum, batch_size=args.batch_size, augment=args.augment)
    published = PUBLISHED_EPOCHS.get(args.model, {})
    started = time.time()

    def show(history, record):
        ref = published.get(record.epoch - 1)
        ref_text = f" | published {ref[0]:.4f} / {ref[1]:.2f}" if ref else ""
        print(f"{args.model} ep {record.epoch:2d}: {record.train_loss:.4f} / {record.train_acc:.2f} / "
              f"test {record.test_acc:.2f} ({record.seconds:.0f}s){ref_text}", flush=True)

    kwargs = {k: float(v) for k, v in (item.split("=") for item in args.model_args.split(",") if item)}
    factory = (lambda: models.REGISTRY[args.model](**kwargs)) if kwargs else None
    history = engine.train(args.model, dataset, config, args.epochs, args.seed, torch.device("cpu"), on_epoch=show,
                           model_factory=factory)
    print(f"{args.model} {vars(args)} done in {time.time() - started:.0f}s; published test {PUBLISHED_TEST.get(args.model)}",
          flush=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"args": vars(args), "config": dataclasses.asdict(config), "history": history.to_json()}, f)


if __name__ == "__main__":
    sys.exit(main())
