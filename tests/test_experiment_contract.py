"""The Experiment contract (trainguard.core.experiment) and the instruments on it — the result cache, the golden
replay, the bands — on a training function that uses no deep-learning framework at all: linear regression by SGD
in NumPy. If the contract needed torch, trainguard's loop, images or classes, this would not run."""

import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import trainguard
from trainguard import cli
from trainguard.checks.experiment_bands import bands
from trainguard.core.errors import ConfigError
from trainguard.core.experiment import Experiment, Run, Start, fingerprint, load_experiment
from trainguard.replay import experiment_replay as replay
from trainguard.runs.experiment_runs import runs, train
from trainguard.stores.experiment_records import ExperimentStore

SGD = textwrap.dedent('''
    import numpy as np
    import trainguard

    LR = 0.05
    SHIFT = 0.0


    @trainguard.experiment(metrics={"mse": "lower", "slope": "higher"}, budgets=(2, 3), replay_budget=2,
                           variants={"small": {"batch": 4}, "large": {"batch": 16}},
                           claims=(trainguard.Claim("more epochs help", "mse", better="small@3", than="small@2"),
                                   trainguard.Claim("small batches learn faster", "slope", better="small@2",
                                                    than="large@2")))
    def regression(run):
        rng = np.random.default_rng(run.seed)
        x = np.linspace(-1, 1, 64)
        y = 3.0 * x + 0.5 + 0.1 * np.random.default_rng(7).standard_normal(64) + SHIFT
        run.inputs(x=x, y=y)
        w = b = 0.0
        batch = run.settings["batch"]
        for epoch in range(run.budget):
            order = rng.permutation(64)
            batches = [order[i:i + batch] for i in range(0, 64, batch)]
            for index in run.batches(batches):
                error = w * x[index] + b - y[index]
                w -= LR * 2 * float(np.mean(error * x[index]))
                b -= LR * 2 * float(np.mean(error))
                run.step(loss=float(np.mean(error ** 2)), w=w)
            run.epoch(mse=float(np.mean((w * x + b - y) ** 2)), slope=w)
''')


@pytest.fixture
def project(tmp_path, monkeypatch):
    (tmp_path / "regression.py").write_text(SGD)
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    for name in [m for m in sys.modules if m.startswith("_trainguard_experiment_")]:
        sys.modules.pop(name)


def _load(project, text=None):
    if text is not None:
        (project / "regression.py").write_text(text)
    for name in [m for m in sys.modules if m.startswith("_trainguard_experiment_")]:
        sys.modules.pop(name)
    return load_experiment(str(project / "regression.py") + ":regression")


def stacked_by_loop(calls) -> str:
    """Source to append to an experiment module whose experiment is ``regression``: a ``train_stacked`` that trains
    the runs one after another (the same numbers as separate runs) and logs each call's seeds to ``calls``."""
    return textwrap.dedent(f'''
        import dataclasses


        def _together(runs):
            open({str(calls)!r}, "a").write(",".join(str(r.seed) for r in runs) + "\\n")
            for run in runs:
                regression.train(run)


        regression = dataclasses.replace(regression, train_stacked=_together)
    ''')


def test_the_contract_imports_no_framework():
    out = subprocess.run([sys.executable, "-c", "import sys, trainguard; trainguard.experiment; trainguard.Run; "
                          "print(sorted(m for m in ('torch', 'tensorflow', 'jax', 'scipy') if m in sys.modules))"],
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_run_reports_steps_epochs_and_fingerprints_its_inputs_and_batches(project):
    experiment = _load(project)
    record = train(experiment, "small", seed=1, epochs=2)
    assert record.completed and len(record.steps["loss"]) == 2 * 16 and len(record.epochs["mse"]) == 2
    assert set(record.inputs) == {"x", "y"} and set(record.data_path) == {"train"}
    again = train(experiment, "small", seed=1, epochs=2)
    assert again.steps == record.steps and again.data_path == record.data_path  # same seed, same numbers
    other = train(experiment, "small", seed=2, epochs=2)
    assert other.steps != record.steps and other.data_path != record.data_path  # another shuffle


def test_the_instruments_on_it_replay_identical_catch_a_change_at_its_step_and_check_bands(project):
    experiment, store = _load(project), ExperimentStore(project / "store")
    for variant in experiment.variants:
        golden, message = replay.write_golden(experiment, variant, store)
        assert golden is not None, message
    assert [o.status for o in (replay.replay(experiment, v, store) for v in experiment.variants)] == ["identical"] * 2
    changed = _load(project, SGD.replace("LR = 0.05", "LR = 0.051"))
    outcome = replay.replay(changed, "small", store)
    assert outcome.status == "changed" and outcome.step == 1 and outcome.series == "w", outcome.message
    assert "changed at step 1 (w): golden" in outcome.message
    shifted = _load(project, SGD.replace("SHIFT = 0.0", "SHIFT = 1e-9"))
    outcome = replay.replay(shifted, "large", store)
    assert outcome.status == "changed" and "its inputs changed (y)" in outcome.message
    # bands on every declared metric at every budget of every variant: 2 × 2 × 2
    baseline = runs(experiment, experiment.baseline_seeds, store, printer=lambda _: None)
    verdicts = bands(experiment, baseline, runs(experiment, experiment.check_seeds, store, printer=lambda _: None))
    assert [v.case for v in verdicts] == [f"{v}-{b}-{m}" for v in ("small", "large") for b in (2, 3)
                                          for m in ("mse", "slope")]
    assert all(v.passed for v in verdicts), [v.message for v in verdicts if not v.passed]
    assert all("MDE" in v.message for v in verdicts)
    slower = _load(project, SGD.replace("LR = 0.05", "LR = 0.005"))  # a real regression: learns a tenth as fast
    worse = bands(slower, baseline, runs(slower, slower.check_seeds, store, printer=lambda _: None))
    assert any("REGRESSION" in v.message for v in worse if v.metric == "slope")


LOADER = textwrap.dedent('''
    import numpy as np
    import trainguard

    LATE = 99  # the epoch from which the loader hands out other batches


    class Loader:  # what a DataLoader is to a step loop: iterated once per epoch, a new shuffle each time
        def __init__(self, seed, batch):
            self.rng, self.batch, self.epoch = np.random.default_rng(seed), batch, 0

        def __iter__(self):
            self.epoch += 1
            order = self.rng.permutation(64)
            if self.epoch >= LATE:
                order = np.roll(order, 1)
            return iter([order[i:i + self.batch] for i in range(0, 64, self.batch)])


    def loader(run):
        return Loader(run.seed, 8)


    @trainguard.experiment(metrics={"mse": "lower"}, budgets=(3,), replay_budget=1, data=loader)
    def fit(run):
        x = np.linspace(-1, 1, 64)
        y = 3.0 * x + 0.5
        w = b = 0.0
        batches = loader(run)
        for epoch in range(run.budget):
            for index in run.batches(batches):
                error = w * x[index] + b - y[index]
                w, b = w - 0.1 * float(np.mean(error * x[index])), b - 0.1 * float(np.mean(error))
                run.step(loss=float(np.mean(error ** 2)))
            run.epoch(mse=float(np.mean((w * x + b - y) ** 2)))
''')


def test_a_declared_data_path_is_fingerprinted_at_full_scale_so_a_change_past_the_golden_s_epochs_is_caught(project):
    """The golden run is 1 epoch of 3; the loader changes its batches from epoch 3 on. The short run alone replays
    identical (the blind spot); the declared data path, iterated for all 3 epochs without the model, is not."""
    (project / "fit.py").write_text(LOADER)
    store = ExperimentStore(project / "store")
    golden, message = replay.write_golden(load_experiment("fit.py:fit"), "default", store)
    assert golden is not None and golden.data_path["batches"] == 24 and "24 batches over 3 epochs" in message
    same = replay.replay(load_experiment("fit.py:fit"), "default", store)
    assert same.status == "identical" and "its data path at full scale too" in same.message
    for name in [m for m in sys.modules if m.startswith("_trainguard_experiment_")]:
        sys.modules.pop(name)
    (project / "fit.py").write_text(LOADER.replace("LATE = 99", "LATE = 3"))
    late = load_experiment("fit.py:fit")
    assert replay.compare("fit", golden, train(late, "default", 0, 1)).status == "identical"  # the short run: blind
    outcome = replay.replay(late, "default", store)
    assert outcome.status == "changed" and outcome.series == "data path", outcome.message
    assert "its data path changed at full scale" in outcome.message and "acts past them" in outcome.message


def test_the_noise_envelope_takes_the_experiment_s_own_perturbations_and_a_lower_instruction_set(project):
    """An opted-in perturbation (a setting the function honours with another summation order) widens the envelope
    where the thread count, for a NumPy function, moves nothing; the lower-ISA run goes through a child process."""
    import platform

    text = SGD.replace("variants={", 'perturbations={"pairwise": {"pairwise": True}}, variants={').replace(
        "b -= LR * 2 * float(np.mean(error))",
        "b -= LR * 2 * (float(np.sum(error[::-1]) / len(error)) if run.settings.get('pairwise') else float(np.mean(error)))")
    experiment = _load(project, text)
    golden, message = replay.write_golden(experiment, "small", ExperimentStore(project / "store"),
                                          target="regression.py:regression")
    assert golden is not None, message
    assert any(p.startswith("pairwise (the experiment's own") for p in golden.perturbations), golden.perturbations
    own = train(experiment, "small", 0, 2, overrides={"pairwise": True})
    threads = train(experiment, "small", 0, 2, threads=2)
    assert threads.steps == golden.record.steps and own.steps != golden.record.steps  # only the opted-in one moves
    from trainguard.stores.golden import series_divergence

    moved = series_divergence(golden.record.steps["w"], own.steps["w"])
    assert all(e >= d for e, d in zip(golden.envelope["w"], moved))  # the envelope covers what it moved
    if platform.machine().lower() in ("x86_64", "amd64"):
        assert any(p.startswith("lower instruction set: ATEN_CPU_CAPABILITY=default") for p in golden.perturbations)
    assert golden.machine["isa"] and "noise envelope from" in message


def test_a_difference_within_the_envelope_passes_only_on_other_arithmetic():
    """On the golden's own machine and thread count the replay must be identical; another vector ISA (or thread count)
    may differ within the measured noise and is "numerics differ"."""
    from trainguard.stores.experiment_records import GoldenRun, Record

    here = replay.machine()
    golden_record = Record("e", "default", 0, 1, 1, "s", steps={"loss": [1.0, 0.5]}, epochs={"m": [0.5]})
    now = Record("e", "default", 0, 1, 1, "s", steps={"loss": [1.0 + 1e-7, 0.5]}, epochs={"m": [0.5]})
    same_machine = GoldenRun(golden_record, {"loss": [1e-3, 1e-3]}, ["x"], machine=dict(here))
    assert replay.compare("e", same_machine, now).status == "changed"
    other_isa = GoldenRun(golden_record, {"loss": [1e-3, 1e-3]}, ["x"], machine={**here, "isa": "AVX512-elsewhere"})
    outcome = replay.compare("e", other_isa, now)
    assert outcome.status == "numerics differ" and "isa" in outcome.message and "AVX512-elsewhere" in outcome.message
    beyond = Record("e", "default", 0, 1, 1, "s", steps={"loss": [1.01, 0.5]}, epochs={"m": [0.5]})
    assert replay.compare("e", other_isa, beyond).status == "changed"  # past the noise: a change wherever it ran


def test_stacked_seeds_train_at_once_through_the_experiment_s_own_function_and_keep_a_baseline_of_their_own(project,
                                                                                                             capsys):
    """--stack-seeds: each variant's missing seeds in one call of train_stacked (here one loop: the same numbers as
    separate runs), kept apart in DIR/stacked with a baseline of their own; an experiment without one is refused."""
    import json

    target = "regression.py:regression"
    assert cli.main(["guard", target, "baseline", "--stack-seeds"]) == 2
    assert "offers no train_stacked" in capsys.readouterr().err
    calls = project / "calls.txt"
    (project / "regression.py").write_text(SGD + stacked_by_loop(calls))
    assert cli.main(["guard", target, "baseline", "--stack-seeds"]) == 0
    assert calls.read_text().splitlines() == ["0,1,2,3,4", "0,1,2,3,4"]  # one call per variant
    assert cli.main(["guard", target, "baseline"]) == 0  # the same seeds one by one, beside them
    stacked = sorted((project / ".trainguard" / "experiments" / "stacked").rglob("seed*.json"))
    alone = sorted(p for p in (project / ".trainguard" / "experiments").rglob("seed*.json") if "stacked" not in p.parts)
    assert len(stacked) == len(alone) == 10
    strip = lambda path: {k: v for k, v in json.loads(path.read_text()).items()  # noqa: E731
                          if k not in ("seconds", "epoch_seconds")}  # times: each run its own
    assert [strip(a) for a in stacked] == [strip(b) for b in alone]
    assert cli.main(["guard", target, "check", "--stack-seeds"]) == 0
    assert calls.read_text().splitlines()[-1] == "100"


def test_a_function_that_is_not_deterministic_gets_no_golden_and_says_where(project):
    text = SGD.replace("rng = np.random.default_rng(run.seed)", "rng = np.random.default_rng()")
    golden, message = replay.write_golden(_load(project, text), "small", ExperimentStore(project / "store"))
    assert golden is None and "not deterministic at 1 thread(s): the same run twice differs at step" in message


@pytest.mark.parametrize("edit, said", [
    (lambda t: t.replace("        run.epoch(mse=", "        raise ValueError('diverged')\n        run.epoch(mse="),
     "ValueError: diverged (at"),
    (lambda t: t.replace("for epoch in range(run.budget):", "for epoch in range(run.budget - 1):"),
     "it reported 1 epoch(s) of metrics, asked for 2"),
    (lambda t: t.replace("run.epoch(mse=float(np.mean((w * x + b - y) ** 2)), slope=w)", "run.epoch(slope=w)"),
     "epoch 1 reported no mse (declared in its metrics)"),
])
def test_a_function_that_fails_is_that_run_s_result_naming_why(project, edit, said):
    record = train(_load(project, edit(SGD)), "small", seed=1, epochs=2)
    assert record.status == "error" and said in record.message, record.message


@pytest.mark.parametrize("settings, said", [
    (dict(metrics={"acc": "up"}), "metrics must map each name to 'higher' or 'lower'"),
    (dict(metrics={"acc": "higher"}, budgets=(0,)), "budgets must be positive epoch counts"),
    (dict(metrics={"acc": "higher"}, check_seeds=(0,)), "check_seeds [0] are baseline seeds too"),
    (dict(metrics={"acc": "higher"}, baseline_seeds=(0,)), "a band needs at least 2 baseline seeds"),
    (dict(metrics={"acc": "higher"}, budgets=(2, 4), window=3), "window must be an epoch count from 1 to the smallest"),
    (dict(metrics={"acc": "higher"}, resolutions={"loss": 0.1}), "resolutions must map declared metrics"),
    (dict(metrics={"acc": "higher"}, start=Start(("loss",), 1)), "start must be a trainguard.Start of declared"),
    (dict(metrics={"acc": "higher"}, start=Start(("acc",), 1, variants=("x",))), "and variants ['default']"),
    (dict(metrics={"acc": "higher"}, budgets=(2,), start=Start(("acc",), 3)), "start epochs must be from 1 to the"),
    (dict(metrics={"acc": "higher"}, budgets=(2, 4), window=2, start=Start(("acc",), 2)),
     "start epochs 2 read what the budget 2's bands read"),
    (dict(metrics={"acc": "higher", "start_acc": "higher"}, budgets=(2,), start=Start(("acc",), 1)),
     "would share a name"),
    (dict(metrics={"acc": "higher"}, precisions=("fp32", "fp16")), "precisions must be among ('fp32', 'bf16')"),
    (dict(metrics={"acc": "higher"}, precisions=("bf16",)), "and hold fp32"),
])
def test_a_malformed_experiment_is_one_sentence(settings, said):
    with pytest.raises(ConfigError, match=__import__("re").escape(said)):
        Experiment("mine", lambda run: None, **settings)


def test_a_target_that_names_no_experiment_is_one_sentence(project, capsys):
    assert cli.main(["guard", "regression.py:LR", "replay"]) == 2
    assert "'LR' is float, not a trainguard Experiment" in capsys.readouterr().err
    assert cli.main(["guard", "nowhere.py:x", "replay"]) == 2
    assert "nowhere.py does not exist" in capsys.readouterr().err


def test_the_guard_command_end_to_end(project, capsys):
    target = "regression.py:regression"
    assert cli.main(["guard", target, "replay"]) == 5  # nothing to replay yet
    assert cli.main(["guard", target, "check"]) == 5  # no baseline yet
    assert cli.main(["guard", target, "replay", "--update"]) == 0
    assert cli.main(["guard", target, "replay"]) == 0
    assert cli.main(["guard", target, "baseline"]) == 0
    assert cli.main(["guard", target, "check"]) == 0
    out = capsys.readouterr().out
    assert "10 passed, 0 failed" in out  # 8 bands, 2 claims
    assert "PASS small batches learn faster: slope small@2" in out and "holds" in out
    # a run's progress, one line per epoch with its declared metrics (the check seed trained by `check`)
    assert re.search(r"\[trainguard\] regression large seed 100 \| epoch 3/3 \| mse \S+ \| slope \S+ \| \S+s\n", out), out
    assert cli.main(["guard", target, "check", "--seeds", "0"]) == 2  # a baseline seed
    assert cli.main(["guard", target, "baseline", "--max-minutes", "0"]) == 2  # a limit that is no limit
    capsys.readouterr()
    # the code changes (a tenth of the learning rate): the check compares it with the baseline measured before
    _load(project, SGD.replace("LR = 0.05", "LR = 0.005"))
    assert cli.main(["guard", target, "check"]) == 1
    out = capsys.readouterr().out
    assert "the baseline was measured on other code" in out and "REGRESSION" in out


def test_fingerprints_tell_arrays_apart_by_content_shape_and_type():
    a = np.arange(6, dtype=np.float32)
    assert fingerprint(a) == fingerprint(a.copy())
    assert len({fingerprint(a), fingerprint(a.reshape(2, 3)), fingerprint(a.astype(np.float64)),
                fingerprint(a + 1)}) == 4
    with pytest.raises(ConfigError, match="cannot fingerprint a object"):
        fingerprint(object())


def test_the_batches_wrapper_is_the_loader_to_the_step_loop():
    class Loader(list):
        dataset = "the data set"

    run = Run(Experiment("e", lambda r: None, {"m": "higher"}), "default", 0, 1)
    loader = Loader([(np.ones(2), np.zeros(2))] * 3)
    wrapped = run.batches(loader)
    assert len(wrapped) == 3 and wrapped.dataset == "the data set" and list(wrapped) == list(loader)
    assert trainguard.Run is Run


def test_an_experiment_s_nights_go_to_the_ledger_where_drift_and_the_dashboard_read_them(project, capsys):
    """The ledger's instruments, unchanged, on an experiment's nights: recorded, a step since the previous night
    flagged as drift (against the baseline's seed noise), shown by `trainguard ledger` and the dashboard."""
    from trainguard.report import dashboard
    from trainguard.stores.ledger import open_ledger

    target, ledger = "regression.py:regression", str(project / "ledger.sqlite")
    assert cli.main(["guard", target, "baseline"]) == 0
    assert cli.main(["guard", target, "check", "--ledger", ledger, "--report", "night.md"]) == 0
    assert cli.main(["guard", target, "check", "--ledger", ledger]) == 0  # the same code again: no step
    out = capsys.readouterr().out
    assert "drift: no earlier run" in out and "STEP" not in out
    from trainguard.stores.ledger import open_ledger

    first, second = open_ledger(ledger).read("regression", "cpu")
    assert first["speed"]["small"]["epoch_seconds"] > 0  # trained and timed tonight
    assert second["speed"]["small"] == {"trained": False}  # from the cache: another night's seconds, not timed
    night = (project / "night.md").read_text()
    # per budget, every band as checked: the night's statistic, the band, its difference from the centre, MDE, verdict
    assert "## Against the baseline at 2 epochs" in night and "## Against the baseline at 3 epochs" in night
    assert re.search(r"\| small +\| mse +\| \S+ +\| \S+ … \S+ +\| [+-]\S+ +\| \S+ +\| pass +\|", night), night
    assert "## Measured: each metric at each budget, per seed" in night
    assert (project / "night-experiment-regression.png").stat().st_size > 0  # the figures, beside the report
    assert (project / "night-experiment-regression-checked.png").stat().st_size > 0
    (project / "regression.py").write_text(SGD.replace("LR = 0.05", "LR = 0.04"))  # slower learning
    assert cli.main(["guard", target, "baseline"]) == 0  # its code changed: its baseline is measured again
    cli.main(["guard", target, "check", "--ledger", ledger, "--seeds", "100"])
    out = capsys.readouterr().out
    assert "STEP (worse than the previous run)" in out, out[-3000:]
    assert "changed since: the source of experiment regression (" in out
    nights = open_ledger(ledger).read("regression", "cpu")
    assert len(nights) == 3 and set(nights[-1]["cells"]) == {"small", "large"}
    assert any("STEP" in flag for flag in nights[-1]["flags"])
    dashboard.build(open_ledger(ledger), project / "site")
    assert "regression on cpu" in (project / "site" / "index.html").read_text()


def test_an_experiment_s_cases_under_pytest_have_readable_names_and_judge_what_was_stored(project, pytester):
    """The experiment as pytest cases: one replay per variant, one band per variant × budget × metric."""
    pytester.makepyfile(test_guarded='''
        import pytest

        pytestmark = pytest.mark.trainguard_experiment("regression.py:regression")

        def test_replay(experiment_replay):
            experiment_replay.check()

        def test_band(experiment_band):
            experiment_band.check()

        def test_cell_within_baseline(experiment_cell):
            experiment_cell.check()
    ''')
    (pytester.path / "regression.py").write_text(SGD)
    for name in [m for m in sys.modules if m.startswith("_trainguard_experiment_")]:
        sys.modules.pop(name)
    collected = pytester.runpytest_subprocess("--collect-only", "-q")
    names = [line for line in collected.stdout.lines if "::" in line]
    assert "test_guarded.py::test_replay[small]" in names and "test_guarded.py::test_band[large-3-slope]" in names
    assert "test_guarded.py::test_cell_within_baseline[large-3]" in names  # every band of a variant at a budget
    assert len(names) == 2 + 8 + 4
    skipped = pytester.runpytest_subprocess("-q", "-rs")
    skipped.assert_outcomes(skipped=14)  # nothing stored yet: each case says which command writes it
    assert "trainguard guard regression.py:regression baseline" in skipped.stdout.str()
    target = str(pytester.path / "regression.py") + ":regression"
    assert cli.main(["guard", target, "replay", "--update", "--dir", str(pytester.path / ".trainguard" / "experiments")]) == 0
    assert cli.main(["guard", target, "baseline", "--dir", str(pytester.path / ".trainguard" / "experiments")]) == 0
    pytester.runpytest_subprocess("-q").assert_outcomes(passed=14)
    (pytester.path / "regression.py").write_text(SGD.replace("LR = 0.05", "LR = 0.051"))
    changed = pytester.runpytest_subprocess("-q", "-k", "replay")
    changed.assert_outcomes(failed=2)
    assert "changed at step 1 (w)" in changed.stdout.str()
    (pytester.path / "regression.py").write_text(SGD.replace("3.0 * x", "4.0 * x"))  # the data moved
    cells = pytester.runpytest_subprocess("-q", "-k", "cell")
    cells.assert_outcomes(failed=4)
    assert "of 2 band(s) failed" in cells.stdout.str() and "small-2 mse" in cells.stdout.str()


def test_the_cache_key_covers_the_modules_the_experiment_imports_beside_it_and_nothing_else(tmp_path):
    (tmp_path / "helper.py").write_text("RATE = 1\n")
    (tmp_path / "unrelated.py").write_text("X = 1\n")
    (tmp_path / "adapter.py").write_text(
        "import trainguard\nfrom helper import RATE\n\n\n@trainguard.experiment(metrics={'m': 'higher'})\n"
        "def e(run):\n    run.epoch(m=RATE)\n")
    key = lambda: load_experiment(f"{tmp_path / 'adapter.py'}:e").source_fingerprint()  # noqa: E731
    first = key()
    assert [p.name for p in load_experiment(f"{tmp_path / 'adapter.py'}:e").source_files()] == ["adapter.py", "helper.py"]
    (tmp_path / "unrelated.py").write_text("X = 2\n")
    assert key() == first
    (tmp_path / "helper.py").write_text("RATE = 2\n")
    assert key() != first
    # its import statements are read once per version of a file: an edit that adds an import is seen at once
    (tmp_path / "helper.py").write_text("from unrelated import X\nRATE = 2\n")
    assert [p.name for p in load_experiment(f"{tmp_path / 'adapter.py'}:e").source_files()] == [
        "adapter.py", "helper.py", "unrelated.py"]


def test_a_claim_that_does_not_hold_fails_the_night_saying_both_means(project, capsys):
    text = SGD.replace('better="small@2",', 'better="large@2",').replace('than="large@2"', 'than="small@2"')
    assert text != SGD
    (project / "regression.py").write_text(text)
    target = "regression.py:regression"
    assert cli.main(["guard", target, "baseline"]) == 0
    assert cli.main(["guard", target, "check", "--report", "night.md", "--junit-xml", "junit.xml"]) == 1
    out = capsys.readouterr().out
    assert "FAIL small batches learn faster: slope large@2" in out and "DOES NOT HOLD" in out
    assert "claim FAIL: small batches learn faster" in (project / "night.md").read_text()
    from xml.etree import ElementTree as ET

    suite = ET.parse(project / "junit.xml").getroot()
    assert suite.get("name") == "trainguard.regression" and suite.get("tests") == "10" and suite.get("failures") == "1"
    names = {(c.get("classname"), c.get("name")): c.find("failure") for c in suite.iter("testcase")}
    assert ("trainguard.regression.band", "small-3-mse") in names and names[("trainguard.regression.band", "small-3-mse")] is None
    failed = names[("trainguard.regression.claim", "small batches learn faster")]
    assert failed is not None and "DOES NOT HOLD" in failed.text


def test_the_time_limit_stops_a_run_as_timeout_and_trains_nothing_after_it(project):
    """--max-minutes on any experiment: Run.step raises once the limit has passed, the run ends as ``timeout`` keeping
    what it reported and is not cached; a run not started by then is not trained."""
    import time

    from trainguard.core.experiment import Run
    from trainguard.runs.experiment_runs import deliver

    experiment = _load(project)
    store = ExperimentStore(project / "store")
    stopped = train(experiment, "small", seed=1, epochs=3, deadline=time.monotonic() - 1)
    assert stopped.status == "timeout" and "time limit passed during epoch 1" in stopped.message
    assert store.get("regression", "small", 1, 3, 1, experiment.source_fingerprint()) is None
    late = deliver(experiment, "small", 2, store, deadline=time.monotonic() - 1, printer=lambda _: None)
    assert late.status == "timeout" and "not trained" in late.message
    assert not list((project / "store").rglob("*.json"))
    assert Run(experiment, "small", 1, 3).time_left() is None


def test_a_run_another_process_is_training_is_waited_for_and_read_not_trained_twice(project):
    """The run's lock: a second process (a night, a Ray driver) waits, then reads what the first one stored."""
    import threading

    from trainguard.runs.experiment_runs import deliver

    import dataclasses

    loaded = _load(project)
    store = ExperimentStore(project / "store")
    said, trained = [], []

    def counted(run):
        trained.append(run.seed)
        loaded.train(run)

    experiment = dataclasses.replace(loaded, train=counted)
    with store.lock("regression", "small", 5):
        waiter = threading.Thread(target=lambda: said.append(deliver(experiment, "small", 5, store, printer=said.append)))
        waiter.start()
        waiter.join(timeout=2)
        assert waiter.is_alive() and any("another process is training it" in str(s) for s in said)
        from trainguard.runs.experiment_runs import _train_and_keep

        _train_and_keep(experiment, "small", 5, store, 1, "cpu", None, lambda _: None, None)
    waiter.join(timeout=30)
    assert trained == [5] and said[-1].completed  # the waiter read the stored run


def test_a_claim_on_a_cell_the_experiment_lacks_is_one_sentence():
    with pytest.raises(ConfigError, match="claim 'x' names a metric or cell the experiment does not have"):
        Experiment("e", lambda run: None, {"m": "higher"}, budgets=(1,),
                   claims=(trainguard.Claim("x", "m", better="default@2", than="default@1"),))


def test_a_function_that_sets_torch_s_thread_count_leaves_the_process_s_count_as_it_was():
    """torch's thread count is process-wide and part of every cached run's key: a training function that sets it
    for its run must not change what trainguard's later runs in the same process train on (and are keyed by)."""
    import torch

    before = torch.get_num_threads()
    other = 1 if before != 1 else 2

    def sets_threads(run):
        torch.set_num_threads(other)
        run.epoch(acc=1.0)

    record = train(Experiment("threads", sets_threads, metrics={"acc": "higher"}, budgets=(1,)), "default", seed=1,
                   epochs=1)
    assert record.status == "completed", record.message
    assert torch.get_num_threads() == before


def test_runs_of_another_device_type_are_kept_apart_from_the_cpu_s(tmp_path):
    """A CUDA run rounds differently from a CPU run: it is neither the CPU runs' cache nor their baseline; nor is a
    bf16 or a compiled run (named as the built-in baselines' device classes)."""
    cpu, cuda, card = ExperimentStore(tmp_path), ExperimentStore(tmp_path, "cuda"), ExperimentStore(tmp_path, "cuda:1")
    assert cpu.root == tmp_path and cuda.root == card.root == tmp_path / "cuda"
    assert ExperimentStore(tmp_path, "cpu", "bf16").root == tmp_path / "cpu-bf16"
    assert ExperimentStore(tmp_path, "cuda:0", "bf16", True).root == tmp_path / "cuda-bf16-compile"
    assert ExperimentStore(tmp_path, "cpu", compile=True).root == tmp_path / "cpu-compile"
    assert cpu.run_path("e", "v", 0, 2, 1, "abc") != cuda.run_path("e", "v", 0, 2, 1, "abc")
    assert cpu.golden_path("e", "v") != cuda.golden_path("e", "v")


def test_a_window_averages_each_budget_s_last_epochs_and_a_resolution_floors_the_spread():
    """``window``: bands, claims and the ledger read the mean of the last epochs up to each budget; ``resolutions``:
    baseline seeds that agree exactly still get a band an honest rerun can meet (one step of the metric)."""
    from trainguard.stores.experiment_records import Record

    def record(seed, accs):
        return Record("m", "default", seed, len(accs), 1, "", epochs={"acc": accs})

    baseline = {("default", s): record(s, [50.0, 60.0, 70.0]) for s in range(4)}  # every seed alike
    night = {("default", 100): record(100, [50.0, 60.0, 70.1])}  # one image of 1,000 more at epoch 3
    plain = Experiment("m", lambda run: None, metrics={"acc": "higher"}, budgets=(3,))
    assert not bands(plain, baseline, night)[0].passed  # a zero-width band: any difference fails
    floored = Experiment("m", lambda run: None, metrics={"acc": "higher"}, budgets=(3,), resolutions={"acc": 0.1})
    assert bands(floored, baseline, night)[0].passed and bands(floored, baseline, night)[0].band.std == 0.1
    windowed = Experiment("m", lambda run: None, metrics={"acc": "higher"}, budgets=(3,), window=2)
    verdict, = bands(windowed, baseline, night)
    assert verdict.value == (60.0 + 70.1) / 2 and verdict.band.center == 65.0
    assert "(mean of epochs 2–3)" in verdict.message


def test_a_reference_sets_published_numbers_beside_the_night_and_checks_those_with_a_tolerance(project, capsys):
    """``references``: numbers measured elsewhere, shown in the report's table beside each variant's mean, and
    checked (|mean − value| ≤ tolerance) where the reference gives one: a PASS or FAIL line, a JUnit case, a pytest
    case id."""
    from xml.etree import ElementTree as ET

    from trainguard.checks.experiment_references import checked_names

    text = SGD.replace('''than="large@2")))''', '''than="large@2")),
                           references=(trainguard.Reference("a paper", {"small@3": {"slope": 2.4, "mse": 0.5}},
                                                            tolerances={"slope": 0.5}, note="its own data"),
                                       trainguard.Reference("a blog", {"large@2": {"slope": 9.0}},
                                                            tolerances={"slope": 0.1})))''')
    experiment = _load(project, text)
    assert checked_names(experiment) == ["a paper: small@3 slope", "a blog: large@2 slope"]
    target = "regression.py:regression"
    assert cli.main(["guard", target, "baseline"]) == 0
    capsys.readouterr()
    assert cli.main(["guard", target, "check", "--report", "night.md", "--junit-xml", "junit.xml"]) == 1
    out = capsys.readouterr().out
    assert re.search(r"PASS a paper: small@3 slope: this night \S+ \(mean of seeds \[100\]\), published 2\.4: "
                     r"\|difference\| \S+ ≤ tolerance 0\.5 \(its own data\)", out), out
    assert "FAIL a blog: large@2 slope: this night" in out and "> tolerance 0.1" in out
    report = (project / "night.md").read_text()
    assert re.search(r"\| small +\| a paper +\| — +\| 0\.5 +\| — +\| 2\.4 +\|", report), report  # beside its mean
    assert re.search(r"\| small +\| Δ a paper +\| — +\| [+-]\S+ +\| — +\| [+-]\S+ +\|", report), report  # and the difference
    assert "- a paper: numbers measured elsewhere, each budget's own epoch (its own data)" in report
    names = [c.get("name") for c in ET.parse(project / "junit.xml").getroot().iter("testcase")]
    assert "a paper: small@3 slope" in names and "a blog: large@2 slope" in names


def test_a_reference_to_a_cell_the_experiment_lacks_is_one_sentence():
    from trainguard.core.experiment import Reference

    with pytest.raises(ConfigError, match="each reference must be a trainguard.Reference whose cells and metrics"):
        Experiment("m", lambda run: None, metrics={"acc": "higher"}, references=(Reference("r", {"default@9": {"acc": 1}}),))


def test_the_start_of_the_curve_is_a_band_of_its_own_that_sees_another_path_to_the_same_end():
    """``start``: the mean of a metric's first epochs, one band per named variant beside the smallest budget's — it
    fails a run that starts slower and ends where the baseline ends, which every budget's band passes."""
    from trainguard.audit.experiment_calibration import _cells
    from trainguard.checks.experiment_night import ExperimentTable, variant_cells
    from trainguard.stores.experiment_records import Record

    def record(seed, losses):
        return Record("m", "default", seed, len(losses), 1, "", epochs={"loss": losses})

    baseline = {("default", s): record(s, [2.0 + s / 100, 1.5 + s / 100, 1.0 + s / 100, 0.5 + s / 100])
                for s in range(5)}
    night = {("default", 100): record(100, [2.6, 2.1, 1.02, 0.52])}  # slower through epoch 2, the same end
    experiment = Experiment("m", lambda run: None, metrics={"loss": "lower"}, budgets=(3, 4),
                            start=Start(("loss",), 2))
    assert [(c.variant, c.budget, c.metric, c.end, c.window) for c in experiment.cells()] == [
        ("default", 3, "loss", 3, 1), ("default", 4, "loss", 4, 1), ("default", 3, "start_loss", 2, 2)]
    verdicts = {v.case: v for v in bands(experiment, baseline, night)}
    assert verdicts["default-3-loss"].passed and verdicts["default-4-loss"].passed
    start = verdicts["default-3-start_loss"]
    assert not start.passed and start.value == (2.6 + 2.1) / 2 and "(mean of epochs 1–2)" in start.message
    assert "REGRESSION" in start.message
    # the ledger keeps it, drift reads the baseline's values of it, the calibration leaves seeds out of it
    assert variant_cells(experiment, night)["default"]["3"]["start_loss"] == {"100": (2.6 + 2.1) / 2}
    table = ExperimentTable(baseline, experiment)
    assert table.values("default", 3, "start_loss", window=1) == pytest.approx([(3.5 + 2 * s / 100) / 2 for s in range(5)])
    assert table.lower_is_better("start_loss") is True and table.has("start_loss")
    assert _cells(experiment, baseline)[("default", 3, "start_loss")][4] == pytest.approx((3.5 + 0.08) / 2)


def test_the_start_of_the_curve_through_the_guard_command_report_junit_ledger_and_pytest(project, capsys):
    from xml.etree import ElementTree as ET

    from trainguard.stores.ledger import open_ledger

    _load(project, SGD.replace('than="large@2")))', 'than="large@2")),\n'
                               '                       start=trainguard.Start(("mse",), 1, variants=("small",)))'))
    target, ledger = "regression.py:regression", str(project / "ledger.sqlite")
    assert cli.main(["guard", target, "baseline"]) == 0
    capsys.readouterr()
    assert cli.main(["guard", target, "check", "--report", "night.md", "--junit-xml", "junit.xml",
                     "--ledger", ledger]) == 0
    out = capsys.readouterr().out
    assert re.search(r"small-2 start_mse \(epoch 1\): \S+ within its band", out), out
    assert "large-2 start_mse" not in out
    names = [c.get("name") for c in ET.parse(project / "junit.xml").getroot().iter("testcase")]
    assert "small-2-start_mse" in names and len([n for n in names if "start_" in n]) == 1, names
    assert re.search(r"\| mse at the start \(↓, epoch 1\) +\|", (project / "night.md").read_text())
    night, = open_ledger(ledger).read("regression", "cpu")
    assert set(night["cells"]["small"]["2"]) == {"mse", "slope", "start_mse"}
    assert "start_mse" not in night["cells"]["large"]["2"]


def test_replay_settings_train_every_golden_run_at_the_golden_s_scale_and_the_nights_at_full_scale(project):
    """``replay_settings``: merged into the settings of the golden run, its replays and its perturbed runs (the
    lower-ISA child's too), never into a night's runs."""
    from trainguard.replay.experiment_replay import golden_run, write_golden

    text = SGD.replace("x = np.linspace(-1, 1, 64)", "n = run.settings.get('n', 64)\n    x = np.linspace(-1, 1, n)")
    text = text.replace("standard_normal(64)", "standard_normal(n)").replace("rng.permutation(64)", "rng.permutation(n)")
    text = text.replace("range(0, 64, batch)", "range(0, n, batch)")
    text = text.replace("budgets=(2, 3), replay_budget=2,", "budgets=(2, 3), replay_budget=2, replay_settings={'n': 16},")
    experiment = _load(project, text)
    store = ExperimentStore(project / "store")
    golden, said = write_golden(experiment, "small", store, target="regression.py:regression")
    assert golden is not None, said
    assert len(golden.record.steps["loss"]) == 2 * 16 // 4  # two epochs of 16 points in batches of 4
    # the perturbed runs (another thread count, the lower-ISA child) trained the same 16 points: rounding apart
    assert len(said.split(";")) >= 2 and max(max(a) for a in golden.envelope.values()) < 1e-3, (said, golden.envelope)
    assert replay.replay(experiment, "small", store).status == replay.IDENTICAL
    night = train(experiment, "small", 100, 2)
    assert len(night.steps["loss"]) == 2 * 64 // 4  # a night's run: full scale
    assert golden_run(experiment, "small", 2, overrides={"n": 32}).steps["loss"].__len__() == 2 * 32 // 4


def _as_csv(records, path) -> None:
    """Runs as a team keeps them: one row per variant, seed and epoch, a column per metric."""
    lines = ["variant,seed,epoch,mse,slope"]
    for r in records:
        lines += [f"{r.variant},{r.seed},{e + 1},{r.epochs['mse'][e]!r},{r.epochs['slope'][e]!r}"
                  for e in range(r.epochs_asked)]
    path.write_text("\n".join(lines) + "\n")


def test_a_baseline_measured_before_is_imported_from_a_csv_and_checks_as_a_trained_one(project, capsys):
    """`guard … baseline --from-csv FILE`: the baseline seeds' runs read from numbers measured before (nothing
    trains); the night's bands are those of the same runs trained here, and its notes say the baseline was
    imported."""
    from trainguard.runs.experiment_runs import baseline_of

    experiment = _load(project)
    trained = [train(experiment, v, s, 3) for v in experiment.variants for s in experiment.baseline_seeds]
    _as_csv(trained, project / "before.csv")
    target = "regression.py:regression"
    assert cli.main(["guard", target, "baseline", "--from-csv", "before.csv", "--dir", "imported"]) == 0
    assert "10 run(s) imported from before.csv" in capsys.readouterr().out
    imported, note = baseline_of(experiment, ExperimentStore(project / "imported"))
    assert "the baseline was imported from before.csv (sha256 " in note
    assert all(imported[(r.variant, r.seed)].epochs == r.epochs for r in trained)
    night = {(v, 100): train(experiment, v, 100, 3) for v in experiment.variants}
    as_trained = bands(experiment, {(r.variant, r.seed): r for r in trained}, night)
    assert [(v.value, v.band) for v in bands(experiment, imported, night)] == [(v.value, v.band) for v in as_trained]
    assert cli.main(["guard", target, "check", "--dir", "imported"]) == 0
    assert "the baseline was imported from before.csv" in capsys.readouterr().out


@pytest.mark.parametrize("edit, said", [
    (lambda rows: [r.replace(",slope", ",slant") if r.startswith("variant") else r for r in rows],
     "no column for the declared metric(s) ['slope']"),
    (lambda rows: [r for r in rows if not r.startswith("large,4,")], "no rows for variant 'large', seed 4"),
    (lambda rows: [r for r in rows if not r.startswith("small,0,2,")], "variant 'small', seed 0 lacks epoch(s) [2]"),
    (lambda rows: rows[:1] + ["small,0,one," + rows[1].split(",", 3)[3]] + rows[2:], "before.csv:2: seed and epoch"),
    (lambda rows: rows[:1] + [",".join(rows[1].split(",")[:3] + ["nan", "1.0"])] + rows[2:], "not finite"),
    (lambda rows: rows + rows[1:2], "variant 'small', seed 0, epoch 1 again (first on line 2)"),
])
def test_an_imported_baseline_that_is_incomplete_is_refused_naming_the_file_and_nothing_is_written(project, capsys,
                                                                                                  edit, said):
    experiment = _load(project)
    _as_csv([train(experiment, v, s, 3) for v in experiment.variants for s in experiment.baseline_seeds],
            project / "before.csv")
    rows = (project / "before.csv").read_text().splitlines()
    (project / "before.csv").write_text("\n".join(edit(rows)) + "\n")
    assert cli.main(["guard", "regression.py:regression", "baseline", "--from-csv", "before.csv", "--dir", "x"]) == 2
    assert said in capsys.readouterr().err
    assert not (project / "x").exists() or not list((project / "x").rglob("seed*.json"))


def test_one_member_of_a_stack_fails_alone_through_run_fail(project):
    """``run.fail(message)``: a stacked function marks the one run that failed (a diverged seed) without raising; the
    stack's other runs keep their results, and the failed one keeps what it reported with its message as its
    result."""
    from trainguard.runs.experiment_runs import train_together

    (project / "regression.py").write_text(SGD + textwrap.dedent('''
        import dataclasses


        def _together(runs):
            for run in runs:
                regression.train(run)
                if run.seed == 1:
                    run.fail("diverged at epoch 3: loss nan")


        regression = dataclasses.replace(regression, train_stacked=_together)
    '''))
    experiment = _load(project)
    records = train_together(experiment, "small", [0, 1, 2], 3)
    assert [r.status for r in records] == ["completed", "error", "completed"]
    assert records[1].message == "diverged at epoch 3: loss nan" and len(records[1].epochs["mse"]) == 3
    assert records[0].epochs == train(experiment, "small", 0, 3).epochs  # its stack-mate's failure left it alone


ARITHMETIC = SGD.replace("replay_budget=2,", "replay_budget=2, precisions=(\"fp32\", \"bf16\"), compiles=True,").replace(
    "        w = b = 0.0\n", "        w = b = 0.0\n"
    "        dtype = np.float16 if run.precision == \"bf16\" else np.float64  # a coarser arithmetic, honoured\n"
    "        x, y = x.astype(dtype), y.astype(dtype)\n")


def test_the_arithmetic_a_night_asks_for_reaches_only_a_function_that_declares_it_with_runs_of_its_own(project, capsys):
    """--precision / --compile: handed to the function as run.precision / run.compile where the experiment declares
    it honours them; refused, in one sentence, where it does not (an fp32 run would otherwise be kept as bf16); the
    runs, baseline and ledger of another arithmetic kept apart from fp32's."""
    target = "regression.py:regression"
    assert cli.main(["guard", target, "baseline", "--precision", "bf16"]) == 2
    assert "declares precisions ['fp32']: it would train bf16 as fp32" in capsys.readouterr().err
    assert cli.main(["guard", target, "check", "--compile"]) == 2
    assert "does not declare compiles=True" in capsys.readouterr().err
    assert cli.main(["guard", target, "replay", "--precision", "bf16"]) == 2  # the goldens are fp32, eager
    assert "only with `baseline` and `check`" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="declares precisions"):
        runs(_load(project), (100,), ExperimentStore(project / "s"), precision="bf16")

    _load(project, ARITHMETIC)
    seen = Run(_load(project), "small", 0, 2, precision="bf16", compile=True)
    assert (seen.precision, seen.compile) == ("bf16", True)
    ledger = str(project / "ledger.db")
    assert cli.main(["guard", target, "baseline", "--precision", "bf16"]) == 0
    assert len(list((project / ".trainguard" / "experiments" / "cpu-bf16").rglob("seed*.json"))) == 10
    assert not list((project / ".trainguard" / "experiments" / "regression").rglob("seed*.json"))
    assert cli.main(["guard", target, "check"]) == 5  # fp32 has no baseline: bf16's is not its
    assert cli.main(["guard", target, "check", "--precision", "bf16", "--ledger", ledger]) == 0
    out = capsys.readouterr().out
    assert "training 3 epoch(s) (bf16)" in out
    # the function honoured it: bf16's check seed is not fp32's
    assert cli.main(["guard", target, "baseline"]) == 0
    stored = {p.parent.parent.parent.name: p for p in (project / ".trainguard").rglob("seed100-*.json")}
    assert cli.main(["guard", target, "check"]) == 0
    fp32 = next(p for p in (project / ".trainguard" / "experiments" / "regression").rglob("seed100-*.json"))
    assert fp32.read_text() != stored["cpu-bf16"].read_text()
    from trainguard.stores.ledger import open_ledger

    assert [e["device_class"] for e in open_ledger(ledger).read("regression", "cpu-bf16")] == ["cpu-bf16"]


def test_a_reference_with_seeds_of_its_own_is_checked_on_their_mean_reading_baseline_seeds_and_training_the_others(
        project, capsys):
    """``Reference(seeds=...)``: a protocol that averages given seeds (the report's table on the [published] seeds).
    Its baseline seeds' runs are read from the baseline, its others trained beside the check seeds (and cached);
    the bands still read the check seeds alone."""
    import statistics

    from trainguard.checks.experiment_references import seeds_to_train

    text = SGD.replace('''than="large@2")))''', '''than="large@2")),
                           references=(trainguard.Reference("a paper", {"small@3": {"slope": 2.4}},
                                                            tolerances={"slope": 0.5}, seeds=(0, 1, 7)),))''')
    experiment = _load(project, text)
    assert seeds_to_train(experiment) == (7,)
    target = "regression.py:regression"
    assert cli.main(["guard", target, "baseline"]) == 0
    capsys.readouterr()
    assert cli.main(["guard", target, "check"]) == 0
    out = capsys.readouterr().out
    assert "regression small seed 7: training 3 epoch(s)" in out and "regression small seed 0: training" not in out
    store = ExperimentStore(project / ".trainguard" / "experiments")
    seven, zero, one = (store.get("regression", "small", s, 3, 1, experiment.source_fingerprint()) for s in (7, 0, 1))
    mean = statistics.fmean(r.at("slope", 3) for r in (zero, one, seven))
    assert f"PASS a paper: small@3 slope: this night {mean:.4g} (mean of seeds [0, 1, 7])" in out, out
    assert "11 passed, 0 failed" in out  # 8 bands (the check seed's), 2 claims, 1 reference value
    # a night that checks other seeds (--seeds 200) trains a reference's seed that is a check seed of the experiment
    mine = Experiment("mine", lambda run: None, metrics={"acc": "higher"}, baseline_seeds=(0, 1), check_seeds=(100,),
                      references=(trainguard.Reference("r", {"default@1": {"acc": 1.0}}, seeds=(0, 100, 7)),))
    assert seeds_to_train(mine) == (7,) and seeds_to_train(mine, (200,)) == (7, 100)
    with pytest.raises(ConfigError, match="whose seeds are integers"):
        Experiment("mine", lambda run: None, metrics={"acc": "higher"},
                   references=(trainguard.Reference("r", {"default@1": {"acc": 1.0}}, seeds=("0",)),))


def test_an_experiment_file_is_executed_once_per_version_of_it(tmp_path):
    """pytest lists a profile's cases, then runs them: the file's top level runs once, not once per lookup; an edited
    file runs again, and one that raised is not served half executed."""
    log = tmp_path / "imports.txt"
    text = ("import trainguard\nopen({log!r}, 'a').write('x')\nRATE = {rate}\n\n"
            "@trainguard.experiment(metrics={{'m': 'higher'}})\ndef e(run):\n    run.epoch(m=RATE)\n")
    (tmp_path / "once.py").write_text(text.format(log=str(log), rate=1))
    first = load_experiment(f"{tmp_path / 'once.py'}:e")
    assert load_experiment(f"{tmp_path / 'once.py'}:e") is first and log.read_text() == "x"
    (tmp_path / "once.py").write_text(text.format(log=str(log), rate=22))
    assert load_experiment(f"{tmp_path / 'once.py'}:e") is not first and log.read_text() == "xx"
    (tmp_path / "once.py").write_text(text.format(log=str(log), rate="1 / 0"))
    for _ in range(2):
        with pytest.raises(ConfigError, match="ZeroDivisionError"):
            load_experiment(f"{tmp_path / 'once.py'}:e")
    assert log.read_text() == "xxxx"


def test_a_renamed_experiment_keeps_its_ledger_history_through_formerly(project, capsys):
    """``formerly=("regression",)``: the renamed experiment's check reads its earlier nights under the old name, so
    drift compares with them (instead of starting anew), and a step names the rename among what changed."""
    target, ledger = "regression.py:regression", str(project / "ledger.sqlite")
    assert cli.main(["guard", target, "baseline"]) == 0
    assert cli.main(["guard", target, "check", "--ledger", ledger]) == 0
    renamed = SGD.replace("@trainguard.experiment(", '@trainguard.experiment(name="fit", formerly=("regression",), ')
    _load(project, renamed)
    assert cli.main(["guard", target, "baseline"]) == 0  # a new name: its own runs (the cache is keyed by name)
    capsys.readouterr()
    assert cli.main(["guard", target, "check", "--ledger", ledger]) == 0
    out = capsys.readouterr().out
    assert "earlier nights read under its former name(s): regression (1 night(s))" in out
    assert "drift: no earlier run" not in out and "STEP" not in out  # the same numbers under a new name: no step
    _load(project, renamed.replace("LR = 0.05", "LR = 0.005"))
    assert cli.main(["guard", target, "check", "--ledger", ledger]) == 1
    out = capsys.readouterr().out
    assert re.search(r"STEP \(worse than the previous run\); changed since: the source of experiment fit", out), out
    with pytest.raises(ConfigError, match="formerly must be a tuple of the names it had before"):
        Experiment("mine", lambda run: None, metrics={"acc": "higher"}, formerly=("mine",))


TIMED = textwrap.dedent('''
    import trainguard

    STATED = {1: 5.0, 2: 1.0, 3: 3.0, 4: 2.0}  # epoch 1's warm-up, then three epochs


    @trainguard.experiment(metrics={"mse": "lower"}, budgets=(4,), variants={"stated": {"state": True},
                                                                            "between": {"state": False}})
    def timed(run):
        for epoch in range(1, run.budget + 1):
            run.epoch(mse=1.0 / epoch)
            if run.settings["state"]:
                run.epoch_time(STATED[epoch])
''')


def test_speed_times_each_epoch_leaving_epoch_1_out_and_a_function_may_state_its_epochs_times(project):
    """An epoch's seconds are the time between the function's reports, or what it states (``run.epoch_time``: a
    function that reports after the fact); the speed check's number is their median over the runs, epoch 1 of each
    left out (warm-up), as the models' speed is measured. Stated times make it exact here; interval times are only
    counted (timing them would be a timed assertion)."""
    from trainguard.checks.experiment_night import variant_speed

    (project / "timed.py").write_text(TIMED)
    experiment = load_experiment("timed.py:timed")
    stated, between = train(experiment, "stated", 0, 4), train(experiment, "between", 0, 4)
    assert stated.epoch_seconds == [5.0, 1.0, 3.0, 2.0] and len(between.epoch_seconds) == 4
    for record in (stated, between):
        record.trained_here = True
    speed = variant_speed(experiment, {("stated", 0): stated, ("between", 0): between})
    assert speed["stated"]["epoch_seconds"] == 2.0 and speed["stated"]["epochs"] == 3  # 1, 3, 2: epoch 1's 5 left out
    assert speed["between"]["epochs"] == 3
    kept = type(stated).from_json(stated.to_json(), project / "x.json")
    assert kept.epoch_seconds == stated.epoch_seconds
    stated.epoch_seconds = []  # a record written before epoch times were kept: its seconds over its epochs
    assert "epoch_seconds" not in stated.to_json()
    stated.seconds = 8.0
    assert variant_speed(experiment, {("stated", 0): stated})["stated"]["epoch_seconds"] == 2.0  # 8 s / 4 epochs


def test_a_stack_keeps_only_stated_epoch_times_and_a_misplaced_or_bad_time_is_refused(project):
    """A stack reports its seeds' epochs one after another, so the intervals between its reports are not epochs: a
    stacked run keeps epoch times only where its function stated every one. ``run.epoch_time`` before any epoch, or
    with a time that is not a finite number of seconds, is an error naming the experiment."""
    import dataclasses

    from trainguard.runs.experiment_runs import train_together

    (project / "timed.py").write_text(TIMED)
    experiment = load_experiment("timed.py:timed")
    stack = dataclasses.replace(experiment, train_stacked=lambda runs: [experiment.train(run) for run in runs])
    assert [r.epoch_seconds for r in train_together(stack, "stated", [0, 1], 4)] == [[5.0, 1.0, 3.0, 2.0]] * 2
    assert [r.epoch_seconds for r in train_together(stack, "between", [0, 1], 4)] == [[], []]
    run = Run(experiment, "between", 0, 4)
    with pytest.raises(ConfigError, match="run.epoch_time\\(...\\) before any run.epoch"):
        run.epoch_time(1.0)
    run.epoch(mse=1.0)
    for bad in (float("nan"), -1.0, "2"):
        with pytest.raises(ConfigError, match="expected a finite number of seconds"):
            run.epoch_time(bad)


def test_trainguard_ledger_shows_a_guard_s_nights_by_the_experiment_s_name(project, capsys):
    """`trainguard ledger --profile NAME` (own-training.md): where NAME is no profile but the experiment whose `guard …
    check --ledger` nights the ledger holds, its nights — variants where a profile's models stand — in the class
    they were recorded in; a name with no nights is still an unknown profile."""
    ledger = str(project / "ledger.sqlite")
    assert cli.main(["guard", "regression.py:regression", "baseline"]) == 0
    assert cli.main(["guard", "regression.py:regression", "check", "--ledger", ledger]) == 0
    capsys.readouterr()
    assert cli.main(["ledger", "--ledger", ledger, "--profile", "regression"]) == 0
    out = capsys.readouterr().out
    assert "experiment regression on cpu (nights of `trainguard guard … check --ledger`)" in out
    assert all(cell in out for cell in ("small-2", "small-3", "large-2", "large-3")) and "mse" in out and "slope" in out
    assert cli.main(["ledger", "--ledger", ledger, "--profile", "regression", "--plots", str(project / "p")]) == 2
    assert "its trend charts are the dashboard's" in capsys.readouterr().err
    assert cli.main(["ledger", "--ledger", ledger, "--profile", "nothing-here"]) == 2
    assert "unknown profile 'nothing-here'" in capsys.readouterr().err


def test_the_data_a_function_describes_is_said_beside_its_numbers_in_the_report(project):
    """``run.describe_data(text)``: which copy and which split the numbers were measured on, in words; the report
    prints it above the measured table (once, however many runs said it). Fingerprints say whether the data changed,
    not what it is; without a description the report says nothing of it, and the record is written as before."""
    described = SGD.replace("    run.inputs(x=x, y=y)\n",
                            "    run.inputs(x=x, y=y)\n"
                            "    run.describe_data('64 points on [-1, 1],\\n  the   first 64 of 64')\n")
    assert described != SGD
    (project / "regression.py").write_text(described)
    target = "regression.py:regression"
    assert cli.main(["guard", target, "baseline"]) == 0
    assert cli.main(["guard", target, "check", "--report", "night.md"]) == 0
    report = (project / "night.md").read_text()
    assert report.count("Data: 64 points on [-1, 1], the first 64 of 64") == 1, report
    record = next((project / ".trainguard" / "experiments").rglob("seed100-*.json")).read_text()
    assert '"data_note": "64 points on [-1, 1], the first 64 of 64"' in record
    (project / "regression.py").write_text(SGD)
    assert "data_note" not in train(_load(project), "small", 0, 2).to_json()
    run = Run(_load(project), "small", 0, 2)
    with pytest.raises(ConfigError, match="run.describe_data\\(3\\): expected text"):
        run.describe_data(3)
