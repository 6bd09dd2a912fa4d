"""Golden runs and their step-by-step replay (trainguard.stores.golden, trainguard.replay.golden_runs) on generated data.

The smoke profile's data is generated, so these run in the fast suite; the real goldens of ci are
replayed by tests/test_replay_golden.py (slow) and by `trainguard replay` in .ci/run.
"""

import dataclasses
import json
import math

import pytest
import torch

from trainguard import cli
from trainguard.engines import engine
from trainguard.stores import golden
from trainguard.replay import golden_runs as replay
from trainguard.checks import Case, CheckSession
from trainguard.runs.matrix import Matrix
from trainguard.runs.options import Options
from trainguard.core.spec import ConfigError, load_profile


def smoke_matrix(baselines_dir, strict: bool = False, **golden_changes) -> Matrix:
    profile = load_profile("smoke")
    changes = {"perturbations": 3, "isa": False, **golden_changes}
    profile = dataclasses.replace(profile, golden=dataclasses.replace(profile.golden, **changes))
    return Matrix(Options(profile, device="cpu", baselines_dir=baselines_dir, results_dir=None, run_log=None,
                          strict=strict), printer=lambda _: None)


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """Goldens of two smoke models (Baseline1, NewModel2: dropout-free and BatchNorm), written once."""
    root = tmp_path_factory.mktemp("baselines")
    matrix = smoke_matrix(root)
    lines = replay.write_goldens(matrix, ["Baseline1", "NewModel2"], printer=lambda _: None)
    assert len(lines) == 2 and all("was: new" in line for line in lines)
    return root


def replay_one(root, name="Baseline1", **golden_changes):
    return replay.replay(smoke_matrix(root, **golden_changes), [name], printer=lambda _: None)[0]


def test_golden_file_holds_steps_epochs_weights_noise_and_provenance(written):
    path = golden.golden_path(written, "smoke", "cpu", "Baseline1")
    raw = json.loads(path.read_text())
    part = raw["trace"]["parts"][0]
    steps = -(-100 // 16) * 2  # 10 images of each of 10 classes, batch 16, 2 epochs
    assert [len(part["steps"][s]) for s in ("loss", "grad_norm", "lr")] == [steps] * 3
    assert len(part["epochs"]["test_acc"]) == 2 and len(part["weights"]) == 64
    assert set(raw["trace"]["environment"]) >= {"torch", "threads", "cpu", "isa", "numpy"}
    assert {p["name"] for p in raw["perturbations"]} == {"nudge-1", "nudge-2", "nudge-3", "threads-1"}
    assert raw["provenance"]["code"] and raw["spec"]["training"]["batch_size"] == 16
    assert all(v >= golden.FLOAT32_RESOLUTION for v in raw["envelope"][0]["loss"])


def test_replay_on_the_golden_s_own_environment_is_identical(written):
    for name in ("Baseline1", "NewModel2"):
        outcome = replay_one(written, name)
        assert outcome.status == golden.IDENTICAL, outcome.message
    assert replay.exit_code([outcome]) == 0


def test_a_one_line_change_to_the_loss_is_caught_at_step_1(written, monkeypatch):
    monkeypatch.setattr(engine, "make_criterion", lambda config: torch.nn.CrossEntropyLoss(label_smoothing=1e-3))
    outcome = replay_one(written)
    assert outcome.status == golden.CHANGED
    assert (outcome.first.index, outcome.first.series) == (0, "loss")
    assert "changed at step 1 (epoch 1, step 1 of 7): train loss" in outcome.message
    assert "trainguard baselines update --golden --profile smoke" in outcome.message
    assert replay.exit_code([outcome]) == 1


def test_a_refactor_that_keeps_the_arithmetic_replays_identical(written, monkeypatch):
    """The same normalisation written another way (out of place, division as multiplication by nothing else)."""
    def normalize(batch_uint8, inputs="pm1"):
        scaled = batch_uint8.float()
        return scaled / 127.5 - 1.0 if inputs == "pm1" else scaled
    monkeypatch.setattr(engine, "normalize", normalize)
    assert replay_one(written).status == golden.IDENTICAL


def test_an_evaluation_only_change_is_named_as_such(written, monkeypatch):
    original = engine.evaluate

    def flipped(model, images, *args, **kwargs):  # test-time flip: training untouched
        return original(model, images.flip(3), *args, **kwargs)
    monkeypatch.setattr(engine, "evaluate", flipped)
    outcome = replay_one(written)
    assert outcome.status == golden.EVALUATION_CHANGED, outcome.message
    assert "evaluation changed at epoch 1" in outcome.message


def test_an_optimiser_change_shows_at_the_step_after_the_first_update(written, monkeypatch):
    original = engine.make_optimizer
    monkeypatch.setattr(engine, "make_optimizer", lambda config, params: original(
        dataclasses.replace(config, weight_decay=5e-4), params))
    outcome = replay_one(written)
    assert outcome.status == golden.CHANGED and outcome.first.index == 1  # step 1's loss precedes any update


def test_another_environment_within_noise_and_beyond_it(written):
    """Judged against the envelope: a rounding-only perturbation (an ulp nudge, a new environment's stand-in)
    is 'numerics differ'; a real change of the recipe is a change, even where the environment also differs."""
    matrix = smoke_matrix(written)
    stored = golden.read_golden(golden.golden_path(written, "smoke", "cpu", "Baseline1"))
    spec = replay.model_spec(matrix, "Baseline1")
    with replay.pinned(2):
        noisy = replay.trace_model(matrix, "Baseline1", prepare=replay.nudge(99))
    noisy.environment = {**noisy.environment, "cpu": "another CPU"}
    outcome = golden.compare(stored, noisy, spec, "smoke")
    assert outcome.status in (golden.NOISE, golden.IDENTICAL), outcome.message
    if outcome.status == golden.NOISE:
        assert "numerics differ with cpu" in outcome.message
    matrix.profile = dataclasses.replace(matrix.profile, default_training=dataclasses.replace(
        matrix.profile.default_training, lr=0.0011))  # lr 10 % higher
    with replay.pinned(2):
        changed = replay.trace_model(matrix, "Baseline1")
    changed.environment = noisy.environment
    outcome = golden.compare(stored, changed, spec, "smoke")
    assert outcome.status == golden.CHANGED and "the environment also differs (cpu" in outcome.message


def test_a_corrupt_golden_is_an_error_naming_the_file(written, tmp_path):
    path = golden.golden_path(tmp_path, "smoke", "cpu", "Baseline1")
    path.parent.mkdir(parents=True)
    text = golden.golden_path(written, "smoke", "cpu", "Baseline1").read_text()
    path.write_text(text[: len(text) // 2])
    with pytest.raises(ConfigError, match="Baseline1.json is corrupt or truncated"):
        replay_one(tmp_path)


def test_a_changed_golden_definition_cannot_be_compared(written):
    outcome = replay_one(written, epochs=3)
    assert outcome.status == golden.INCOMPARABLE and "epochs" in outcome.message
    assert replay.exit_code([outcome]) == 2


def test_nothing_to_replay_exits_5_and_names_the_command(tmp_path, capsys):
    code = cli.main(["replay", "--profile", "smoke", "--device", "cpu", "--baselines-dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 5
    assert "nothing to replay" in out and "trainguard baselines update --golden --profile smoke" in out


def test_the_replay_command_on_the_committed_smoke_goldens(capsys):
    """baselines/smoke/golden-cpu is committed: on its machine class every model replays identical; on another
    (an AVX-512 host: the goldens were written on an AVX2 one) 'numerics differ', which still exits 0."""
    code = cli.main(["replay", "--profile", "smoke", "--device", "cpu"])
    out = capsys.readouterr().out
    assert code in (0, 1, 2) and "nothing to replay" not in out
    assert code == 0, out


def test_the_host_s_vector_isa_is_named_as_torch_names_it():
    """A Keras golden's environment records the CPU's vector ISA (oneDNN picks kernels by it), read from the CPU's
    flags; where torch's own detection is not capped (ATEN_CPU_CAPABILITY, read when torch loads) it names the same
    level."""
    import os
    import platform

    from trainguard.core.environment import host_vector_isa

    isa = host_vector_isa()
    assert isa in ("AVX512", "AVX2", "AVX", "SSE4.2", "default") or not platform.machine().startswith("x86")
    if isa in ("AVX512", "AVX2") and not os.environ.get("ATEN_CPU_CAPABILITY"):
        assert torch.backends.cpu.get_cpu_capability() == isa


def test_relative_difference_and_envelope():
    assert golden.relative(1.0, 1.0) == 0 and golden.relative(math.nan, math.nan) == 0
    assert golden.relative(1.0, math.nan) == math.inf and golden.relative(2.0, 1.0) == 0.5
    assert golden.running_max([1, 3, 2]) == [1, 3, 3]


def test_baselines_update_golden_writes_them_and_prints_what_moved(tmp_path, capsys, monkeypatch):
    """The CLI path: a profile file of the user's with a cheaper envelope ([golden] perturbations, isa)."""
    from pathlib import Path

    source = Path(__file__).resolve().parent.parent / "harness" / "profiles" / "smoke.toml"
    profile = tmp_path / "mine.toml"
    profile.write_text(source.read_text().replace('name = "smoke"', 'name = "mine"')
                       .replace('models = ["Baseline1", "Baseline2", "NewModel1", "NewModel2"]', 'models = ["Baseline2"]')
                       + "perturbations = 1\nisa = false\n")
    args = ["--profile", str(profile), "--device", "cpu", "--baselines-dir", str(tmp_path / "b")]
    assert cli.main(["baselines", "update", "--golden", *args]) == 0
    assert "golden-cpu/Baseline2.json: 14 steps" in capsys.readouterr().out
    assert cli.main(["replay", *args]) == 0
    assert "IDENTICAL  Baseline2: identical to the golden run" in capsys.readouterr().out
    monkeypatch.setattr(engine, "make_criterion", lambda config: torch.nn.CrossEntropyLoss(label_smoothing=0.1))
    assert cli.main(["replay", *args]) == 1
    assert "CHANGED  Baseline2: changed at step 1" in capsys.readouterr().out
    assert cli.main(["baselines", "update", "--golden", *args]) == 0  # accept it: the old one is compared first
    assert "was: Baseline2: changed at step 1" in capsys.readouterr().out


def test_pytest_m_replay_collects_one_case_per_golden_run(pytester, preloaded):
    """README: `pytest -m replay --tg-profile ci` — collection needs the profile only, no data (a pytest of its own
    in this process, on a copy of the replay's test module)."""
    import shutil
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    shutil.copy(root / "tests" / "test_replay_golden.py", pytester.path / "test_project_replay_golden.py")
    result = pytester.runpytest_inprocess("-m", "replay", "--tg-profile", "ci", "--collect-only", "-q",
                                          "-p", "no:cacheprovider")
    out = result.stdout.str()
    assert result.ret == 0, out[-2000:] + result.stderr.str()[-2000:]
    # ci declares the report's experiments: the CIFAR-10 plug-in replays its four models' golden runs as one case
    assert "test_the_cifar10_plug_in_replays[replay]" in out and "test_replay_matches_golden[none]" in out
    assert "2 tests" in out or "2/" in out


def _corrupted_past_the_goldens(matrix: Matrix) -> None:
    """Invert 8 training images that are not among the first images of their class (the goldens' subset)."""
    import numpy as np

    from trainguard.stores import data

    dataset = matrix.dataset
    seen = data.first_per_class(dataset.y_train, matrix.profile.golden.train_per_class)
    beyond = np.setdiff1d(np.arange(len(dataset.y_train)), seen)[:8]
    images = dataset.x_train.copy()
    images[beyond] = 255 - images[beyond]
    matrix._dataset = dataclasses.replace(dataset, x_train=images)


def test_a_corrupted_slice_past_the_goldens_subset_is_caught_by_the_inputs_replay_without_training(written,
                                                                                                monkeypatch):
    replay.write_goldens(smoke_matrix(written), [replay.INPUTS], printer=lambda _: None)  # the fingerprints only
    assert (written / "smoke" / "golden-cpu" / "inputs.json").exists()
    assert replay.replay_inputs(smoke_matrix(written)).status == golden.IDENTICAL
    matrix = smoke_matrix(written)
    _corrupted_past_the_goldens(matrix)

    def refuse(*args, **kwargs):
        raise AssertionError("the inputs replay trained")

    with monkeypatch.context() as patched:
        patched.setattr(engine, "train", refuse)
        outcome = replay.replay_inputs(matrix)
    assert outcome.status == golden.CHANGED
    assert "cifar10 train: 200 images, sha256" in outcome.message and "cifar10 test" not in outcome.message
    # the golden run itself draws only the first images of each class: it cannot see the change
    outcomes = replay.replay(matrix, ["Baseline1"], printer=lambda _: None, inputs=True)
    assert [o.status for o in outcomes] == [golden.CHANGED, golden.IDENTICAL]
    # judged by the replay kind: under CI the night fails (known before anything trains), otherwise flagged
    for strict, status in ((True, "FAIL"), (False, "flagged")):
        session = CheckSession(smoke_matrix(written, strict=strict))
        session.replays = {o.name: o for o in outcomes}
        kind = session.kind("replay")
        verdicts = [session.judge(kind, Case("replay", name)).verdicts[0] for name in ("inputs", "Baseline1")]
        assert [v.status for v in verdicts] == [status, "pass"]


def test_goldens_written_before_the_inputs_fingerprint_say_how_to_add_it(written):
    outcome = replay.replay_inputs(smoke_matrix(written / "elsewhere"))
    assert outcome.status == golden.MISSING
    assert "trainguard baselines update --golden --names inputs --profile smoke" in outcome.message
