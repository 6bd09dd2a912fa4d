"""How far the replay's noise tolerance is from real changes: the measurement behind docs/replay.md.

For every golden run of a profile it prints the tolerance (the measured rounding-noise envelope, widened
by its leave-one-out factor) at a few steps, then replays the golden under real changes of the learning
rate by a relative 1e-6 … 1e-2 and judges each as if it came from another environment (where only a
difference beyond the tolerance counts). The learning rate is logged, so the replay would see any
change of it at step 1 directly; here that series is left out of the comparison, so the change must
show through the training itself — a stand-in for a change of the recipe that no logged value names. The smallest change still called a change is the check's margin
on another machine; on the golden's own machine every change that moves one bit is caught.

    TRAINGUARD_DATA_DIR=../shared/data python tools/replay_margin.py --profile cifar-models-ci
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import time
from pathlib import Path

from trainguard.stores import golden
from trainguard.replay import golden_runs as replay
from trainguard.runs.matrix import Matrix
from trainguard.runs.options import Options
from trainguard.core.spec import load_profile

SIZES = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2)


def changed_trace(matrix: Matrix, name: str, size: float) -> golden.Trace:
    """The golden run with the learning rate scaled by (1 + size)."""
    profile = matrix.profile
    training = {m: dataclasses.replace(profile.training(m), lr=profile.training(m).lr * (1 + size)) for m in profile.models}
    saved = matrix.profile
    matrix.profile = dataclasses.replace(profile, per_model_training=tuple(sorted(training.items())))
    try:
        return replay.trace(matrix, name)
    finally:
        matrix.profile = saved


def without_lr(item):
    """A copy of a Golden or Trace without the logged learning rate."""
    item = copy.deepcopy(item)
    trace = item.trace if isinstance(item, golden.Golden) else item
    for part in trace.parts:
        part.steps.pop("lr", None)
    if isinstance(item, golden.Golden):
        for env in item.envelope:
            env.pop("lr", None)
    return item


def tolerance_row(g: golden.Golden) -> dict:
    part = g.trace.parts[0]
    env = g.envelope[0]["loss"]
    spe = part.steps_per_epoch
    picks = {"step 1": 0, "step 2": 1, "step 5": 4, "end of epoch 1": spe - 1, "last step": len(env) - 1}
    return {k: f"{g.factors.get('loss', float('inf')) * env[i]:.1e}" for k, i in picks.items() if i < len(env)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--profile", default="ci")
    parser.add_argument("--baselines-dir", type=Path, default=Path("baselines"))
    parser.add_argument("--names", nargs="*", default=None)
    args = parser.parse_args()
    matrix = Matrix(Options(load_profile(args.profile), device="cpu", baselines_dir=args.baselines_dir,
                            results_dir=None, run_log=None, allow_download=False), printer=lambda _: None)
    names = args.names or matrix.profile.golden_names()
    print("| golden run | tolerance of the train loss (relative): " + " / ".join(
        ["step 1", "step 2", "step 5", "end of epoch 1", "last step"]) + " | widening | "
        + " | ".join(f"lr × (1 + {s:g}), not logged" for s in SIZES) + " |")
    print("|" + " --- |" * (3 + len(SIZES)))
    for name in names:
        started = time.perf_counter()
        g = golden.read_golden(replay.golden_file(matrix, name))
        spec = replay.spec_for(matrix, name)
        cells = []
        for size in SIZES:
            run = changed_trace(matrix, name, size)
            run.environment = {**run.environment, "cpu": "another machine"}  # judged as on another environment
            outcome = golden.compare(without_lr(g), without_lr(run), spec, args.profile)
            where = outcome.beyond or outcome.first
            if outcome.status == golden.CHANGED and where is not None:
                cells.append(f"caught at step {where.index + 1} ({where.series}, {where.relative / where.noise:.3g}× tol.)"
                             if where.is_step else f"caught at epoch {where.index + 1} ({where.series})")
            else:
                cells.append(f"{outcome.status}")
        tolerance = tolerance_row(g)
        print(f"| {name} | {' / '.join(tolerance.values())} | {max(g.factors.values(), default=1):.3g} | "
              + " | ".join(cells) + f" |  <!-- {time.perf_counter() - started:.0f} s -->")


if __name__ == "__main__":
    main()
