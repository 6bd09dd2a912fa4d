"""A night in stages (trainguard.night.plan): the plan knows every run before anything trains, the executor delivers
them, and the judge never trains — a run the executor did not deliver is a failed "missing run" check."""

from pathlib import Path

import pytest

from trainguard.stores import data
from trainguard.engines import engine
from trainguard.runs import training
from trainguard.api import run_profile
from trainguard.checks import CheckSession
from trainguard.night.execute import LocalExecutor
from trainguard.night.plan import plan_night
from trainguard.runs.matrix import Matrix
from trainguard.runs.options import Options
from trainguard.core.spec import load_profile


def _options(tmp_path, smoke_runs, results=None):
    return Options(load_profile("smoke"), device="cpu", baselines_dir=smoke_runs.copy_baseline(tmp_path / "b").parent,
                   results_dir=results or tmp_path / "empty-results", run_log=None, replay=False, figures=False)


@pytest.fixture
def no_training(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the judge started a training run")

    monkeypatch.setattr(engine, "train", refuse)
    monkeypatch.setattr(training, "train_one", refuse)
    monkeypatch.setattr(training, "train_stack", refuse)
    monkeypatch.setattr(training, "train_runs", refuse)


def test_the_plan_lists_every_run_before_anything_trains(tmp_path, smoke_runs, no_training):
    session = CheckSession(Matrix(_options(tmp_path, smoke_runs), printer=lambda s: None))
    plan = plan_night(session)
    assert [(r.model, r.seed) for r in plan.runs] == [(m, 100) for m in ("Baseline1", "Baseline2", "NewModel1", "NewModel2")]
    assert all(r.spec.epochs == 3 for r in plan.runs) and plan.experiments == () and plan.goldens == ()
    assert plan.describe() == "the night of smoke: 4 run(s) (Baseline1, Baseline2, NewModel1, NewModel2 × seeds 100)"


def test_judging_an_empty_store_gives_missing_run_failures_never_training(tmp_path, smoke_runs,
                                                                                                 no_training):
    session = CheckSession(Matrix(_options(tmp_path, smoke_runs), printer=lambda s: None))
    verdicts = session.verdicts()
    runs = [v for v in verdicts if v.check == "run"]
    assert runs and not any(v.passed for v in verdicts if v.check == "run")
    assert {v.model for v in runs} == {"Baseline1", "Baseline2", "NewModel1", "NewModel2"}
    assert all("no stored result" in v.message for v in runs)


def test_the_matrix_only_reads_and_keeps_nothing_it_found_missing(tmp_path, smoke_runs, no_training):
    """The plugin judges case by case: judging trains nothing and keeps no "missing" run, so the case's execute
    stage (night.execute.execute_case, through runs.training.deliver) delivers it afterwards."""
    session = CheckSession(Matrix(_options(tmp_path, smoke_runs), printer=lambda s: None))
    kind = session.kind("baseline")
    case = next(c for c in kind.cases(session.profile) if c.id == "Baseline1-3")
    verdicts = session.judge(kind, case).verdicts
    assert [v.check for v in verdicts] == ["run"] and "no stored result" in verdicts[0].message
    assert ("Baseline1", 100) not in session.matrix.histories
    assert not hasattr(session.matrix, "allow_training")  # no switch to forget: reading is all a Matrix does


def test_the_replay_kind_judges_only_what_the_execute_stage_replayed(tmp_path, smoke_runs, no_training, monkeypatch):
    """The replay is a check kind like the others: judging it reads the execute stage's replays and never replays."""
    from trainguard.replay import golden_runs

    def refuse(*args, **kwargs):
        raise AssertionError("the judge replayed a golden run")

    monkeypatch.setattr(golden_runs, "trace", refuse)
    monkeypatch.setattr(golden_runs, "replay_inputs", refuse)
    options = _options(tmp_path, smoke_runs)
    options.replay, options.baselines_dir = True, Path(__file__).resolve().parent.parent / "baselines"  # the goldens
    session = CheckSession(Matrix(options, printer=lambda s: None))
    kind = session.kind("replay")
    judged = {case.id: session.judge(kind, case) for case in kind.cases(session.profile)}
    assert list(judged) == ["inputs", "Baseline1", "Baseline2", "NewModel1", "NewModel2"]
    assert all(not v.passed and "not replayed in this night's execute stage" in v.message
               for j in judged.values() for v in j.verdicts)
    assert all(v.flagged for j in judged.values() for v in j.verdicts)  # not strict: flagged, not failing


class NothingDelivered:
    """An executor that delivers no run (a cluster that lost them all)."""

    def __init__(self):
        self.plans = []

    def prepare(self):
        pass

    def execute(self, plan, session):
        self.plans.append(plan)


def test_a_night_whose_executor_delivers_nothing_fails_with_missing_runs_and_trains_nothing(tmp_path, smoke_runs,
                                                                                            no_training):
    executor = NothingDelivered()
    summary = run_profile(_options(tmp_path, smoke_runs), printer=lambda s: None, executor=executor)
    assert len(executor.plans) == 1 and len(executor.plans[0].runs) == 4
    assert summary.result == "FAIL" and all("no stored result" in v.message for v in summary.failed if v.check == "run")


def test_the_local_executor_delivers_every_planned_run_and_the_night_passes(tmp_path, smoke_runs):
    class Recording(LocalExecutor):
        def execute(self, plan, session):
            super().execute(plan, session)
            self.delivered = sorted(session.matrix.histories)

    executor = Recording(lambda s: None)
    options = _options(tmp_path, smoke_runs, results=smoke_runs.copy(tmp_path / "results"))
    summary = run_profile(options, printer=lambda s: None, executor=executor)
    assert summary.result == "PASS"
    assert executor.delivered == [(m, 100) for m in ("Baseline1", "Baseline2", "NewModel1", "NewModel2")]


@pytest.mark.parametrize("strict", [True, False])
def test_a_changed_replay_fails_a_strict_night_before_its_runs_and_is_flagged_otherwise(tmp_path, smoke_runs, strict):
    """The replay kind through a whole night: the committed smoke goldens with the inputs fingerprint of the train
    split altered (as if the data pipeline had changed). Strict (CI=true): the night fails on it, said before the
    first run is executed; otherwise the same verdict is flagged and the night passes."""
    import json
    import shutil

    baselines = tmp_path / "baselines"
    shutil.copytree(Path(__file__).resolve().parent.parent / "baselines" / "smoke", baselines / "smoke")
    inputs = baselines / "smoke" / "golden-cpu" / "inputs.json"
    recorded = json.loads(inputs.read_text())
    recorded["splits"]["cifar10 train"]["sha256"] = "0" * 64
    inputs.write_text(json.dumps(recorded))
    options = Options(load_profile("smoke"), device="cpu", baselines_dir=baselines, strict=strict, run_log=None,
                      results_dir=smoke_runs.copy(tmp_path / "results"), figures=False)
    said = []
    summary = run_profile(options, printer=said.append)
    replayed = next(i for i, line in enumerate(said) if "replay inputs: changed: cifar10 train" in line)
    assert replayed < next(i for i, line in enumerate(said) if "Baseline1 seed 100" in line)  # before the runs
    if strict:
        assert summary.result == "FAIL" and [v.subject for v in summary.failed] == ["inputs"]
    else:
        assert summary.result == "PASS" and [(f.subject, f.status) for f in summary.flags] == [("inputs", "flagged")]
