"""The self-test on any experiment (trainguard.audit.experiment_selftest): the faults an experiment declares,
injected one at a time through its own settings, and which instrument caught each — on the NumPy regression of
test_experiment_contract, so nothing here needs a deep-learning framework."""

import sys
import textwrap

import pytest

from trainguard import cli
from trainguard.core.errors import ConfigError
from trainguard.core.experiment import Experiment, Fault, load_experiment

from test_experiment_contract import SGD

FAULTY = textwrap.dedent('''
    import numpy as np
    import trainguard

    LR = 0.05


    @trainguard.experiment(metrics={"mse": "lower", "slope": "higher"}, budgets=(2, 3), replay_budget=2,
                           variants={"small": {"batch": 4}, "large": {"batch": 16}},
                           claims=(trainguard.Claim("small batches learn faster", "slope", better="small@2",
                                                    than="large@2"),),
                           faults=(trainguard.Fault("lr-tenth", "a tenth of the learning rate", {"lr": 0.005}),
                                   trainguard.Fault("large-lr-half", "the large batches at half the rate",
                                                    {"lr": 0.025}, variants=("large",)),
                                   trainguard.Fault("ignored", "a setting the function never reads", {"unused": 1})))
    def regression(run):
        rng = np.random.default_rng(run.seed)
        x = np.linspace(-1, 1, 64)
        y = 3.0 * x + 0.5 + 0.1 * np.random.default_rng(7).standard_normal(64)
        run.inputs(x=x, y=y)
        w = b = 0.0
        batch, lr = run.settings["batch"], run.settings.get("lr", LR)
        for epoch in range(run.budget):
            order = rng.permutation(64)
            for index in [order[i:i + batch] for i in range(0, 64, batch)]:
                error = w * x[index] + b - y[index]
                w -= lr * 2 * float(np.mean(error * x[index]))
                b -= lr * 2 * float(np.mean(error))
                run.step(loss=float(np.mean(error ** 2)))
            run.epoch(mse=float(np.mean((w * x + b - y) ** 2)), slope=w)
''')


@pytest.fixture
def project(tmp_path, monkeypatch):
    (tmp_path / "regression.py").write_text(FAULTY)
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    for name in [m for m in sys.modules if m.startswith("_trainguard_experiment_")]:
        sys.modules.pop(name)


def test_the_faults_are_declared_with_the_experiment(project):
    experiment = load_experiment("regression.py:regression")
    assert [f.name for f in experiment.faults] == ["lr-tenth", "large-lr-half", "ignored"]


def test_each_fault_is_caught_by_the_instrument_that_sees_it_and_a_fault_that_changes_nothing_is_missed(project,
                                                                                                       capsys):
    target = "regression.py:regression"
    assert cli.main(["guard", target, "selftest"]) == 5  # no golden, no baseline: nothing ...
    capsys.readouterr()
    assert cli.main(["guard", target, "replay", "--update"]) == 0
    assert cli.main(["guard", target, "baseline"]) == 0
    capsys.readouterr()
    assert cli.main(["guard", target, "selftest", "--report", "selftest.md"]) == 1  # "ignored" is missed
    out = capsys.readouterr().out
    assert "caught: regression lr-tenth (a tenth of the learning rate) replay: small: changed at step 2 (loss); " \
           "large: changed at step 2 (loss)" in out
    # only the named variant trained under it: small's replay is not even run
    assert "caught: regression large-lr-half (the large batches at half the rate) replay: large: changed at step 2 (loss)" in out
    assert "MISSED: regression ignored (a setting the function never reads) replay: small: identical; large: identical; " \
           "bands and claims: 0 of 9: missed" in out
    assert "2 of 3 fault(s) measured were caught" in out
    lines = {line.split(" | ")[1]: line for line in (project / "selftest.md").read_text().splitlines()
             if line.startswith("| regression |")}
    assert set(lines) == {"lr-tenth", "large-lr-half", "ignored"} and "| MISSED |" in lines["ignored"]
    # a tenth of the rate is far outside every mse band after 2 and 3 epochs
    assert "8 of 9: small-2-mse, small-2-slope" in lines["lr-tenth"]


def test_replay_only_trains_no_check_seeds_and_faults_can_be_chosen_by_name(project, capsys):
    target = "regression.py:regression"
    assert cli.main(["guard", target, "replay", "--update"]) == 0
    capsys.readouterr()
    assert cli.main(["guard", target, "selftest", "--replay-only", "--faults", "lr-tenth"]) == 0
    out = capsys.readouterr().out
    assert "bands and claims: not measured" in out and "1 of 1 fault(s) measured were caught" in out
    assert not list(project.glob(".trainguard/experiments/regression/*/seed100-*"))  # no check seed trained
    assert cli.main(["guard", target, "selftest", "--replay-only", "--faults", "nosuch"]) == 2
    assert "no fault named nosuch; it declares lr-tenth, large-lr-half, ignored" in capsys.readouterr().err


def test_an_experiment_without_faults_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "regression.py").write_text(SGD)
    assert cli.main(["guard", "regression.py:regression", "selftest"]) == 5
    assert "declares no faults" in capsys.readouterr().out
    for name in [m for m in sys.modules if m.startswith("_trainguard_experiment_")]:
        sys.modules.pop(name)


@pytest.mark.parametrize("faults, said", [
    ((Fault("x", "", {"a": 1}, variants=("nosuch",)),), "each fault must be a trainguard.Fault whose variants"),
    (({"a": 1},), "each fault must be a trainguard.Fault"),
    ((Fault("x", "", {"a": 1}), Fault("x", "", {"a": 2})), "two faults share a name"),
])
def test_a_malformed_fault_is_one_sentence(faults, said):
    with pytest.raises(ConfigError, match=said):
        Experiment("mine", lambda run: None, metrics={"acc": "higher"}, faults=faults)


def test_a_profile_s_self_test_injects_its_declared_experiments_faults(tmp_path, monkeypatch, capsys):
    """`trainguard selftest --profile mine`: a declared experiment's faults beside the models' injections, judged
    at the profile's own per-check false-alarm rate; --skip-models injects only them."""
    from test_declared_experiments import SMOKE

    monkeypatch.delenv("CI", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "regression.py").write_text(FAULTY)
    (tmp_path / "mine.toml").write_text(SMOKE.replace('name = "smoke"', 'name = "mine"').replace(
        'models = ["Baseline1", "Baseline2", "NewModel1", "NewModel2"]', 'models = ["Baseline1"]').replace(
        'checks = ["baseline"]', 'checks = ["baseline"]\nexperiments = ["regression.py:regression"]'))
    dirs = ["--profile", str(tmp_path / "mine.toml"), "--baselines-dir", str(tmp_path / "baselines"),
            "--results-dir", str(tmp_path / "results"), "--device", "cpu", "--threads", "1", "--no-figures"]
    assert cli.main(["baselines", "update", *dirs, "--skip-models"]) == 0
    capsys.readouterr()
    assert cli.main(["selftest", *dirs, "--skip-models", "--report", str(tmp_path / "selftest.md")]) == 1
    out = capsys.readouterr().out
    assert "caught: regression lr-tenth (a tenth of the learning rate) replay: small: changed at step 2 (loss)" in out
    assert "MISSED: regression ignored (a setting the function never reads) replay:" in out
    assert "2 of 3 injected regressions caught" in out
    report = (tmp_path / "selftest.md").read_text()
    assert "## Declared experiments' faults" in report and "2 of 3 declared fault(s) measured were caught" in report
    assert cli.main(["selftest", *dirs, "--skip-models", "--skip-experiments"]) == 1  # nothing injected: not a pass
    for name in [m for m in sys.modules if m.startswith("_trainguard_experiment_")]:
        sys.modules.pop(name)
