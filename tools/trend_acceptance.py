"""Issue 15's acceptance on this machine: consecutive nightly runs into one history store, with an injected
slowdown and a changed learning rate, then `trainguard history`.

Runs the `ci` profile reduced to what a CPU session can afford (Baseline1, Baseline2, NewModel1; no MNIST;
held-out seed 100; nothing cached, so every run is trained and timed), in one process, five times:

  1-3  clean (the speed check needs 3 earlier timed runs on the same hardware to measure between-night noise)
  4    a 5 ms sleep in every optimizer step (a slowdown; numbers unchanged)
  5    lr 0.01 → 0.005 for every model (a step in the numbers; speed unchanged)

Usage: TRAINGUARD_DATA_DIR=../shared/data python tools/trend_acceptance.py OUT_DIR [NIGHT ...]
(NIGHT: only these of clean-1 clean-2 clean-3 slowdown lr-halved, e.g. to resume; the history in OUT_DIR stays)
"""

from __future__ import annotations

import contextlib
import sys
import time
import tomllib
from pathlib import Path

import torch

from trainguard import cli
from trainguard.core.spec import available_profiles  # noqa: F401 (the profiles ship with the package)

ROOT = Path(__file__).resolve().parent.parent
MODELS = ["Baseline1", "Baseline2", "NewModel1"]


def profile_file(out: Path, lr: float) -> Path:
    """ci's profile (same name, so baselines/ci applies) with three models, no MNIST, and ``lr``."""
    text = (ROOT / "harness" / "profiles" / "ci.toml").read_text()
    text = "\n".join(line for line in text.splitlines() if not line.startswith("experiments = "))  # no MNIST
    text = text.replace('models = ["Baseline1", "Baseline2", "NewModel1", "NewModel2"]', f"models = {MODELS!r}".replace("'", '"'))
    text = text.replace("[training]\nlr = 0.01", f"[training]\nlr = {lr}")
    text = text.replace('start_models = ["Baseline1", "NewModel1", "NewModel2"]', 'start_models = ["Baseline1", "NewModel1"]')
    tomllib.loads(text)  # still a valid profile
    path = out / f"ci-lr{lr}.toml"
    path.write_text(text)
    return path


@contextlib.contextmanager
def sleep_in_every_step(seconds: float):
    original = torch.optim.SGD.step

    def slow_step(self, *args, **kwargs):
        time.sleep(seconds)
        return original(self, *args, **kwargs)

    torch.optim.SGD.step = slow_step
    try:
        yield
    finally:
        torch.optim.SGD.step = original


def main(out: Path, only: list[str]) -> int:
    out.mkdir(parents=True, exist_ok=True)
    history = out / "history"
    nights = [("clean-1", 0.01, None), ("clean-2", 0.01, None), ("clean-3", 0.01, None),
              ("slowdown", 0.01, 0.005), ("lr-halved", 0.005, None)]
    for name, lr, sleep in nights:
        if only and name not in only:
            continue
        args = ["run", "--profile", str(profile_file(out, lr)), "--seeds", "100", "--offline", "--no-result-cache",
                "--baselines-dir", str(ROOT / "baselines"), "--ledger-dir", str(history),
                "--run-log", str(out / "runlog.jsonl"), "--report", str(out / name / "report.md")]
        print(f"== night {name}: lr {lr}, sleep per step {sleep or 0} s", flush=True)
        with sleep_in_every_step(sleep) if sleep else contextlib.nullcontext():
            code = cli.main(args)
        print(f"== night {name}: exit {code}", flush=True)
    print("== trainguard history", flush=True)
    return cli.main(["history", "--profile", str(profile_file(out, 0.01)), "--ledger-dir", str(history),
                     "--plots", str(out / "plots")])


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), sys.argv[2:]))
