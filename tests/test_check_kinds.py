"""A check kind added from outside trainguard: one class, one registration, no file of trainguard edited.

The kind here ("the final train loss is finite and below a stored maximum") lives in a user's conftest.py
(pytest) or is registered in this process (the library): the plugin parametrizes it, the one judging policy
judges it (pass, fail, a missing reference skipped or, under strict, failed), and the report renders its
verdicts and its own section (a ``Part``).
"""

import textwrap

import pytest

from trainguard.core import registry
from trainguard.checks import enabled_kinds
from trainguard.core.spec import ConfigError, load_profile

KIND = textwrap.dedent('''
    import json
    import math
    from pathlib import Path

    from trainguard.checks import Case, CheckKind, Part, Reference, register
    from trainguard.core.compare import Verdict


    class FinalLosses(Part):
        """The kind's own report section: every checked run's final train loss."""

        def __init__(self, losses):
            self.losses = losses

        def sections(self, summary, path, figures):
            rows = [f"| {model} | {seed} | {loss:.4f} |" for (model, seed), loss in sorted(self.losses.items())]
            return ["\\n".join(["## Final train losses", "", "| model | seed | loss |", "| --- | --- | --- |", *rows, ""])]


    @register
    class FinalLossFinite(CheckKind):
        name = "final_loss_finite"
        reference_policy = "stored"  # a maximum measured once, in baselines/<profile>/final-loss.json

        def cases(self, profile):
            return [Case(self.name, model, model, (model,)) for model in profile.models]

        def runs(self, session, case):
            return [(case.params[0], session.profile.max_epochs, seed) for seed in session.seeds]

        def reference(self, session, case):
            path = Path(session.matrix.options.baselines_dir) / session.profile.name / "final-loss.json"
            if not path.exists():
                return Reference(missing=f"no {path}: write the maximum final train loss there")
            return Reference(json.loads(path.read_text()))

        def verdicts(self, session, case, reference):
            model = case.params[0]
            losses = [session.matrix.history(model, seed).epochs[-1].train_loss for seed in session.seeds]
            worst = max(losses)
            ok = all(math.isfinite(x) for x in losses) and worst <= reference["max"]
            return [Verdict(self.name, f"{model} final loss", ok,
                            f"{model}: final train loss {worst:.4f}, allowed at most {reference['max']}",
                            model=model, measured=worst, expected=reference["max"])]

        def summary_part(self, session):
            return FinalLosses({(m, s): session.matrix.history(m, s).epochs[-1].train_loss
                                for m in session.profile.models for s in session.seeds})
''')

PROFILE = textwrap.dedent('''
    name = "mine"
    dataset = "synthetic"
    train_per_class = 10
    test_images = 50
    budgets = [1, 2]
    models = ["Baseline1", "NewModel1"]
    check_seeds = [100]
    baseline_seeds = [0, 1]
    checks = ["final_loss_finite"]

    [training]
    optimizer = "adam"
    lr = 0.001
    batch_size = 16
    eval_batch_size = 50

    [golden]
    enabled = false
''')

TEST = textwrap.dedent('''
    def test_every_check(trainguard_case):
        trainguard_case.check()
''')


@pytest.fixture
def project(pytester, preloaded):
    pytester.makeconftest(KIND)
    pytester.makepyfile(test_mine=TEST)
    (pytester.path / "mine.toml").write_text(PROFILE)
    (pytester.path / "baselines" / "mine").mkdir(parents=True)
    return pytester


def _run(project, *args):
    # in this process (no second torch import); the conftest's @register goes into the registry the test
    # snapshots (see the test), so nothing outlives it
    return project.runpytest_inprocess("--tg-profile", "mine.toml", "--tg-baselines-dir", "baselines",
                                        "--tg-results-dir", "results", "-p", "no:cacheprovider", "-rs", "--tg-no-figures",
                                        *args)


def _maximum(project, value: float) -> None:
    (project.path / "baselines" / "mine" / "final-loss.json").write_text(f'{{"max": {value}}}')


def test_a_kind_from_a_conftest_is_parametrized_judged_and_reported(project, monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setattr(registry, "_registered", {**registry._registered})  # undone after the test
    monkeypatch.setattr(registry, "_loaded", {**registry._loaded})
    missing = _run(project, "-v")
    missing.assert_outcomes(skipped=2)  # no reference, not strict: skipped, with the reason
    missing.stdout.fnmatch_lines(["*test_every_check?final_loss_finite-Baseline1? SKIPPED*",
                                  "*no *final-loss.json: write the maximum final train loss there*"])
    assert missing.ret == 5  # a run that compared nothing is not a pass

    strict = _run(project, "--tg-strict")
    strict.assert_outcomes(failed=2)
    strict.stdout.fnmatch_lines(["*final-loss.json: write the maximum*strict: CI=true or --tg-strict*"])

    _maximum(project, 100.0)
    passing = _run(project)
    passing.assert_outcomes(passed=2)
    report = (project.path / "reports" / "report.md").read_text()
    assert "Result: PASS" in report and "Baseline1 final loss" in report and "allowed at most 100.0" in report
    assert "## Final train losses" in report and "| NewModel1 | 100 |" in report  # the kind's own part

    _maximum(project, 1e-6)
    failing = _run(project)
    failing.assert_outcomes(failed=2)
    failing.stdout.fnmatch_lines(["*NewModel1: final train loss *, allowed at most 1e-06*"])
    assert "**FAIL**" in (project.path / "reports" / "report.md").read_text()


def test_a_kind_registered_in_the_process_goes_through_the_night(tmp_path, monkeypatch):
    """The library: the CLI's run_profile judges and renders a kind registered from code (as an entry point would)."""
    from trainguard.report import markdown as report
    from trainguard.api import run_profile
    from trainguard.runs.options import Options

    monkeypatch.setattr(registry, "_registered", {**registry._registered})  # undone after the test
    monkeypatch.setattr(registry, "_loaded", {**registry._loaded})
    exec(compile(KIND, "mine_kind.py", "exec"), {})  # what a user's module does on import: @register
    (tmp_path / "mine.toml").write_text(PROFILE)
    profile = load_profile(str(tmp_path / "mine.toml"))
    (tmp_path / "baselines" / "mine").mkdir(parents=True)
    (tmp_path / "baselines" / "mine" / "final-loss.json").write_text('{"max": 1e-6}')
    summary = run_profile(Options(profile, device="cpu", baselines_dir=tmp_path / "baselines",
                                  results_dir=tmp_path / "results", run_log=None), printer=lambda line: None)
    assert [v.check for v in summary.verdicts] == ["final_loss_finite"] * 2
    assert summary.result == "FAIL" and summary.exit_code == 1
    text = report.write_report(summary, tmp_path / "report.md").read_text()
    assert "allowed at most 1e-06" in text
    assert list(summary.parts) == ["final_loss_finite"]  # the synthetic profile enables no other kind
    losses = text.split("## Final train losses", 1)[1]
    assert f"| Baseline1 | 100 | {summary.parts['final_loss_finite'].losses[('Baseline1', 100)]:.4f} |" in losses


def test_an_unknown_kind_is_a_clear_error(tmp_path):
    (tmp_path / "mine.toml").write_text(PROFILE)
    with pytest.raises(ConfigError, match="unknown check 'final_loss_finite'.*trainguard.checks.register"):
        load_profile(str(tmp_path / "mine.toml"))


def test_built_in_names_cannot_be_taken():
    class Impostor:
        name = "baseline"

    with pytest.raises(ValueError, match="one of trainguard's own kinds"):
        registry.register(Impostor)


def test_the_built_in_kinds_of_each_shipped_profile():
    names = {p: [k.name for k in enabled_kinds(load_profile(p))] for p in ("smoke", "ci", "seed", "gpu-timing")}
    assert names["smoke"] == ["replay", "baseline"]
    assert names["ci"] == ["experiments", "experiment_replay"]  # the report's two experiments, as plug-ins
    from trainguard.experiments import cifar_models

    comparison = [k.name for k in enabled_kinds(load_profile(str(cifar_models.SETTINGS)))]  # the plug-in's settings
    assert comparison == ["replay", "baseline", "ranking", "budget_improves"]
    assert names["gpu-timing"] == []  # timing only: no check kind


def test_a_kind_from_an_installed_package_s_entry_point(tmp_path, monkeypatch):
    """The third way in: a package that declares ``[project.entry-points."trainguard.checks"]`` (here its
    installed metadata, written by hand) is found by name, imported only when loaded."""
    dist = tmp_path / "mykinds-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: mykinds\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[trainguard.checks]\nfrom_entry_point = mykinds:FromEntryPoint\n")
    (tmp_path / "mykinds.py").write_text("class FromEntryPoint:\n    name = 'from_entry_point'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry, "_loaded", {**registry._loaded})
    registry.refresh()
    try:
        assert "from_entry_point" in registry.names()
        assert type(registry.load("from_entry_point")).__name__ == "FromEntryPoint"
    finally:
        monkeypatch.undo()
        registry.refresh()
    assert "from_entry_point" not in registry.names()  # and gone again with the package
