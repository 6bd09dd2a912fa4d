"""A baseline update in this process against the same update on a local Ray cluster, side by side in one run.

    python -m benchmarks.ray_vs_process                          # the smoke profile's 20 baseline runs
    python -m benchmarks.ray_vs_process --train-per-class 100    # the same 20 runs on 5x the images

Both sides train the same runs (every model at every baseline seed, generated data, nothing cached) at one torch
thread, so their numbers must be identical, and the script checks that they are. The Ray side is a local
cluster of ``--cpus`` CPUs with one CPU per run, trained through trainguard's RayExecutor exactly as
``trainguard baselines update --executor ray --threads 1`` does. Printed: both wall times and their ratio, the
cluster's start, the data's transfer into the object store, Ray's round trip for an empty task, and per run the
time inside its task beyond what the same run took in process (data copy, fingerprint checks, model import).
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import tempfile
import time
from pathlib import Path

from trainguard.checks import CheckSession
from trainguard.night.cluster import RayExecutor
from trainguard.night.plan import plan_baselines
from trainguard.runs.training import deliver
from trainguard.runs.matrix import Matrix
from trainguard.runs.options import Options, RayResources
from trainguard.core.spec import load_profile


def _matrix(profile, root: Path, executor: str, cpus: int) -> Matrix:
    options = Options(profile, device="cpu", threads=1, results_dir=None, run_log=None, baselines_dir=root,
                      replay=False, figures=False, executor=executor, ray=RayResources(cpus_per_run=1))
    return Matrix(options, printer=lambda line: None)


def in_process(profile, root: Path) -> tuple[float, dict]:
    matrix = _matrix(profile, root, "local", 1)
    per_run, started = {}, time.perf_counter()
    for seed in profile.baseline_seeds:
        for model in profile.models:
            begun = time.perf_counter()
            deliver(matrix, model, seed)
            per_run[f"{model} seed {seed}"] = time.perf_counter() - begun
    wall = time.perf_counter() - started
    matrix.close()
    return wall, {"per_run": per_run, "histories": dict(matrix.histories)}


def on_ray(profile, root: Path, cpus: int) -> tuple[float, dict]:
    import ray

    begun = time.perf_counter()
    ray.init(num_cpus=cpus, include_dashboard=False, logging_level="WARNING", log_to_driver=False)
    start_s = time.perf_counter() - begun
    noop = ray.remote(lambda: None)
    ray.get([noop.remote() for _ in range(cpus * 2)])  # the workers up
    trips = []
    for _ in range(50):
        begun = time.perf_counter()
        ray.get(noop.remote())
        trips.append(time.perf_counter() - begun)
    matrix = _matrix(profile, root, "ray", cpus)
    session = CheckSession(matrix)
    executor = RayExecutor(matrix.options.ray, printer=lambda line: None)
    started = time.perf_counter()
    executor.execute(plan_baselines(session), session)
    wall = time.perf_counter() - started
    matrix.close()
    ray.shutdown()
    return wall, {"start": start_s, "round_trip": statistics.median(trips), "put": executor.put_seconds,
                  "timings": executor.timings, "histories": dict(matrix.histories)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train-per-class", type=int, default=None, help="generated training images per class "
                                                                          "[the smoke profile's 20]")
    parser.add_argument("--cpus", type=int, default=2, help="the local Ray cluster's CPUs (one per run) [2]")
    args = parser.parse_args(argv)
    profile = load_profile("smoke")
    if args.train_per_class:
        profile = dataclasses.replace(profile, train_per_class=args.train_per_class)
    with tempfile.TemporaryDirectory() as root:
        local_wall, local = in_process(profile, Path(root))
        ray_wall, remote = on_ray(profile, Path(root), args.cpus)
    metrics = lambda h: [(e.train_loss, e.train_acc, e.test_loss, e.test_acc) for e in h.epochs]  # times aside
    same = all(metrics(local["histories"][key]) == metrics(remote["histories"][key]) for key in local["histories"])
    extra = [seconds - local["per_run"][label] for label, seconds, _ in remote["timings"]]
    runs = len(local["per_run"])
    print(f"profile smoke, {profile.train_per_class} generated images per class, {runs} runs "
          f"({len(profile.models)} models x {len(profile.baseline_seeds)} baseline seeds), 1 torch thread per run")
    print(f"in process (one run after another): {local_wall:7.1f} s")
    print(f"local Ray cluster ({args.cpus} CPUs, 1 per run): {ray_wall:7.1f} s   ratio in-process / Ray = "
          f"{local_wall / ray_wall:.2f}")
    print(f"numbers identical on both sides: {'yes' if same else 'NO'}")
    print(f"Ray: cluster start {remote['start']:.1f} s (once per night), data into the object store "
          f"{remote['put'] * 1000:.0f} ms (once), empty-task round trip {remote['round_trip'] * 1000:.1f} ms (median "
          f"of 50)")
    print(f"per run, time in its task beyond the same run in process: median {statistics.median(extra):+.2f} s, "
          f"max {max(extra):+.2f} s; the runs took {statistics.median(local['per_run'].values()):.2f} s median in "
          f"process")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
