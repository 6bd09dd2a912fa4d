"""A profile's golden runs: write them with their measured rounding noise, and replay them step by step.

Per model, the golden run trains a baseline seed for a few epochs on a small fixed subset of the
profile's own data (the first images of each class of its training, validation and test splits),
with the profile's training settings for that model, through the same engine a night uses (a declared
experiment's golden runs are its own: trainguard.replay.experiment_replay). The thread count is
pinned (the profile's ``[golden] threads``) and deterministic algorithms are on while they run.

``write_goldens`` records each run (trainguard.stores.golden) and measures its noise envelope by running it
again under perturbations that change only rounding: another thread count, one-ulp nudges of the
initial weights, and on x86 a lower instruction set (a child process with ATen's and oneDNN's ISA
controls). ``replay`` reruns each golden and compares (trainguard.stores.golden.compare).

Everything reads the profile and the data through the session's Matrix, so a
self-test injection (which patches those) reaches the golden runs exactly as it reaches a night.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from ..stores import data
from ..engines import engine
from ..core.environment import ISA_CONTROLS, cpu_name
from ..stores.golden import (INPUTS, CHANGED, IDENTICAL, INCOMPARABLE, MISSING, NOISE, REGEN, Golden, Outcome,
                             TracePart, Trace, compare, measure, missing_message, read_golden, read_goldens, read_inputs,
                             write_goldens_together)
from ..core.spec import ConfigError
from ..core.storage import WaitTimeout

# A lower instruction set than the machine's, forced through the libraries' own controls: ATen's
# vectorised kernels without AVX, oneDNN's convolutions and MKL's GEMMs limited to SSE4.
LOW_ISA = {"ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "SSE41", "MKL_ENABLE_INSTRUCTIONS": "SSE4_2"}


def golden_names(profile) -> list[str]:
    return profile.golden_names()


@contextlib.contextmanager
def pinned(threads: int):
    """The golden's arithmetic: ``threads`` torch threads, deterministic algorithms (restored afterwards)."""
    old = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled(), \
        torch.is_deterministic_algorithms_warn_only_enabled()
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.set_num_threads(old[0])
        torch.use_deterministic_algorithms(old[1], warn_only=old[2])


def torch_environment(device: torch.device) -> dict[str, str]:
    """What decides a golden run's rounding besides the code and data: compared key by key on replay."""
    env = {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__,
           "threads": str(torch.get_num_threads()), "device": engine.device_name(device),
           "cpu": cpu_name(), "isa": torch.backends.cpu.get_cpu_capability()}
    controls = {k: os.environ[k] for k in ISA_CONTROLS if os.environ.get(k)}
    if controls:
        env["isa_controls"] = " ".join(f"{k}={v}" for k, v in sorted(controls.items()))
    return env


def weights_digest(model: torch.nn.Module) -> str:
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


class StepRecorder:
    """The engine's ``on_step`` hook: loss, gradient norm and learning rate of every step. It only reads:
    the run's arithmetic is that of a night."""

    def __init__(self) -> None:
        self.steps = {"loss": [], "grad_norm": [], "lr": []}
        self.model = None

    def __call__(self, step: int, loss: torch.Tensor, model: torch.nn.Module, optimizer) -> None:
        self.model = model
        self.steps["loss"].append(loss.item())
        grads = [p.grad.detach().norm() for p in model.parameters() if p.grad is not None]
        self.steps["grad_norm"].append(torch.linalg.vector_norm(torch.stack(grads)).item() if grads else 0.0)
        self.steps["lr"].append(float(optimizer.param_groups[0]["lr"]))


def _epoch_series(records) -> dict[str, list[float]]:
    """Per epoch, every metric the engine recorded in all epochs (train/test/validation loss and accuracy)."""
    if not records:
        return {}
    keys = ["train_loss", "train_acc", "test_loss", "test_acc"]
    keys += sorted(k for k in records[0].extra if all(k in r.extra for r in records))
    return {k: [float(r.metric(k)) for r in records] for k in keys}


def _part(label: str, history, recorder: StepRecorder, steps_per_epoch: int) -> TracePart:
    return TracePart(label, steps_per_epoch, recorder.steps, _epoch_series(history.epochs),
                weights_digest(recorder.model) if recorder.model is not None else "")


def nudge(seed: int):
    """A ``prepare`` that moves every initial weight one ulp up or down (a coin per value from ``seed``):
    a change of rounding only, far below anything a recipe change does."""
    def prepare(model: torch.nn.Module) -> torch.nn.Module:
        rng = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for p in model.parameters():
                up = torch.rand(p.shape, generator=rng) < 0.5
                p.copy_(torch.where(up, torch.nextafter(p, torch.full_like(p, torch.inf)),
                                    torch.nextafter(p, torch.full_like(p, -torch.inf))))
        return model
    return prepare


# ------------------------------------------------------------------------------------ the golden runs


def model_subset(dataset: data.Dataset, golden) -> data.Dataset:
    """The golden's data: the first images of each class of the profile's training (and validation) split,
    the first ``test_images`` of its test split. Fixed by construction, like the profile's own view."""
    train = data.first_per_class(dataset.y_train, golden.train_per_class)
    x_val = y_val = None
    if dataset.x_val is not None and golden.val_per_class:
        val = data.first_per_class(dataset.y_val, golden.val_per_class)
        x_val, y_val = dataset.x_val[val], dataset.y_val[val]
    test = min(golden.test_images, len(dataset.x_test))
    return data.Dataset(dataset.name, dataset.x_train[train], dataset.y_train[train], dataset.x_test[:test],
                        dataset.y_test[:test], dataset.source, dataset.verification, [], x_val=x_val, y_val=y_val)


def model_spec(matrix, model: str) -> dict:
    g, p = matrix.profile.golden, matrix.profile
    seed = g.seed if g.seed is not None else p.baseline_seeds[0]
    return {"name": model, "model": model, "seed": seed, "epochs": g.epochs, "threads": g.threads,
            "subset": {"train_per_class": g.train_per_class, "test_images": g.test_images,
                       "val_per_class": g.val_per_class if p.val_per_class else 0},
            "training": dataclasses.asdict(p.training(model))}


def trace_model(matrix, model: str, prepare=None) -> Trace:
    spec = model_spec(matrix, model)
    subset = model_subset(matrix.dataset, matrix.profile.golden)
    config = matrix.profile.training(model)
    recorder = StepRecorder()
    # engine.models.build at call time, not a reference taken earlier: a self-test may have patched it
    factory = None if prepare is None else (lambda: prepare(engine.models.build(model)))
    history = engine.train(model, subset, config, spec["epochs"], spec["seed"], matrix.device, on_step=recorder,
                           model_factory=factory)
    steps = -(-len(subset.x_train) // config.batch_size)
    return Trace(model, [_part("", history, recorder, steps)], subset.fingerprint(), torch_environment(matrix.device))


def spec_for(matrix, name: str) -> dict:
    return model_spec(matrix, name)


def replay_threads(matrix) -> int:
    """The pinned thread count, unless TRAINGUARD_GOLDEN_THREADS overrides it (an experiment: the replay then
    runs in another environment, judged against the measured noise)."""
    override = os.environ.get("TRAINGUARD_GOLDEN_THREADS", "").strip()
    if not override:
        return matrix.profile.golden.threads
    if not override.isdigit() or int(override) < 1:
        raise ConfigError(f"TRAINGUARD_GOLDEN_THREADS={override!r}: expected a positive integer")
    return int(override)


def trace(matrix, name: str, prepare=None, threads: int | None = None) -> Trace:
    """The golden run ``name`` as the code and data stand now, at ``threads`` (default: the pinned count)."""
    with pinned(threads or matrix.profile.golden.threads):
        return trace_model(matrix, name, prepare)


# ------------------------------------------------------------------------------------ noise envelope


def child_env() -> dict:
    """A child process's environment: this package importable (a checkout or a wheel)."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [
        str(Path(__file__).resolve().parents[2]), os.environ.get("PYTHONPATH")]))}


def _low_isa_traces(matrix, names: list[str]) -> dict[str, Trace]:
    """The torch golden runs in a child process with a lower instruction set (x86 only; else none)."""
    if (not matrix.profile.golden.isa or platform.machine().lower() not in ("x86_64", "amd64")
            or matrix.device.type != "cpu"):
        return {}
    command = [sys.executable, "-m", "trainguard.replay.golden_runs", "trace", "--profile", str(matrix.profile.source or
               matrix.profile.name), "--names", ",".join(names)]
    if matrix.options.data_dir:
        command += ["--data-dir", str(matrix.options.data_dir)]
    from ..core.watchdog import run_child

    with tempfile.TemporaryDirectory(prefix="trainguard-replay-") as tmp:
        out = Path(tmp) / "traces.json"  # a file, not stdout: a print in a user's model cannot break it
        done = run_child(command + ["--out", str(out)], f"the lower-ISA golden runs ({', '.join(names)})",
                         env={**child_env(), **LOW_ISA})
        if done.returncode != 0:
            raise RuntimeError(f"the lower-ISA golden runs failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
        return {raw["name"]: Trace.from_json(raw) for raw in json.loads(out.read_text())}


def perturbed_traces(matrix, name: str, low_isa: dict[str, Trace]) -> tuple[dict[str, Trace], dict[str, str]]:
    """The golden run under each rounding-only perturbation, and what each one changes."""
    g = matrix.profile.golden
    other = 1 if g.threads > 1 else 2
    seeds = list(range(1, g.perturbations + 1))
    runs, what = {}, {}
    for seed in seeds:
        runs[f"nudge-{seed}"] = trace(matrix, name, prepare=nudge(seed))
        what[f"nudge-{seed}"] = f"every initial weight moved one ulp (coin seed {seed})"
    runs[f"threads-{other}"] = trace(matrix, name, threads=other)
    what[f"threads-{other}"] = f"{other} torch threads instead of {g.threads}"
    if name in low_isa:
        runs["isa-low"] = low_isa[name]
        what["isa-low"] = "lower instruction set: " + " ".join(f"{k}={v}" for k, v in LOW_ISA.items())
    return runs, what


# ------------------------------------------------------------------------------------ write and replay


def golden_file(matrix, name: str) -> Path:
    """Golden runs are always fp32, eager, one seed at a time (whatever --precision, --compile or --stack-seeds
    the night uses), so their class is the device's type: ``golden-cpu``, ``golden-cuda``."""
    return matrix.references.golden(name)




def night_inputs(matrix) -> dict[str, dict]:
    """The fingerprints of every split the models' runs receive: the profile's view of its data set (train, test,
    val), at full scale, not the goldens' subset (a declared experiment's inputs are fingerprinted with its runs)."""
    dataset = matrix.dataset
    return {f"{dataset.name} {split}": value for split, value in dataset.split_fingerprints().items()}


def replay_inputs(matrix) -> Outcome:
    """The night's inputs against those recorded with the goldens: exact (integers), at full scale, in about a
    second. It sees what the golden runs cannot — a change to images or labels past the first images of each class
    — and says which split moved; what a changed split does to the accuracies is for the bands (docs/replay.md)."""
    path = matrix.references.inputs
    recorded = read_inputs(path)
    if recorded is None:
        return Outcome(INPUTS, MISSING, f"{INPUTS}: no fingerprint of the night's data at {path}; write it (and only "
                                        f"it) with `trainguard baselines update --golden --names inputs --profile "
                                        f"{matrix.profile.cli_name}`")
    now = night_inputs(matrix)
    moved = [name for name in sorted(set(recorded) | set(now)) if recorded.get(name) != now.get(name)]
    if not moved:
        described = ", ".join(f"{name} ({value['images']:,})" for name, value in now.items())
        return Outcome(INPUTS, IDENTICAL, f"{INPUTS}: identical: every image and label of {described}")
    changes = "; ".join(_input_change(name, recorded.get(name), now.get(name)) for name in moved)
    return Outcome(INPUTS, CHANGED, f"{INPUTS}: changed: {changes} — the data the night trains or evaluates on is "
                                    f"not the data recorded with the goldens; "
                                    f"{REGEN.format(profile=matrix.profile.cli_name)}")


def replay_inputs_timed(matrix, printer=print) -> Outcome:
    """:func:`replay_inputs`, timed and said."""
    started = time.perf_counter()
    outcome = replay_inputs(matrix)
    outcome.seconds = time.perf_counter() - started
    printer(f"[trainguard] replay {outcome.message} [{outcome.seconds:.1f} s]")
    return outcome


def _input_change(name: str, then: dict | None, now: dict | None) -> str:
    if then is None:
        return f"{name}: new ({now['images']:,} images)"
    if now is None:
        return f"{name}: gone (was {then['images']:,} images)"
    count = (f"{then['images']:,} images" if then["images"] == now["images"]
             else f"{then['images']:,} → {now['images']:,} images")
    return f"{name}: {count}, sha256 {then['sha256'][:12]}… → {now['sha256'][:12]}…"


def write_goldens(matrix, names: list[str] | None = None, printer=print, command: str = "") -> list[str]:
    """Record each golden run and its noise envelope; rewrite its file, saying what moved against the old one."""
    from ..core.environment import git_commit
    from ..stores.results import code_fingerprint

    record_inputs = names is None or INPUTS in names  # --names inputs: only the data's fingerprints
    names = [n for n in names if n != INPUTS] if names is not None else golden_names(matrix.profile)
    if not names and not record_inputs or not golden_names(matrix.profile):
        return [f"profile {matrix.profile.name} has no golden runs ([golden] enabled = false or synthetic data only)"]
    if names:
        printer(f"[trainguard] golden runs of {matrix.profile.name}: {', '.join(names)} (with their noise envelope)")
    low_isa = _low_isa_traces(matrix, names) if names else {}
    lines, staged = [], {}
    for name in names:
        started = time.perf_counter()
        golden_trace = trace(matrix, name)
        again = trace(matrix, name)
        if again.to_json() != golden_trace.to_json():
            raise RuntimeError(f"golden run {name} is not deterministic on this machine: two runs in one process "
                               f"differ; no golden written")
        runs, what = perturbed_traces(matrix, name, low_isa)
        env, factors, summary = measure(golden_trace, runs, what)
        golden = Golden(golden_trace, env, factors, summary, spec_for(matrix, name),
                        {"code": code_fingerprint(name), "commit": git_commit(),
                         "written": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "command": command})
        path = golden_file(matrix, name)
        old = read_golden(path) if path.exists() else None
        moved = "new" if old is None else compare(old, golden_trace, golden.spec, matrix.profile.cli_name).message
        staged[path] = golden
        lines.append(f"{path}: {golden_trace.steps} steps; noise envelope from {len(runs)} perturbations, "
                     f"leave-one-out widening {max(factors.values(), default=1):.3g} at most; "
                     f"{time.perf_counter() - started:.1f} s; was: {moved}")
        printer(f"[trainguard] {lines[-1]}")
    inputs = {}
    if record_inputs:
        path = matrix.references.inputs
        inputs[path] = night_inputs(matrix)
        counts = ", ".join(f"{name} ({value['images']:,})" for name, value in inputs[path].items())
        lines.append(f"{path}: every image and label of {counts}, fingerprinted")
        printer(f"[trainguard] {lines[-1]}")
    write_goldens_together(staged, inputs)  # all of them or none: an update that dies half way leaves the old goldens
    return lines


def replay(matrix, names: list[str] | None = None, printer=print, inputs: bool = False) -> list[Outcome]:
    """Rerun each golden run of the profile and compare it step by step with its golden file. ``inputs``: first
    compare the night's data at full scale with the fingerprints recorded with the goldens (the outcome ``inputs``)."""
    names = golden_names(matrix.profile) if names is None else names  # []: none (only the inputs, if asked)
    files = {name: golden_file(matrix, name) for name in names}
    read = read_goldens(files.values())  # one generation, under the directory's lock; corrupt: ConfigError first
    goldens = {name: read[Path(path)] for name, path in files.items()}
    outcomes = []
    if inputs:
        outcomes.append(replay_inputs_timed(matrix, printer))
    for name in names:
        golden = goldens[name]
        if golden is None:
            outcomes.append(Outcome(name, MISSING, missing_message(name, golden_file(matrix, name), matrix.profile.cli_name)))
            continue
        started = time.perf_counter()
        if golden.spec.get("threads") != matrix.profile.golden.threads:
            outcomes.append(Outcome(name, INCOMPARABLE, f"{name}: the golden ran with {golden.spec.get('threads')} "
                                                        f"threads, the profile pins {matrix.profile.golden.threads}: "
                                                        f"write it anew (trainguard baselines update --golden)"))
            continue
        try:
            replayed = trace(matrix, name, threads=replay_threads(matrix))
        except data.DataError as exc:  # the data no longer holds the golden's subset: the data changed
            outcomes.append(Outcome(name, CHANGED, f"{name}: changed: the golden run's data cannot be drawn from this "
                                                   f"data ({exc}); {REGEN.format(profile=matrix.profile.cli_name)}"))
            continue
        except WaitTimeout as exc:  # a hung child process: not compared, said so; the night goes on
            outcomes.append(Outcome(name, INCOMPARABLE, f"{name}: not replayed: {exc}"))
            continue
        result = compare(golden, replayed, spec_for(matrix, name), matrix.profile.cli_name)
        if not result.passed:
            result.message += code_note(golden, name)
        result.seconds = time.perf_counter() - started
        printer(f"[trainguard] replay {result.message} [{result.seconds:.1f} s]")
        outcomes.append(result)
    return outcomes


def code_note(golden: Golden, name: str) -> str:
    """The clue a developer wants next: did the source that decides the run change since the golden?"""
    from ..stores.results import code_fingerprint

    now, then = code_fingerprint(name), golden.provenance.get("code")
    if now == then:
        return (f" (the engine, data and model source is the golden's, fingerprint {now}: look at what else changed — "
                f"the profile, the libraries, the data)")
    return f" (the engine, data or model source changed since the golden: fingerprint {then} → {now})"


def exit_code(outcomes: list[Outcome]) -> int:
    """0 identical or within noise, 1 changed, 2 a golden that cannot be compared, 5 nothing to replay."""
    present = [o for o in outcomes if o.status != MISSING]
    if not present:
        return 5
    if any(o.status == INCOMPARABLE for o in present):
        return 2
    return 0 if all(o.status in (IDENTICAL, NOISE) for o in present) else 1


SUMMARY_HEADLINES = {0: "✅ the golden runs replayed: training and evaluation did not change",
                     1: "❌ the golden runs changed: training or evaluation is not what it was",
                     2: "⚠️ a golden run could not be compared", 5: "⚠️ nothing to replay"}


def summary_markdown(outcomes: list[Outcome], code: int, profile: str) -> str:
    """The replay's verdict as markdown (a pull request's comment, a job summary): each golden run's outcome
    — identical, numerics differ, changed at step N with the values — and how to accept an intended change."""
    lines = [f"### trainguard replay ({profile}): {SUMMARY_HEADLINES.get(code, f'exit {code}')}", "",
             "| golden run | verdict | what the replay saw |", "| --- | --- | --- |"]
    for o in outcomes:
        lines.append(f"| {o.name} | {o.status} | {o.message.replace('|', '/')} |")
    if code == 1:
        lines += ["", "If the change is intended, accept it: rewrite the golden runs and commit them with the change:",
                  "", "```bash", f"trainguard baselines update --golden --profile {profile}",
                  "git add baselines/ && git commit -m 'goldens: <why the change is intended>'", "```",
                  "", "The replay sees the first epochs of each model on a small subset: whether the change *matters* "
                      "is the nightly outcome bands' to say (docs/replay.md)."]
    return "\n".join(lines) + "\n"


def _child_main(argv: list[str]) -> int:
    """``python -m trainguard.replay.golden_runs trace --profile P --names A,B [--data-dir D] --out OUT``: the torch golden runs as
    JSON in OUT (the lower-ISA perturbation runs in such a child: the ISA is chosen at process start)."""
    import argparse

    from ..runs.matrix import Matrix
    from ..runs.options import Options
    from ..core.spec import load_profile

    parser = argparse.ArgumentParser(prog="python -m trainguard.replay.golden_runs")
    parser.add_argument("action", choices=("trace",))
    parser.add_argument("--profile", required=True)
    parser.add_argument("--names", required=True)
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    matrix = Matrix(Options(load_profile(args.profile), device="cpu", data_dir=args.data_dir, allow_download=False,
                            results_dir=None, run_log=None), printer=lambda _: None)
    names = args.names.split(",")
    args.out.write_text(json.dumps([trace(matrix, name).to_json() for name in names]))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(_child_main(sys.argv[1:]))
    except ConfigError as exc:
        print(f"trainguard: error: {exc}", file=sys.stderr)
        sys.exit(2)
