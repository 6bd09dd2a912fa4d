"""The course report's experiments as plug-ins on the public Experiment contract (trainguard.experiments), imported
as a user imports them: the contract's instruments (replay, bands, claims) on them, and the CIFAR-10 plug-in's
numbers equal to the ones the profile's models train. Generated data: fast."""

import dataclasses
import re

import numpy as np
import pytest

from trainguard.core import stats
from trainguard.core.spec import load_profile
from trainguard.experiments import mnist_overfit
from trainguard.replay import experiment_replay as replay
from trainguard.runs.experiment_runs import train
from trainguard.stores import data
from trainguard.stores.experiment_records import ExperimentStore

SMALL = mnist_overfit.Settings(train_images=40, epochs=2, check_seeds=(100,), baseline_seeds=(0, 1, 2))


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    fake = data.synthetic("mnist", train_per_class=10, test_per_class=5)
    folder = tmp_path_factory.mktemp("data")
    np.savez(folder / "mnist.npz", x_train=fake.x_train, y_train=fake.y_train, x_test=fake.x_test, y_test=fake.y_test)
    return folder


def test_the_contract_s_instruments_on_the_plug_in(tmp_path, data_dir):
    experiment, store = mnist_overfit.make(SMALL), ExperimentStore(tmp_path)
    golden, message = replay.write_golden(experiment, "nodrop", store, data_dir=data_dir)
    assert golden is not None, message
    # the data in words, for the report: the copy, the seed's draw, the test split
    assert golden.record.data_note == (f"mnist from {data_dir / 'mnist.npz'}; 40 training images drawn per seed, 4 per "
                                       f"class (30 fitted, 10 validation); test: first 50 of the 10,000 test images")
    assert replay.replay(experiment, "nodrop", store, data_dir=data_dir).status == "identical"
    changed = mnist_overfit.make(dataclasses.replace(SMALL, lr=0.0011))
    outcome = replay.replay(changed, "nodrop", store, data_dir=data_dir)
    # one step per epoch (30 fitted images, batch 32): its loss is taken before the update, so the learning rate
    # first shows in the epoch's evaluation
    assert outcome.status == "changed" and outcome.series == "gap after epoch 1", outcome.message


def test_the_cifar_plug_in_carries_the_report_s_conclusions_as_claims():
    from trainguard.experiments import cifar_models

    experiment = cifar_models.ci
    smoke = train(cifar_models.make(load_profile("smoke")), "Baseline1", seed=100, epochs=1)
    assert smoke.data_note.endswith("; test: first 100 of the 10,000 test images")  # the report's split, in words
    assert list(experiment.variants) == ["Baseline1", "Baseline2", "NewModel1", "NewModel2"]
    assert experiment.budgets == (10, 20)
    names = [c.name for c in experiment.claims]
    assert "NewModel2 beats NewModel1 at 20 epochs" in names and "more epochs help Baseline1" in names


def test_the_cifar_plug_in_reports_each_epoch_as_it_ends():
    """Each epoch reaches the run when it ends, not after training (a night's progress line then shows its time):
    at each report the run holds that epoch's steps only (smoke: 13 steps per epoch: 200 images, batch 16), and its stated time."""
    from trainguard.experiments import cifar_models

    steps_seen = []
    record = train(cifar_models.make(load_profile("smoke")), "Baseline1", seed=100, epochs=3,
                   on_epoch=lambda run: steps_seen.append(len(run.steps["loss"])))
    assert record.completed, record.message
    assert steps_seen == [13, 26, 39]
    assert len(record.epoch_seconds) == 3 and all(s > 0 for s in record.epoch_seconds)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_the_cifar_plug_in_trains_the_numbers_a_night_trains(tmp_path, precision):
    """The smoke profile's Baseline1, seed 100, through a night's Matrix and through the plug-in: bit for bit — at
    the night's precision too (--precision bf16 reaches the engine through run.precision)."""
    from trainguard.experiments import cifar_models
    from trainguard.runs.matrix import Matrix
    from trainguard.runs.training import deliver
    from trainguard.runs.options import Options

    profile = load_profile("smoke")
    matrix = Matrix(Options(profile, results_dir=None, run_log=tmp_path / "runlog.jsonl", device="cpu", threads=1,
                            replay=False, figures=False, precision=precision), printer=lambda _: None)
    try:
        night = deliver(matrix, "Baseline1", 100)
    finally:
        matrix.close()
    record = train(cifar_models.make(profile), "Baseline1", seed=100, epochs=max(profile.budgets), threads=1,
                   precision=precision)
    assert record.completed, record.message
    if precision == "bf16":  # and it is another arithmetic than fp32's
        fp32 = train(cifar_models.make(profile), "Baseline1", seed=100, epochs=1, threads=1)
        assert fp32.epochs["train_loss"][0] != record.epochs["train_loss"][0]
    assert record.epochs["test_acc"] == [e.test_acc for e in night.epochs]
    assert record.epochs["train_loss"] == [e.train_loss for e in night.epochs]
    # its bands read what the profile's bands read: the mean of the profile's window of epochs
    assert cifar_models.make(profile).window == profile.statistics.window == 2
    assert record.at("test_acc", 3, 2) == stats.window_mean([e.test_acc for e in night.epochs], 3, 2)


def test_the_cifar_plug_in_s_golden_run_is_the_built_in_golden_run(tmp_path):
    """The smoke profile's Baseline1 golden run (its [golden] subset and epochs, seed 0) through the built-in golden
    machinery and through the plug-in's ``replay_settings``: every step's loss, gradient norm and learning rate and
    every epoch metric bit for bit; and a nudged initial weight (one of its perturbations) moves it, as the built-in
    nudge does."""
    from trainguard.experiments import cifar_models
    from trainguard.replay import golden_runs
    from trainguard.replay.experiment_replay import golden_run
    from trainguard.runs.matrix import Matrix
    from trainguard.runs.options import Options

    profile = load_profile("smoke")
    assert (profile.golden.seed or profile.baseline_seeds[0]) == 0  # the contract's golden seed
    matrix = Matrix(Options(profile, results_dir=None, run_log=tmp_path / "runlog.jsonl", device="cpu", threads=1,
                            replay=False, figures=False), printer=lambda _: None)
    try:
        builtin = golden_runs.trace(matrix, "Baseline1", threads=1).parts[0]
        nudged = golden_runs.trace(matrix, "Baseline1", prepare=golden_runs.nudge(1), threads=1).parts[0]
    finally:
        matrix.close()
    experiment = cifar_models.make(profile)
    assert experiment.replay_budget == profile.golden.epochs and "nudge-1" in experiment.perturbations
    record = golden_run(experiment, "Baseline1", experiment.replay_budget, threads=1)
    assert record.completed, record.message
    assert record.steps == builtin.steps and len(record.steps["loss"]) == 2 * builtin.steps_per_epoch
    assert {m: record.epochs[m] for m in builtin.epochs} == builtin.epochs
    again = golden_run(experiment, "Baseline1", experiment.replay_budget, threads=1,
                       overrides=experiment.perturbations["nudge-1"])
    assert again.steps == nudged.steps != builtin.steps


def test_the_cifar_plug_in_s_golden_names_a_data_change_past_its_subset(monkeypatch):
    """The plug-in's golden run trains on the first images of each class, and declares the data at full scale too (as
    the models' ``inputs`` golden did): one training image past the subset changed leaves every step of the golden run
    as it was, and the replay still says the data changed, naming the split."""
    from trainguard.experiments import cifar_models
    from trainguard.replay.experiment_replay import compare, golden_run
    from trainguard.stores.experiment_records import GoldenRun

    profile = load_profile("smoke")
    experiment = cifar_models.make(profile)
    clean = golden_run(experiment, "Baseline1", experiment.replay_budget, threads=1)
    assert {"full train x", "full train y", "full test x", "full test y", "x_train"} <= set(clean.inputs)
    full = cifar_models._data(profile, None)
    past = np.setdiff1d(np.arange(len(full.y_train)), data.first_per_class(full.y_train,
                                                                           profile.golden.train_per_class))[0]
    x_train = full.x_train.copy()
    x_train[past] = -x_train[past]
    monkeypatch.setattr(cifar_models, "_data", lambda *_: dataclasses.replace(full, x_train=x_train))
    changed = golden_run(experiment, "Baseline1", experiment.replay_budget, threads=1)
    assert changed.steps == clean.steps and changed.epochs == clean.epochs  # no step of the golden sees it
    outcome = compare(experiment.name, GoldenRun(clean, {}, []), changed)
    assert not outcome.passed and "its inputs changed (full train x)" in outcome.message, outcome.message


def test_the_cifar_plug_in_s_stacked_seeds_are_the_numbers_a_stacked_night_trains(tmp_path):
    """--stack-seeds: the plug-in's train_stacked and a night's Matrix with stack_seeds, the smoke profile's Baseline1
    seed 100: bit for bit."""
    from trainguard.experiments import cifar_models
    from trainguard.runs.experiment_runs import train_together
    from trainguard.runs.matrix import Matrix
    from trainguard.runs.options import Options
    from trainguard.runs.training import deliver

    profile = load_profile("smoke")
    matrix = Matrix(Options(profile, results_dir=None, run_log=tmp_path / "runlog.jsonl", device="cpu", threads=1,
                            replay=False, figures=False, stack_seeds=True), printer=lambda _: None)
    try:
        night = deliver(matrix, "Baseline1", 100)
    finally:
        matrix.close()
    record, = train_together(cifar_models.make(profile), "Baseline1", [100], max(profile.budgets), threads=1)
    assert record.completed, record.message
    assert record.epochs["test_acc"] == [e.test_acc for e in night.epochs]
    assert record.epochs["train_loss"] == [e.train_loss for e in night.epochs]


def test_a_plug_in_is_a_guard_target_like_any_user_s(tmp_path, capsys):
    from trainguard import cli

    assert cli.main(["guard", "trainguard.experiments.mnist_overfit:torch", "replay", "--dir", str(tmp_path)]) == 5
    assert "no golden" in capsys.readouterr().out
    assert cli.main(["guard", "trainguard.experiments.mnist_overfit:keras", "replay", "--dir", str(tmp_path)]) == 5
    assert "no golden" in capsys.readouterr().out  # both arms have golden runs: none in an empty directory


def test_the_cifar_plug_in_s_bands_from_the_ci_baseline_s_runs_are_the_built_in_profile_s_bands(tmp_path, capsys):
    """The committed ci baseline (16 seeds × 4 models × 20 epochs, baselines/ci/cpu-seeds.csv) imported as the
    plug-in's baseline, as a user imports runs measured before (`guard … baseline --from-csv`; nothing trains): the
    plug-in checks the cells the built-in profile checks — each model, budget and checked metric over the profile's
    window, and the start of the curve (train loss over epochs 1–3) of the models the profile names — and every band
    it derives, floored at the metric's resolution, equals the built-in profile's band on the same values, to the
    last bit."""
    from pathlib import Path

    from trainguard import cli
    from trainguard.checks import baseline as builtin
    from trainguard.checks.experiment_bands import bands
    from trainguard.experiments import cifar_models
    from trainguard.runs.experiment_runs import baseline_of
    from trainguard.stores import baselines as bl

    committed = Path(__file__).parent.parent / "baselines" / "ci"
    profile, experiment = load_profile(str(cifar_models.SETTINGS)), cifar_models.ci
    table = bl.load_measured(committed / "cpu.csv", profile.models, profile.budgets)
    assert set(experiment.metrics) == set(profile.checked_metrics)
    assert cli.main(["guard", "trainguard.experiments.cifar_models:ci", "baseline", "--from-csv",
                     str(committed / "cpu-seeds.csv"), "--threads", "2", "--dir", str(tmp_path)]) == 0
    assert "64 run(s) imported from" in capsys.readouterr().out
    imported = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("seed*.json"))
    assert len(imported) == 64  # the committed copy (what the profile's switch to the plug-in reads) is this import
    assert all((committed / "experiments" / p).read_bytes() == (tmp_path / p).read_bytes() for p in imported)
    runs, note = baseline_of(experiment, ExperimentStore(tmp_path), threads=2)
    assert "the baseline was imported from cpu-seeds.csv" in note
    night = {key: record for key, record in runs.items() if key[1] in (0, 1)}  # any two: the bands are the point
    checks = {(c.model, c.budget, c.metric): c for c in profile.band_checks()}
    alpha = 0.01 / len(checks)
    verdicts = bands(experiment, runs, night, alpha=alpha, power=profile.statistics.power)
    assert {(v.variant, v.budget, v.metric) for v in verdicts} == set(checks)
    assert len(verdicts) == 4 * 2 * 4 + 3 and sum(v.metric == "start_train_loss" for v in verdicts) == 3
    for verdict in verdicts:
        expected = builtin.derive(table, checks[(verdict.variant, verdict.budget, verdict.metric)], 2, alpha,
                                  profile.statistics.power)
        assert (verdict.band.center, verdict.band.halfwidth, verdict.band.mde) == \
            (expected.center, expected.halfwidth, expected.mde), verdict.case


def test_the_plug_ins_carry_the_course_report_s_numbers_as_references():
    """The published tables are references on the contract: the CIFAR-10 table shown beside ci's means (it trains on
    less data) and checked within the [published] bands in `seed`, which follows the report's protocol; the MNIST
    report's own figures (its 50 validation images) shown at the report's protocol only, never checked."""
    from trainguard.experiments import cifar_models

    ci, = cifar_models.ci.references
    assert not ci.tolerances and "this profile trains on less data" in ci.note
    assert ci.values["Baseline1@10"]["test_acc"] == 39.60 and len(ci.cells()) == 4 * 2 * 3
    seed_profile = load_profile("seed")
    seed, = cifar_models.make(seed_profile).references
    assert seed.tolerances == dict(seed_profile.published.bands) and seed.note == ""
    # on the mean of the [published] seeds, as the built-in check: baseline seeds there, read from the baseline
    assert seed.seeds == seed_profile.published.seeds == (0, 1, 2) and ci.seeds == ()
    mnist, = mnist_overfit.torch.references
    assert mnist.values == {"nodrop@10": {"gap": 28.9, "test_loss": 28.89}, "dropout@10": {"gap": 9.0, "test_loss": 11.57}}
    assert not mnist.tolerances and "50 validation images" in mnist.note
    assert mnist_overfit.make(SMALL).references == ()  # another protocol: the report's numbers do not apply


def test_the_cifar_plug_in_declares_the_models_injections_its_settings_express_and_its_replay_catches_them(tmp_path):
    """The models' self-test injections that a run's settings can express are the CIFAR-10 plug-in's faults; replayed
    under each (the smoke profile's Baseline1 golden, generated data), the step that moved is named: the learning rate
    at step 1 (the golden traces it, as the built-in golden does), weight decay at step 2 (the first update it
    enters)."""
    from trainguard.audit.experiment_selftest import run_faults
    from trainguard.experiments import cifar_models

    assert [f.name for f in cifar_models.ci.faults][:3] == ["lr-plus-1pct", "weight-decay-5e-4", "no-augmentation"]
    assert cifar_models.ci.faults[2].variants == ("NewModel2",)  # the one model of ci with augmentation
    experiment, store = cifar_models.make(load_profile("smoke")), ExperimentStore(tmp_path)
    golden, message = replay.write_golden(experiment, "Baseline1", store)
    assert golden is not None, message
    outcomes = run_faults(experiment, store, None, None, names=("lr-plus-1pct", "weight-decay-5e-4"))
    named = {}
    for outcome in outcomes:
        baseline1, = outcome.replay  # the other models have no golden here: noted, not replayed
        assert baseline1.status == "changed", baseline1.message
        named[outcome.fault.name] = (baseline1.step, baseline1.series)
        assert any("Baseline2: no golden run" in note for note in outcome.notes)
    assert named["lr-plus-1pct"] == (1, "lr"), named
    assert named["weight-decay-5e-4"][0] == 2, named


def test_the_cifar_plug_in_injects_the_models_seam_injections_by_name_into_the_faulted_run_alone(tmp_path):
    """Every other injection of the models' self-test is a fault of the plug-in by name ({"inject": name}), applied
    for the faulted run alone: the loss, the data order and the evaluation, each named where the replay sees it
    (smoke: 7 steps per epoch)."""
    from trainguard.audit import selftest
    from trainguard.audit.experiment_selftest import run_faults
    from trainguard.engines import engine
    from trainguard.experiments import cifar_models

    every = {i.name for i in (*selftest.CI_INJECTIONS, *selftest.SUBTLE_INJECTIONS)}
    assert every <= {f.name for f in cifar_models.ci.faults}
    experiment, store = cifar_models.make(load_profile("smoke")), ExperimentStore(tmp_path)
    golden, message = replay.write_golden(experiment, "Baseline1", store)
    assert golden is not None, message
    seams = (engine.make_criterion, engine.epoch_order, engine.evaluate)
    outcomes = run_faults(experiment, store, None, None, printer=lambda _: None,
                          names=("label-smoothing-0.1", "no-reshuffle", "test-time-flip"))
    named = {o.fault.name: [(r.status, r.step, r.series) for r in o.replay if r.variant == "Baseline1"][0]
             for o in outcomes}
    assert named == {"label-smoothing-0.1": ("changed", 1, "grad_norm"), "no-reshuffle": ("changed", 8, "grad_norm"),
                     "test-time-flip": ("changed", None, "test_acc after epoch 1")}, named
    assert (engine.make_criterion, engine.epoch_order, engine.evaluate) == seams  # put back after each run
    assert replay.replay(experiment, "Baseline1", store).status == "identical"


def test_the_cifar_plug_in_s_nights_continue_the_profile_s_models_in_the_ledger(tmp_path, smoke_runs, capsys,
                                                                                  monkeypatch):
    """The smoke profile's night records its models' cells; the plug-in's first night (guard, its baseline imported
    from the committed smoke baseline) reads that night as its earlier one (``formerly``: the profile's name) and
    compares its cells with the models': the same runs, so drift finds no step — the series goes on instead of
    starting anew. So does the profile's own night once it declares the plug-in instead of its models (the switch the
    ci profile made)."""
    from pathlib import Path

    from trainguard import cli
    from trainguard.experiments import cifar_models

    monkeypatch.delenv("CI", raising=False)
    assert cifar_models.make(load_profile("smoke")).formerly == ("smoke",)
    ledger = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    baselines = smoke_runs.copy_baseline(tmp_path / "b").parent
    assert cli.main(["run", "--profile", "smoke", "--device", "cpu", "--threads", "1", "--no-replay", "--no-figures",
                     "--baselines-dir", str(baselines), "--results-dir", str(smoke_runs.copy(tmp_path / "results")),
                     "--run-log", str(tmp_path / "runlog.jsonl"), "--ledger", ledger,
                     "--report", str(tmp_path / "r" / "report.md")]) == 0
    (tmp_path / "plug.py").write_text("from trainguard.core.spec import load_profile\n"
                                      "from trainguard.experiments import cifar_models\n\n"
                                      "smoke = cifar_models.make(load_profile('smoke'))\n")
    target, store = f"{tmp_path / 'plug.py'}:smoke", ["--dir", str(tmp_path / "experiments"), "--threads", "1"]
    committed = Path(__file__).parent.parent / "baselines" / "smoke" / "cpu-seeds.csv"
    assert cli.main(["guard", target, "baseline", "--from-csv", str(committed), *store]) == 0
    capsys.readouterr()
    assert cli.main(["guard", target, "check", "--ledger", ledger, *store]) in (0, 1)  # smoke's claims may not hold
    out = capsys.readouterr().out
    assert "earlier nights read under its former name(s): smoke (1 night(s))" in out
    assert "drift: no earlier run" not in out and "STEP" not in out, out
    from trainguard.checks.trend import drift_checks
    from trainguard.stores.ledger import open_ledger

    (models,) = open_ledger(ledger).read("smoke", "cpu")
    (plugin,) = open_ledger(ledger).read("cifar-models-smoke", "cpu")
    compared = drift_checks(models, plugin)
    assert len(compared) == 4 * 2 * 3  # every model, budget and checked metric: the same cells
    assert all(old == new for *_, old, new in compared)  # the same runs, bit for bit: the series goes on
    # The switch as the ci profile made it: the profile, under its own name, now declares the plug-in alone; its
    # first night reads the models' night as its previous one and compares the plug-in's cells with their cells.
    import shutil

    shutil.copytree(tmp_path / "experiments", baselines / "smoke" / "experiments")
    (tmp_path / "switched.toml").write_text('name = "smoke"\nexperiments = ["plug.py:smoke"]\n')
    assert cli.main(["run", "--profile", str(tmp_path / "switched.toml"), "--device", "cpu", "--threads", "1",
                     "--no-replay", "--no-figures", "--baselines-dir", str(baselines), "--ledger", ledger,
                     "--results-dir", str(tmp_path),  # its experiments/ store: the guard's, so nothing trains again
                     "--report", str(tmp_path / "s" / "report.md")]) in (0, 1)
    assert ": training" not in capsys.readouterr().out  # the guard's runs of the same seeds, from the result cache
    report = (tmp_path / "s" / "report.md").read_text()
    assert "STEP" not in report and "nothing comparable" not in report and "no earlier run" not in report
    drift = report[report.index("Drift — each cell against the previous run"):]  # 24 cells, each in its drift band
    assert "α 1% / 24 = " in drift  # the previous night's value and tonight's, the same run's:
    assert re.search(r"\| cifar-models-smoke Baseline1-3 \| Train Loss +\| ([\d.]+) +\| \1 \|", drift), drift
    before, after = open_ledger(ledger).read("smoke", "cpu")
    compared = drift_checks(before, after, {"cifar-models-smoke": ("smoke",)})
    assert len(compared) == 4 * 2 * 3 and all(kind == "experiment" for kind, *_ in compared)
    assert all(old == new for *_, old, new in compared)


@pytest.mark.slow
@pytest.mark.replay
def test_the_cifar_plug_in_replays_its_committed_golden_runs(capsys):
    """The CIFAR-10 plug-in's golden runs, committed beside the MNIST plug-ins' (baselines/ci/experiments/
    cifar-models-ci/golden, written by ``trainguard guard trainguard.experiments.cifar_models:ci replay --update
    --dir baselines/ci/experiments --threads 2``), replay through the guard as a user's would: every model identical
    or within the rounding noise measured when they were written. Needs the real CIFAR-10 (TRAINGUARD_DATA_DIR): a
    skip without it, a failure under CI=true."""
    import os
    from pathlib import Path

    from trainguard import cli
    from trainguard.core.spec import packaged_baselines_dir, strict_default

    data = os.environ.get("TRAINGUARD_DATA_DIR")
    if not data or not (Path(data) / "cifar10.npz").exists():
        if strict_default():
            pytest.fail("CI=true and no cifar10.npz in TRAINGUARD_DATA_DIR: the plug-in's replay needs the real data")
        pytest.skip("no cifar10.npz in TRAINGUARD_DATA_DIR")
    directory = packaged_baselines_dir() / "ci" / "experiments"
    code = cli.main(["guard", "trainguard.experiments.cifar_models:ci", "replay", "--dir", str(directory)])
    out = capsys.readouterr().out
    assert code == 0, out
    lines = [line for line in out.splitlines() if line.startswith(("identical:", "numerics differ:"))]
    assert len(lines) == 4, out  # one per model: Baseline1, Baseline2, NewModel1, NewModel2


@pytest.mark.slow
def test_the_ci_night_s_cifar_runs_are_the_models_night_before_the_switch(trainguard_matrix):
    """What stays: the ci profile checks the CIFAR-10 comparison through its plug-in since the switch, and the
    plug-in's runs of the check seeds that this night trained (the main job, `trainguard run`, cached them) are the
    models' runs of the same seeds measured before the switch through the models' machinery — every metric of every
    epoch, bit for bit, against the committed run log of that night on an AVX-512 host
    (baselines/ci/avx512-night-runlog.jsonl). On a host of another instruction set its rounding differs (the bands,
    not this, compare across machines): a skip that says so. Needs the main job's runs cached (a skip without them,
    a failure under CI=true)."""
    import torch

    from trainguard.core.spec import packaged_baselines_dir, strict_default
    from trainguard.experiments import cifar_models
    from trainguard.stores.runlog import histories_from_log

    if trainguard_matrix.profile.name != "ci":
        pytest.skip("the committed night is the ci profile's (--tg-profile ci)")
    if torch.backends.cpu.get_cpu_capability() != "AVX512" or trainguard_matrix.threads != 2:
        pytest.skip(f"the committed night ran on AVX512 with 2 threads; this host is "
                    f"{torch.backends.cpu.get_cpu_capability()} with {trainguard_matrix.threads}")
    experiment = cifar_models.ci
    before = histories_from_log(packaged_baselines_dir() / "ci" / "avx512-night-runlog.jsonl", "ci")
    store = ExperimentStore(trainguard_matrix.options.results_dir / "experiments")
    records = {(model, seed): store.latest(experiment.name, model, seed, max(experiment.budgets), 2)
               for model in experiment.variants for seed in experiment.check_seeds}
    if not all(record is not None and record.completed for record in records.values()):
        why = "the plug-in's check-seed runs are not cached: run `trainguard run` (the ci profile) first"
        pytest.fail(why) if strict_default() else pytest.skip(why)
    for (model, seed), record in records.items():
        history = before[(model, seed)]
        for metric in experiment.metrics:
            assert record.epochs[metric] == [e.metric(metric) for e in history.epochs], (model, seed, metric)
