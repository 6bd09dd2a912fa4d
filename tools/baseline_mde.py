"""Compare a baseline being re-measured with the committed one, from run logs alone (no training).

For every band check of the profile's models that the log has complete runs of: the seed std and the
minimum detectable effect (MDE, the profile's α per check, k check seeds, its power) of the committed
baseline, of the log's first ``n_old`` seeds, and of all the log's seeds; then the leave-k-out false alarms
over the log's seeds (each group of k seeds checked against bands from the others) and the tail screen, as
``trainguard baselines calibrate`` computes them.

    python tools/baseline_mde.py --profile cifar-models-ci --log baselines/ci/cpu-runlog.jsonl \
        --models Baseline1,Baseline2,NewModel1,NewModel2
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from trainguard.stores import baselines as bl
from trainguard.audit import calibration
from trainguard.core import stats
from trainguard.checks import per_check_alpha
from trainguard.stores.runlog import histories_from_log
from trainguard.core.spec import load_profile


def table_from_log(log: Path, models: list[str], profile: str) -> bl.BaselineTable:
    histories = histories_from_log(log, profile)
    curves = {key: bl.curve(h) for key, h in histories.items() if key[0] in models and h.completed}
    return bl.BaselineTable(log, curves, {"eval_images": {"test": 1000, "train": 10000}})


def band(table: bl.BaselineTable, check, k: int, alpha: float, power: float) -> stats.Band:
    return stats.derive_band(table.values(check.model, check.end, check.source, check.window), k, alpha,
                             table.resolution(check.source), power)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="ci")
    parser.add_argument("--log", type=Path, required=True)
    parser.add_argument("--models", required=True, help="comma-separated; models with every seed complete")
    parser.add_argument("--n-old", type=int, default=8)
    args = parser.parse_args()
    profile = load_profile(args.profile)
    models = args.models.split(",")
    alpha, k, power = per_check_alpha(profile), len(profile.check_seeds), profile.statistics.power
    committed = bl.load_measured(Path("baselines") / profile.name / "cpu.csv", tuple(profile.models), tuple(profile.budgets))
    new = table_from_log(args.log, models, profile.name)
    seeds = new.seeds
    first = new.without(seeds[args.n_old:])
    checks = [c for c in profile.band_checks() if c.model in models]
    print(f"α per check {alpha:.3g} (profile {profile.name}), k = {k}, power {power:.0%}; committed seeds "
          f"{list(committed.seeds)}, log seeds {list(seeds)}\n")
    print(f"| check | committed (n = {len(committed.seeds)}) std | MDE | log seeds 0–{args.n_old - 1} std | MDE | "
          f"log n = {len(seeds)} std | MDE |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for check in checks:
        cells = [f"{check.model}-{check.end} {check.source} (epochs {check.end - check.window + 1}–{check.end})"]
        for table in (committed, first, new):
            b = band(table, check, k, alpha, power)
            cells += [f"{b.std:.4g}", f"{b.mde:.4g}"]
        print("| " + " | ".join(cells) + " |")
    # the leave-k-out nights and the tail screen exactly as `trainguard baselines calibrate` computes them, on the
    # profile narrowed to the models the log has complete (their band checks only)
    narrowed = dataclasses.replace(profile, models=tuple(m for m in profile.models if m in models), stats=dataclasses.replace(
        profile.statistics, start_models=tuple(m for m in profile.statistics.start_models if m in models)))
    nights = calibration.leave_out_nights(new, narrowed, alpha, k)
    failed = [r for r in nights if r.failures]
    print(f"\nLeave-{k}-out over {len(seeds)} seeds, {len(checks)} band checks: **{len(failed)} of {len(nights)} nights "
          f"failed** (at most {len(nights) * alpha * len(checks):.2f} expected at the stated rate; the groups share seeds).")
    for night in failed:
        print(f"- seeds {night.seeds}: " + night.described())
    print("\n" + "\n".join(calibration.tail_lines(new, narrowed, nights)))

if __name__ == "__main__":
    main()
