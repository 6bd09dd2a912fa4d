"""A profile's own experiments (``experiments = ["regression.py:regression"]``, trainguard.checks.declared_experiments)
guarded by the night itself: measured by `trainguard baselines update`, checked by `trainguard run` and the pytest
plugin through the same plan → execute → judge → record stages as the models, in the same report and JUnit; a
change to the experiment's code is compared with the baseline measured before it (a regression fails the night)."""

import re
import sys
import textwrap
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from trainguard import cli

from test_experiment_contract import stacked_by_loop

SMOKE = (Path(__file__).parent.parent / "harness" / "profiles" / "smoke.toml").read_text()

EXPERIMENT = textwrap.dedent('''
    import numpy as np
    import trainguard

    LR = 0.05


    @trainguard.experiment(metrics={"mse": "lower"}, budgets=(2, 3), baseline_seeds=(0, 1, 2, 3), check_seeds=(100,),
                           variants={"small": {"batch": 4}, "large": {"batch": 16}},
                           claims=(trainguard.Claim("more epochs help", "mse", better="small@3", than="small@2"),))
    def regression(run):
        rng = np.random.default_rng(run.seed)
        x = np.linspace(-1, 1, 64)
        y = 3.0 * x + 0.5 + 0.1 * rng.standard_normal(64)
        w = b = 0.0
        for epoch in range(run.budget):
            for index in np.array_split(rng.permutation(64), 64 // run.settings["batch"]):
                error = w * x[index] + b - y[index]
                w, b = w - LR * float(np.mean(error * x[index])), b - LR * float(np.mean(error))
                run.step(loss=float(np.mean(error ** 2)))
            run.epoch(mse=float(np.mean((w * x + b - y) ** 2)))
''')


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    (tmp_path / "regression.py").write_text(EXPERIMENT)
    profile = SMOKE.replace('name = "smoke"', 'name = "mine"').replace(
        'models = ["Baseline1", "Baseline2", "NewModel1", "NewModel2"]', 'models = ["Baseline1"]').replace(
        'checks = ["baseline"]', 'checks = ["baseline"]\nexperiments = ["regression.py:regression"]')
    (tmp_path / "mine.toml").write_text(profile)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _dirs(project):
    return ["--profile", str(project / "mine.toml"), "--baselines-dir", str(project / "baselines"), "--results-dir",
            str(project / "results"), "--device", "cpu", "--threads", "1", "--no-replay", "--no-figures"]


def test_a_profile_s_experiment_is_measured_checked_reported_and_a_regression_fails_the_night(project, capsys):
    assert cli.main(["baselines", "update", *_dirs(project), "--skip-golden"]) == 0
    assert "experiment regression: 8 baseline run(s)" in capsys.readouterr().out
    assert len(list((project / "baselines" / "mine" / "experiments").rglob("seed*.json"))) == 8
    assert cli.main(["run", *_dirs(project), "--report", str(project / "r" / "report.md"),
                     "--junit-xml", str(project / "junit.xml")]) == 0
    out = capsys.readouterr().out
    assert "11 passed, 0 failed" in out  # Baseline1's 6 band checks, the experiment's 4 bands and its claim
    report = (project / "r" / "report.md").read_text()
    assert "## Your experiments" in report and "### regression" in report and "more epochs help" in report
    checked = re.search(r"regression small-2 mse: (\S+) within", report).group(1)  # the night's mean (one seed)
    assert re.search(rf"\| small +\| 100 +\| {re.escape(checked)} +\|", report), report  # what the run measured
    cases = {(c.get("classname").rsplit(".", 1)[-1], c.get("name")) for c in ET.parse(project / "junit.xml").iter("testcase")}
    assert ("experiment", "regression-small-2 mse") in cases and ("experiment_claim", "regression: more epochs help") in cases
    # the experiment's code changes: a tenth of the learning rate. The night compares it with the baseline measured
    # before the change (not with a baseline of its own code, which would absorb any regression)
    (project / "regression.py").write_text(EXPERIMENT.replace("LR = 0.05", "LR = 0.005"))
    for name in [m for m in sys.modules if m.startswith("_trainguard_experiment_")]:  # a new process would import it
        sys.modules.pop(name)                                                         # afresh
    assert cli.main(["run", *_dirs(project), "--report", str(project / "r2" / "report.md")]) == 1
    report = (project / "r2" / "report.md").read_text()
    assert "REGRESSION" in report and "the baseline was measured on other code" in report


def test_without_a_baseline_the_experiment_is_skipped_naming_the_command_and_strict_fails(project, capsys,
                                                                                          monkeypatch):
    assert cli.main(["run", *_dirs(project)]) in (0, 5)
    assert "no baseline in" in capsys.readouterr().out
    monkeypatch.setenv("CI", "true")
    assert cli.main(["run", *_dirs(project)]) == 1
    assert "trainguard baselines update --profile" in capsys.readouterr().out


def test_a_malformed_experiments_entry_is_one_sentence_naming_the_profile(tmp_path):
    from trainguard.core.spec import ConfigError, load_profile

    path = tmp_path / "bad.toml"
    path.write_text(SMOKE.replace('checks = ["baseline"]', 'checks = ["baseline"]\nexperiments = ["regression.py"]'))
    with pytest.raises(ConfigError, match=r"bad.toml: experiments entry 'regression.py': expected FILE.py:NAME"):
        load_profile(str(path))


def test_the_plugin_parametrizes_one_case_per_experiment_variant_and_budget_and_judges_each(pytester, preloaded,
                                                                                         monkeypatch):
    """A user's test file: `trainguard_case` over the profile's kinds; an experiment's cases are named after it, each
    variant and budget (its bands there), and its claims."""
    monkeypatch.delenv("CI", raising=False)
    (pytester.path / "regression.py").write_text(EXPERIMENT)
    (pytester.path / "mine.toml").write_text(SMOKE.replace('name = "smoke"', 'name = "mine"').replace(
        'models = ["Baseline1", "Baseline2", "NewModel1", "NewModel2"]', 'models = ["Baseline1"]').replace(
        'checks = ["baseline"]', 'checks = []\nexperiments = ["regression.py:regression"]'))
    pytester.makepyfile(test_mine=textwrap.dedent('''
        import pytest

        @pytest.mark.trainguard_kinds("experiments")
        def test_experiment(trainguard_case):
            trainguard_case.check()
    '''))
    args = ["--tg-profile", "mine.toml", "--tg-baselines-dir", "baselines", "--tg-results-dir", "results",
            "--tg-no-replay", "--tg-no-figures", "-p", "no:cacheprovider", "-v"]
    pytester.runpytest_inprocess(*args, "--tg-update-baselines").assert_outcomes(passed=5)
    for name in [m for m in sys.modules if m.startswith("_trainguard_experiment_")]:
        sys.modules.pop(name)
    result = pytester.runpytest_inprocess(*args)
    result.assert_outcomes(passed=5)
    result.stdout.fnmatch_lines(["*test_experiment?regression-small-2? PASSED*", "*test_experiment?regression-small-3? "
                                 "PASSED*", "*test_experiment?regression-large-2? PASSED*",
                                 "*test_experiment?regression-large-3? PASSED*", "*test_experiment?regression-claims? "
                                 "PASSED*"])


def test_a_test_function_takes_one_experiment_s_cases_named_without_it(pytester, preloaded, monkeypatch):
    """`@pytest.mark.trainguard_experiment("regression")` keeps that experiment's cases and names them by variant and
    budget alone ([small-2], [claims]; its replay [replay]); a name the profile does not declare leaves one skipped
    case saying so."""
    monkeypatch.delenv("CI", raising=False)
    (pytester.path / "regression.py").write_text(EXPERIMENT)
    (pytester.path / "mine.toml").write_text('name = "mine"\nexperiments = ["regression.py:regression"]\n')
    pytester.makepyfile(test_mine=textwrap.dedent('''
        import pytest

        @pytest.mark.trainguard_kinds("experiments")
        @pytest.mark.trainguard_experiment("regression")
        def test_cell_within_baseline(trainguard_case):
            trainguard_case.check()

        @pytest.mark.trainguard_kinds("experiment_replay")
        @pytest.mark.trainguard_experiment("regression")
        def test_golden(trainguard_case):
            trainguard_case.check()

        @pytest.mark.trainguard_kinds("experiments")
        @pytest.mark.trainguard_experiment("elsewhere")
        def test_other(trainguard_case):
            trainguard_case.check()
    '''))
    args = ["--tg-profile", "mine.toml", "--tg-device", "cpu", "--tg-threads", "1", "--tg-no-figures",
            "-p", "no:cacheprovider", "-v"]
    pytester.runpytest_inprocess(*args, "--tg-update-baselines").assert_outcomes(passed=6, skipped=1)
    for name in [m for m in sys.modules if m.startswith("_trainguard_experiment_")]:
        sys.modules.pop(name)
    result = pytester.runpytest_inprocess(*args)
    result.assert_outcomes(passed=6, skipped=1)
    result.stdout.fnmatch_lines(["*test_cell_within_baseline?small-2? PASSED*", "*test_cell_within_baseline?large-3? "
                                 "PASSED*", "*test_cell_within_baseline?claims? PASSED*", "*test_golden?replay? PASSED*",
                                 "*test_other?none? SKIPPED*"])


def test_one_test_function_takes_the_models_cells_and_an_experiment_s_under_the_same_ids(pytester, preloaded):
    """`trainguard_kinds("baseline", "experiments")` with `trainguard_experiment("regression")`: the models' cells keep
    their ids ([Baseline1-2]) and the experiment's are named alike ([small-2], [claims]), in one test function."""
    (pytester.path / "regression.py").write_text(EXPERIMENT)
    (pytester.path / "mine.toml").write_text(SMOKE.replace('name = "smoke"', 'name = "mine"').replace(
        'models = ["Baseline1", "Baseline2", "NewModel1", "NewModel2"]', 'models = ["Baseline1"]').replace(
        'checks = ["baseline"]', 'checks = ["baseline"]\nexperiments = ["regression.py:regression"]'))
    pytester.makepyfile(test_mine=textwrap.dedent('''
        import pytest

        @pytest.mark.trainguard_kinds("baseline", "experiments")
        @pytest.mark.trainguard_experiment("regression")
        def test_cell_within_baseline(trainguard_case):
            trainguard_case.check()
    '''))
    result = pytester.runpytest_inprocess("--tg-profile", "mine.toml", "--collect-only", "-q", "-p", "no:cacheprovider")
    ids = [line.split("[", 1)[1].rstrip("]") for line in result.stdout.lines if "::test_cell_within_baseline[" in line]
    assert ids == ["Baseline1-2", "Baseline1-3", "small-2", "small-3", "large-2", "large-3", "claims"], ids


def test_a_check_seed_whose_function_raises_fails_the_night_with_its_message(project, capsys):
    assert cli.main(["baselines", "update", *_dirs(project), "--skip-golden"]) == 0
    (project / "regression.py").write_text(EXPERIMENT.replace(
        "    rng = np.random.default_rng(run.seed)\n",
        "    rng = np.random.default_rng(run.seed)\n    if run.seed == 100:\n        raise ValueError('seed 100 broke')\n"))
    for name in [m for m in sys.modules if m.startswith("_trainguard_experiment_")]:
        sys.modules.pop(name)
    assert cli.main(["run", *_dirs(project), "--report", str(project / "r" / "report.md")]) == 1
    report = (project / "r" / "report.md").read_text()
    assert "seed 100 did not complete: ValueError: seed 100 broke" in report


def test_the_night_replays_a_declared_experiment_s_golden_runs_and_flags_a_change(project, capsys, monkeypatch):
    """`baselines update` writes each variant's golden run (beside the experiment's baseline); the night replays them
    before anything trains, as it replays the models': identical passes; a one-line change that stays within the bands is *flagged* (the night passes),
    and fails a strict night."""
    dirs = [a for a in _dirs(project) if a != "--no-replay"]
    assert cli.main(["baselines", "update", *dirs]) == 0
    out = capsys.readouterr().out
    assert "regression small: golden of" in out and "regression large: golden of" in out
    assert cli.main(["run", *dirs, "--report", str(project / "r" / "report.md")]) == 0
    out = capsys.readouterr().out
    assert out.index("replaying the golden runs of experiment regression") < out.index(": training ")
    report = (project / "r" / "report.md").read_text()
    assert "regression small: identical to the golden run" in report
    (project / "regression.py").write_text(EXPERIMENT.replace("LR = 0.05", "LR = 0.0501"))
    for name in [m for m in sys.modules if m.startswith("_trainguard_experiment_")]:
        sys.modules.pop(name)
    assert cli.main(["run", *dirs, "--report", str(project / "r2" / "report.md")]) == 0  # flagged, not failing
    report = (project / "r2" / "report.md").read_text()
    assert "regression small: changed at step 2 (loss)" in report  # the loss of step 1 is before its update
    monkeypatch.setenv("CI", "true")
    assert cli.main(["run", *dirs, "--report", str(project / "r3" / "report.md")]) == 1


def test_an_undelivered_experiment_fails_its_case_instead_of_training(project):
    """The judge only reads: a declared experiment whose check seeds' runs the execute stage did not deliver fails
    its case, saying so, and nothing trains."""
    import dataclasses

    from trainguard.checks import CheckSession
    from trainguard.checks.declared_experiments import experiment
    from trainguard.core.registry import load
    from trainguard.core.spec import load_profile
    from trainguard.runs.matrix import Matrix
    from trainguard.runs.options import Options

    assert cli.main(["baselines", "update", *_dirs(project), "--skip-golden"]) == 0  # its baseline seeds, measured
    options = Options(load_profile(str(project / "mine.toml")), device="cpu", threads=1, replay=False, figures=False,
                      baselines_dir=project / "baselines", results_dir=project / "empty-results", run_log=None)
    matrix = Matrix(options, printer=lambda _: None)
    try:
        session, kind = CheckSession(matrix), load("experiments")
        cases = kind.cases(session.profile)
        case = cases[0]

        def refuse(run):
            raise AssertionError("the judge started a training run")

        found = experiment(session, case.params[0])
        session.declared_experiments[case.params[0]] = dataclasses.replace(found, train=refuse)
        judged = [session.judge(kind, c).verdicts for c in cases]
    finally:
        matrix.close()
    assert [c.id for c in cases] == ["regression-small-2", "regression-small-3", "regression-large-2",
                                     "regression-large-3", "regression-claims"]
    for verdicts in judged:  # every case of it fails, saying so
        assert verdicts and all(not v.passed for v in verdicts)
        assert any("were not delivered by the execute stage" in v.message for v in verdicts), [v.message for v in verdicts]


def test_a_re_render_reads_the_experiment_s_runs_from_the_cache_or_says_why_it_cannot(project, capsys):
    """`trainguard report` trains nothing: the declared experiment's check seeds' runs come from the result cache the
    night filled; with another (empty) cache and only a run log (which holds the models' runs), it is skipped with
    why, never trained and never failed."""
    assert cli.main(["baselines", "update", *_dirs(project), "--skip-golden"]) == 0
    assert cli.main(["run", *_dirs(project), "--report", str(project / "r" / "report.md"),
                     "--run-log", str(project / "runlog.jsonl")]) == 0
    capsys.readouterr()
    assert cli.main(["report", *_dirs(project), "--report", str(project / "again" / "report.md")]) == 0
    again = (project / "again" / "report.md").read_text()
    assert "PASS regression: more epochs help" in again and "| small     | 100" in again
    empty = [*_dirs(project)]
    empty[empty.index("--results-dir") + 1] = str(project / "no-results")
    assert cli.main(["report", *empty, "--from-log", str(project / "runlog.jsonl"),
                     "--report", str(project / "log" / "report.md")]) == 0
    rendered = (project / "log" / "report.md").read_text()
    assert "its check seeds' runs are not in the result cache" in rendered and "more epochs help" not in rendered


def test_a_profile_s_experiment_goes_to_the_ledger_and_a_step_between_nights_is_drift(project, capsys):
    """The night records its declared experiments' values in the ledger (beside its models' cells); the next night
    compares them with the previous one against the baseline's seed noise: a step is flagged as drift, naming the
    experiment, its variant, budget and metric, and which way is worse by the metric's declared direction."""
    from trainguard.stores.ledger import open_ledger

    ledger = f"sqlite:///{project / 'ledger.sqlite'}"
    assert cli.main(["baselines", "update", *_dirs(project), "--skip-golden"]) == 0
    assert cli.main(["run", *_dirs(project), "--ledger", ledger, "--report", str(project / "r" / "report.md")]) == 0
    [night] = open_ledger(ledger).read("mine", "cpu")
    assert set(night["experiments"]["regression"]) == {"small", "large"}
    assert set(night["experiments"]["regression"]["small"]["2"]["mse"]) == {"100"}
    # its speed beside the models': the variants' runs were trained (timed) tonight
    assert night["speed"]["regression small"]["trained"] and night["speed"]["regression small"]["epoch_seconds"] > 0
    # `trainguard ledger` lists them after the models' table, one table per experiment (its metrics are its own)
    capsys.readouterr()
    assert cli.main(["ledger", "--profile", str(project / "mine.toml"), "--ledger", ledger]) == 0
    listed = capsys.readouterr().out
    mse = sum(night["experiments"]["regression"]["small"]["2"]["mse"].values())
    assert "experiment regression:" in listed and re.search(rf"\| small-2 +\| {round(mse, 4)} +\| [\d.]+ +\|", listed), listed
    # a tenth of the learning rate: a worse mse at every cell, far beyond the baseline's seed noise
    (project / "regression.py").write_text(EXPERIMENT.replace("LR = 0.05", "LR = 0.005"))
    for name in [m for m in sys.modules if m.startswith("_trainguard_experiment_")]:
        sys.modules.pop(name)
    capsys.readouterr()
    cli.main(["run", *_dirs(project), "--ledger", ledger, "--report", str(project / "r2" / "report.md")])
    report = (project / "r2" / "report.md").read_text()
    assert re.search(r"regression small-2 mse: .*STEP \(worse than the previous run\)", report), report[-4000:]
    # the likely cause named: the experiment's own source (the checkout's commit and the data did not change)
    assert re.search(r"regression small-2 mse: .*STEP .*changed since: the source of experiment regression "
                     r"\([0-9a-f]{12} → [0-9a-f]{12}\)", report), report[-4000:]
    assert len(open_ledger(ledger).read("mine", "cpu")) == 2
    # a night whose runs all come from the cache times nothing: their seconds are another night's
    assert cli.main(["run", *_dirs(project), "--ledger", ledger, "--report", str(project / "r3" / "report.md")]) in (0, 1)
    assert open_ledger(ledger).read("mine", "cpu")[-1]["speed"]["regression small"] == {"trained": False}


def test_the_dashboard_charts_a_profile_s_experiment_over_its_nights_with_its_band(project, page):
    """Each declared experiment's cells get trend charts beside the models' (each metric it recorded, the night's
    mean, the band its night checked shaded), loaded in the distribution's Chromium without a console error."""
    from trainguard.stores.ledger import open_ledger

    ledger = f"sqlite:///{project / 'ledger.sqlite'}"
    assert cli.main(["baselines", "update", *_dirs(project), "--skip-golden"]) == 0
    for night in range(2):
        assert cli.main(["run", *_dirs(project), "--ledger", ledger, "--report", str(project / f"r{night}.md")]) == 0
    bands = open_ledger(ledger).read("mine", "cpu")[-1]["experiment_bands"]["regression"]
    assert set(bands) == {"mse"} and set(bands["mse"]) == {"small-2", "small-3", "large-2", "large-3"}
    assert cli.main(["dashboard", "--out", str(project / "site"), "--ledger", ledger]) == 0
    page.goto((project / "site" / "index.html").as_uri())
    page.wait_for_function("document.querySelectorAll('.trend .main-svg').length > 0")
    charts = page.evaluate("""() => Array.from(document.querySelectorAll('.trend')).map((el) => ({
        title: el.layout.title.text, y: el.layout.yaxis.title.text, traces: el.data.length,
        values: el.data[el.data.length - 1].y}))""")
    mine = {c["title"]: c for c in charts if c["title"].startswith("regression: ")}
    assert set(mine) == {"regression: small-2 — mse", "regression: small-3 — mse", "regression: large-2 — mse",
                         "regression: large-3 — mse"}
    small = mine["regression: small-3 — mse"]
    assert small["y"] == "mse" and small["traces"] == 3  # the band's two edges, then the nights
    assert len(small["values"]) == 2 and small["values"][0] == small["values"][1]  # the same code, cached: no step
    assert page.errors == []


def test_golden_names_experiments_writes_only_the_declared_experiments_golden_runs(project, capsys):
    """`baselines update --golden --names experiments`: the declared experiments' golden runs, not the models'."""
    dirs = [a for a in _dirs(project) if a != "--no-replay"]
    assert cli.main(["baselines", "update", *dirs, "--golden", "--names", "experiments"]) == 0
    out = capsys.readouterr().out
    assert "regression small: golden of" in out and "regression large: golden of" in out
    golden = project / "baselines" / "mine" / "experiments" / "regression" / "golden"
    assert sorted(p.name for p in golden.iterdir()) == ["large.json", "small.json"]
    assert not list((project / "baselines" / "mine").glob("golden-cpu/*.json"))  # the models' goldens: untouched
    assert cli.main(["baselines", "update", *dirs, "--golden", "--names", "nope"]) == 2
    assert "(and inputs, experiments)" in capsys.readouterr().err


def test_skip_models_measures_only_the_declared_experiments(project, capsys):
    """`baselines update --skip-models`: the experiments' baseline (and golden) runs, nothing of the models'."""
    dirs = [a for a in _dirs(project) if a != "--no-replay"]
    assert cli.main(["baselines", "update", *dirs, "--skip-models"]) == 0
    out = capsys.readouterr().out
    assert "experiment regression: 8 baseline run(s)" in out and "regression small: golden of" in out
    assert not (project / "baselines" / "mine" / "cpu.csv").exists()
    assert not list((project / "baselines" / "mine").glob("golden-cpu/*.json"))


def test_a_target_named_otherwise_than_its_experiment_shows_its_verdicts_under_the_experiment_s_name(project):
    """`experiments = ["pkg.mod:torch"]` names a module attribute; the report's section and its verdicts go by the
    experiment's own name (the report's MNIST plug-in: target NAME `torch`, experiment `mnist-overfit-torch`)."""
    (project / "regression.py").write_text(EXPERIMENT + "\nalias = regression\n")
    profile = (project / "mine.toml").read_text().replace('"regression.py:regression"', '"regression.py:alias"')
    (project / "mine.toml").write_text(profile)
    assert cli.main(["baselines", "update", *_dirs(project), "--skip-golden"]) == 0
    assert cli.main(["run", *_dirs(project), "--report", str(project / "r" / "report.md")]) == 0
    report = (project / "r" / "report.md").read_text()
    section = report[report.index("## Your experiments"):report.index("## Trend")]
    assert "### regression" in section and "not checked" not in section
    assert re.search(r"\| small +\| mse +\| \S+ +\| \S+ … \S+ +\| [+-]\S+ +\| \S+ +\| pass +\|", section), section  # its bands as checked


def test_stack_seeds_trains_a_declared_experiment_s_seeds_at_once_with_a_baseline_of_their_own(project, capsys):
    """--stack-seeds in a profile's night: an experiment that offers train_stacked trains each variant's seeds in one
    call, its runs and baseline apart (experiments/stacked/); one that offers none trains seed by seed, noted."""
    calls = project / "calls.txt"
    (project / "regression.py").write_text(EXPERIMENT + stacked_by_loop(calls))
    stacked = [*_dirs(project), "--stack-seeds"]
    assert cli.main(["baselines", "update", *stacked, "--skip-models", "--skip-golden"]) == 0
    assert calls.read_text().splitlines() == ["0,1,2,3", "0,1,2,3"]  # one call per variant
    assert len(list((project / "baselines" / "mine" / "experiments" / "stacked").rglob("seed*.json"))) == 8
    assert not list((project / "baselines" / "mine" / "experiments" / "regression").rglob("seed*.json"))
    capsys.readouterr()
    cli.main(["run", *stacked, "--report", str(project / "r" / "report.md")])
    assert calls.read_text().splitlines()[-2:] == ["100", "100"]
    report = (project / "r" / "report.md").read_text()
    assert re.search(r"\| small +\| mse +\| \S+ +\| \S+ … \S+ +\| [+-]\S+ +\| \S+ +\| pass +\|", report) and "no baseline in" not in report
    # without train_stacked: seed by seed, its ordinary baseline, and the notes say why
    (project / "regression.py").write_text(EXPERIMENT)
    for name in [m for m in sys.modules if m.startswith("_trainguard_experiment_")]:
        sys.modules.pop(name)
    assert cli.main(["baselines", "update", *_dirs(project), "--skip-models", "--skip-golden"]) == 0
    cli.main(["run", *stacked, "--report", str(project / "r2" / "report.md")])
    report = (project / "r2" / "report.md").read_text()
    assert "offers no train_stacked: --stack-seeds trains its runs one seed at a time" in report
    assert re.search(r"\| small +\| mse +\| \S+ +\| \S+ … \S+ +\| [+-]\S+ +\| \S+ +\| pass +\|", report)


def test_a_night_at_an_arithmetic_the_experiment_does_not_honour_skips_it_saying_why(project, capsys):
    """`run --precision bf16`: the declared experiment trains in fp32 only (it declares no precisions), so its cases
    are skipped naming why, not trained in fp32 and kept or checked as bf16."""
    assert cli.main(["baselines", "update", *_dirs(project), "--skip-models", "--skip-golden", "--precision",
                     "bf16"]) == 0
    assert "experiment regression skipped: experiment 'regression' declares precisions ['fp32']" in \
        capsys.readouterr().out
    assert not list((project / "baselines").rglob("seed*.json"))
    cli.main(["run", *_dirs(project), "--precision", "bf16", "--report", str(project / "r" / "report.md")])
    report = (project / "r" / "report.md").read_text()
    assert "declares precisions ['fp32']: it would train bf16 as fp32" in report
    assert not list((project / "results").rglob("seed*.json"))


def test_a_reference_with_seeds_of_its_own_is_delivered_by_the_execute_stage_and_judged_on_their_mean(project,
                                                                                                      capsys):
    """In a profile's night: the reference's seed that is no baseline seed is trained by the execute stage beside
    the check seeds (into the result cache), its baseline seed read from the baseline; the bands read the check
    seed alone."""
    (project / "regression.py").write_text(EXPERIMENT.replace(
        'than="small@2"),))', 'than="small@2"),),\n'
        '                       references=(trainguard.Reference("a paper", {"small@3": {"mse": 0.01}},\n'
        '                                                        tolerances={"mse": 1.0}, seeds=(0, 7)),))'))
    assert cli.main(["baselines", "update", *_dirs(project), "--skip-models", "--skip-golden"]) == 0
    capsys.readouterr()
    cli.main(["run", *_dirs(project), "--report", str(project / "r" / "report.md")])  # Baseline1: no baseline
    assert "regression small seed 7: training" in capsys.readouterr().out
    assert list((project / "results" / "experiments" / "regression" / "small").glob("seed7-*.json"))
    report = (project / "r" / "report.md").read_text()
    assert "PASS regression: a paper: small@3 mse: this night" in report and "(mean of seeds [0, 7])" in report
    assert "| small | 7" not in report.replace("  ", " ")  # the seeds table is the check seeds'


def test_a_profile_s_experiment_is_logged_to_mlflow_beside_the_models(project):
    """--mlflow on a profile's night: the declared experiment's checked statistics are metrics of the night's run
    (NAME/VARIANT-BUDGET.METRIC, the mean over its check seeds) beside the models', its variants' speed too."""
    pytest.importorskip("mlflow", reason="the dev extra installs mlflow-skinny")
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{project / 'mlflow.db'}"
    assert cli.main(["baselines", "update", *_dirs(project), "--skip-golden"]) == 0
    assert cli.main(["run", *_dirs(project), "--mlflow", uri, "--report", str(project / "r" / "report.md")]) == 0
    client = MlflowClient(tracking_uri=uri)
    (run,) = client.search_runs([client.get_experiment_by_name("trainguard-mine-cpu").experiment_id])
    assert {"regression/small-2.mse", "regression/large-3.mse", "Baseline1-2.test_acc"} <= set(run.data.metrics)
    assert run.data.metrics["regression small.epoch_seconds"] > 0


def test_a_renamed_experiment_s_drift_compares_with_its_nights_under_the_former_name(project, capsys):
    """A profile's experiment renamed (``name="fit", formerly=("regression",)``) and changed in one commit: the next
    night compares it with the previous night's cells under the old name, and the step names the rename."""
    ledger = f"sqlite:///{project / 'ledger.sqlite'}"
    assert cli.main(["baselines", "update", *_dirs(project), "--skip-golden"]) == 0
    assert cli.main(["run", *_dirs(project), "--ledger", ledger, "--report", str(project / "r" / "report.md")]) == 0
    (project / "regression.py").write_text(EXPERIMENT.replace("LR = 0.05", "LR = 0.005").replace(
        "@trainguard.experiment(", '@trainguard.experiment(name="fit", formerly=("regression",), '))
    for name in [m for m in sys.modules if m.startswith("_trainguard_experiment_")]:
        sys.modules.pop(name)
    assert cli.main(["baselines", "update", *_dirs(project), "--skip-golden", "--skip-models"]) == 0
    capsys.readouterr()
    cli.main(["run", *_dirs(project), "--ledger", ledger, "--report", str(project / "r2" / "report.md")])
    report = (project / "r2" / "report.md").read_text()
    assert re.search(r"fit small-2 mse: .*STEP \(worse than the previous run\); changed since: experiment regression "
                     r"renamed fit; the source of experiment fit", report), report[-3000:]


def test_a_profile_of_experiments_alone_names_no_models_data_or_budgets(tmp_path, monkeypatch, capsys):
    """`name` and `experiments` make a profile: no models, data set, budgets or seeds of its own (each experiment
    declares them). Its night measures, replays and checks the experiment; its report's header names no data set and
    no seeds (the experiment's section does), and its training time counts the experiment's runs."""
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "regression.py").write_text(EXPERIMENT)
    (tmp_path / "mine.toml").write_text('name = "mine"\nexperiments = ["regression.py:regression"]\n')
    common = ["--profile", "mine.toml", "--device", "cpu", "--threads", "1", "--no-figures"]
    assert cli.main(["baselines", "update", *common]) == 0
    assert cli.main(["run", *common, "--no-result-cache", "--report", "r/report.md"]) == 0
    out = capsys.readouterr().out
    assert "7 passed, 0 failed" in out  # 4 bands, 1 claim, 2 golden replays
    report = (tmp_path / "r" / "report.md").read_text()
    header = report[:report.index("## Checks")]
    assert "| data " not in header and "| seeds " not in header and "test split" not in header
    assert re.search(r"\| training time +\| [0-9.]+ s in 2 experiment run\(s\) trained by this process", header)
    assert "regression large: identical to the golden run" in report
    assert "that experiment's variant, budget and metric" in report  # the statistics say whose seeds the bands use
    # the profile's other commands: the replay replays the experiment's goldens, the calibration reads its baseline
    assert cli.main(["replay", *common[:6]]) == 0
    assert "IDENTICAL  regression small" in capsys.readouterr().out
    assert cli.main(["baselines", "calibrate", *common[:6]]) == 0
    assert "- regression: leave-1-out over its 4 baseline seeds" in capsys.readouterr().out
    assert cli.main(["selftest", *common, "--report", "r/selftest.md"]) == 1  # it declares no faults: proves nothing
    assert "nothing was injected" in capsys.readouterr().out
    # --seeds checks other held-out seeds of its experiments, as of a profile's models; a baseline seed is refused
    assert cli.main(["run", *common, "--seeds", "300", "--report", "r/300.md"]) == 0
    assert "regression small seed 300: training" in capsys.readouterr().out
    assert cli.main(["run", *common, "--seeds", "1", "--report", "r/1.md"]) == 2
    assert "--seeds: seed(s) 1 are in experiment regression's baseline_seeds" in capsys.readouterr().err
    assert cli.main(["ledger", *common[:2], "--plots", str(tmp_path / "trends")]) == 0  # its nights, no model trends
    assert "experiment regression:" in (out := capsys.readouterr().out) and "no trend plots: profile mine" in out
    assert cli.main(["data", "export", *common[:2], str(tmp_path / "export")]) == 2
    err = capsys.readouterr().err
    assert "trains no models: it has no data set of its own to export" in err and "cifar-models-ci" in err
    log = tmp_path / "models-runlog.jsonl"  # a models' run log is no input of a profile without models: said, not 0 checks
    log.write_text("")
    for command in (["report", *common[:2], "--from-log", str(log)],
                    ["baselines", "calibrate", *common[:2], "--from-log", str(log)],
                    ["baselines", "update", *common[:2], "--from-log", str(log)]):
        assert cli.main(command) == 2, command
        assert "--from-log: profile mine trains no models" in capsys.readouterr().err


def test_the_dashboard_shows_a_declared_experiment_s_golden_replays_and_says_when_no_memory_was_recorded(tmp_path,
                                                                                                         monkeypatch,
                                                                                                         page):
    """The night record keeps each declared experiment's golden replay beside the models' ("NAME VARIANT"), so the
    dashboard's replay table shows it; a speed chart with nothing recorded (a function that reports no memory) is a
    sentence, not an empty chart."""
    from trainguard.stores.ledger import open_ledger

    monkeypatch.delenv("CI", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "regression.py").write_text(EXPERIMENT)
    (tmp_path / "mine.toml").write_text('name = "mine"\nexperiments = ["regression.py:regression"]\n')
    ledger, common = f"sqlite:///{tmp_path / 'ledger.sqlite'}", ["--profile", "mine.toml", "--device", "cpu",
                                                                   "--threads", "1", "--no-figures"]
    assert cli.main(["baselines", "update", *common]) == 0
    assert cli.main(["run", *common, "--ledger", ledger]) == 0
    (night,) = open_ledger(ledger).read("mine", "cpu")
    assert night["replay"]["regression small"]["status"] == "identical", night["replay"]
    assert cli.main(["dashboard", "--out", str(tmp_path / "site"), "--ledger", ledger]) == 0
    page.goto((tmp_path / "site" / "index.html").as_uri())
    page.wait_for_function("document.querySelectorAll('.trend .main-svg').length > 0")
    assert page.evaluate("() => Array.from(document.querySelectorAll('table.replay th')).map((e) => e.textContent)") \
        == ["night", "regression large", "regression small"]
    assert page.evaluate("() => document.querySelector('.speed.empty').textContent") == \
        "No peak memory (MiB) recorded in these nights."
    assert page.errors == []


def test_a_profile_with_neither_models_nor_experiments_is_refused_naming_its_file(tmp_path):
    from trainguard.core.errors import ConfigError
    from trainguard.core.spec import load_profile

    (tmp_path / "empty.toml").write_text('name = "empty"\ndataset = "synthetic"\nbudgets = [1]\nmodels = []\n')
    with pytest.raises(ConfigError, match=r"empty.toml: 'models' is empty and no 'experiments' are declared"):
        load_profile(str(tmp_path / "empty.toml"))
