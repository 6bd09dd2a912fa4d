"""Between nights: the history store, drift and speed verdicts on stored histories, JUnit XML, job summary."""

import math
import shutil
from pathlib import Path
from xml.etree import ElementTree

import numpy as np
import pytest

from trainguard import cli
from trainguard.core import stats
from trainguard.checks import trend
from trainguard.stores.ledger import HistoryStore, open_ledger
from trainguard.core.spec import ConfigError

ROOT = Path(__file__).resolve().parent.parent


def entry(test_acc=(50.0, 52.0), seconds=1.0, hardware="cpu X, 2 cores", lr=0.01, torch="2.14.1", log_se=0.01,
          time="2026-11-20T02:17:00+00:00"):
    return {"profile": "ci", "device_class": "cpu", "hardware": hardware, "commit": "abc", "time": time,
            "versions": {"torch": torch}, "data": "d1", "training": {"NewModel1": {"lr": lr}}, "seeds": [100, 101],
            "window": 3, "result": "PASS", "failed": [],
            "cells": {"NewModel1": {"20": {"test_acc": {"100": test_acc[0], "101": test_acc[1]}}}},
            "speed": {"NewModel1": {"trained": True, "epochs": 38, "epoch_seconds": seconds,
                                    "images_per_second": 10000 / seconds, "log_se": log_se, "peak_memory_mb": 900.0}},
            "experiments": {}}


class Table:
    """The slice of a BaselineTable the drift check reads: 8 baseline seeds with std 1 point."""

    def has(self, metric):
        return True

    def values(self, model, budget, metric, window):
        return [50.0, 51.0, 52.0, 49.0, 51.5, 50.5, 49.5, 52.5]

    def resolution(self, metric):
        return 0.1


# ---------------------------------------------------------------------------------------------- store

def test_history_store_appends_and_reads_back(tmp_path):
    store = HistoryStore(tmp_path)
    store.append(entry(time="2026-11-20T02:17:00+00:00"))
    path = store.append(entry(time="2026-11-21T02:17:00+00:00"))
    assert path == tmp_path / "ci" / "cpu.jsonl"
    runs = store.read("ci", "cpu")
    assert [r["time"][:10] for r in runs] == ["2026-11-20", "2026-11-21"]
    assert store.read("ci", "cuda") == [] and store.profiles() == [("ci", "cpu")]


def test_a_damaged_history_line_is_named(tmp_path):
    store = HistoryStore(tmp_path)
    store.append(entry())
    with open(store.path("ci", "cpu"), "a") as handle:
        handle.write('{"format_version": 1, "profile": "ci", "cut off\n')
    store.append(entry())
    with pytest.raises(ConfigError, match=r"ledger .*cpu\.jsonl, line 2: not JSON .*the file is damaged — delete or repair that line"):
        store.read("ci", "cpu")
    store.path("ci", "cpu").write_text('{"format_version": 99}\n')
    with pytest.raises(ConfigError, match="line 1: not a format 1 ledger entry"):
        store.read("ci", "cpu")


# ---------------------------------------------------------------------------------------------- drift

def test_no_drift_between_identical_runs_and_a_step_names_its_cause():
    verdicts, _ = trend.drift_verdicts(entry(), entry(), Table(), {}, 0.01, 0.9)
    assert len(verdicts) == 1 and verdicts[0].passed and verdicts[0].check == "drift"
    band = stats.drift_band(Table().values(0, 0, 0, 0), 51.0, 2, 2, 0.01, 0.1, 0.9)
    assert verdicts[0].allowed == pytest.approx(band.halfwidth) and verdicts[0].mde == pytest.approx(band.mde)
    stepped = entry(test_acc=(51.0 - band.halfwidth - 1, 51.0 - band.halfwidth - 1), lr=0.005)
    [verdict], _ = trend.drift_verdicts(entry(), stepped, Table(), {}, 0.01, 0.9)
    assert not verdict.passed
    assert "STEP (worse than the previous run)" in verdict.message and "training config lr 0.01 → 0.005" in verdict.message
    inside = entry(test_acc=(51.0 - band.halfwidth + 0.2,) * 2, torch="2.15.0")
    [verdict], _ = trend.drift_verdicts(entry(), inside, Table(), {}, 0.01, 0.9)
    assert verdict.passed


def test_drift_needs_an_earlier_run_and_a_baseline():
    assert trend.drift_verdicts(None, entry(), Table(), {}, 0.01, 0.9)[0] == []
    verdicts, notes = trend.drift_verdicts(entry(), entry(), None, {}, 0.01, 0.9)
    assert verdicts == [] and "no baseline" in notes[0]


def test_drift_band_false_alarm_rate_in_simulation():
    """Two clean nights of k seeds each, the band from n baseline seeds: fails at rate alpha (Monte Carlo)."""
    rng = np.random.default_rng(1)
    alpha, trials, n, k = 0.05, 20000, 8, 2
    base = rng.normal(size=(trials, n))
    before, now = rng.normal(size=(trials, k)).mean(axis=1), rng.normal(size=(trials, k)).mean(axis=1)
    half = stats.t_critical(alpha, n) * base.std(axis=1, ddof=1) * stats.scale(k, k)
    assert np.mean(np.abs(now - before) > half) == pytest.approx(alpha, abs=0.006)
    band = stats.drift_band(list(rng.normal(size=n)), 0.0, k, k, alpha)
    assert band.halfwidth == pytest.approx(band.t_crit * band.std * math.sqrt(2 / k))


# ---------------------------------------------------------------------------------------------- speed

def test_speed_flags_a_slowdown_beyond_between_night_noise_only():
    earlier = [entry(seconds=s) for s in (1.00, 1.03, 0.98)]
    [clean], _ = trend.speed_verdicts(earlier, entry(seconds=1.02), 0.01)
    assert clean.passed and clean.check == "speed"
    slow_night = entry(seconds=2.0)
    [slow], _ = trend.speed_verdicts(earlier, slow_night, 0.01)
    assert not slow.passed and "SLOWDOWN" in slow.message and "1.99× the typical 1.003 s" in slow.message
    assert slow_night["speed"]["NewModel1"]["slowdown"]  # recorded: the next night leaves it out of its reference
    [after], _ = trend.speed_verdicts([*earlier, slow_night], entry(seconds=1.01), 0.01)
    assert after.passed and "of 3 earlier runs" in after.message


def test_speed_compares_only_the_same_hardware_and_needs_three_runs():
    earlier = [entry(seconds=1.0), entry(seconds=1.0), entry(seconds=0.5, hardware="another CPU, 16 cores")]
    verdicts, notes = trend.speed_verdicts(earlier, entry(seconds=2.0), 0.01)
    assert verdicts == [] and "2 of 3 earlier timed runs" in notes[0]
    cached = entry()
    cached["speed"] = {"NewModel1": {"trained": False}}
    assert trend.speed_verdicts(earlier * 2, cached, 0.01)[0] == []


def test_slowdown_bound_false_alarm_rate_in_simulation():
    rng = np.random.default_rng(2)
    alpha, trials, m = 0.05, 4000, 5
    hits = 0
    for _ in range(trials):
        reference, tonight = rng.normal(0, 0.05, size=m), rng.normal(0, 0.05)
        bound, _ = stats.slowdown_bound(list(reference), 0.0, alpha)
        hits += tonight > bound
    assert hits / trials == pytest.approx(alpha, abs=0.012)


# ---------------------------------------------------------------------------------------------- CLI outputs

@pytest.fixture
def smoke_args(tmp_path, smoke_runs):
    """The smoke profile with its committed baselines and goldens (replayed), and the check seed's runs copied
    into the cache: two nights are two real `trainguard run`s that train nothing (the ledger is what is tested)."""
    baselines = tmp_path / "baselines"
    shutil.copytree(ROOT / "baselines" / "smoke", baselines / "smoke")
    shutil.copy(ROOT / "baselines" / "published.csv", baselines)
    return ["--profile", "smoke", "--device", "cpu", "--baselines-dir", str(baselines),
            "--results-dir", str(smoke_runs.copy(tmp_path / "results")),
            "--run-log", str(tmp_path / "runlog.jsonl"), "--ledger-dir", str(tmp_path / "history")]


@pytest.mark.slow  # over 7 s here: in the slow suite (CI runs it), the fast one stays under 3 minutes
@pytest.mark.generated  # generated data: isolated from the user's data, cache and CI=true as a fast test is
def test_runs_append_history_and_the_report_shows_the_trend(tmp_path, smoke_args, monkeypatch, capsys):
    summary_file = tmp_path / "step-summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary_file))
    for night in range(2):
        assert cli.main(["run", *smoke_args, "--report", str(tmp_path / f"n{night}" / "report.md"),
                         "--junit-xml", str(tmp_path / f"n{night}" / "junit.xml")]) == 0
    nights = open_ledger(tmp_path / "history" / "ledger.sqlite").nights("smoke", "cpu")
    assert len(nights) == 2
    stored = open_ledger(tmp_path / "history" / "ledger.sqlite").artifacts(nights[-1][0])  # the night's report too
    assert stored["report.md"] == (tmp_path / "n1" / "report.md").read_bytes()
    assert "report-trend-NewModel2.png" in stored
    report = (tmp_path / "n1" / "report.md").read_text()
    assert "## Trend" in report and "Drift — each cell against the previous run" in report
    assert (tmp_path / "n1" / "report-trend-NewModel2.png").exists()
    suite = ElementTree.parse(tmp_path / "n1" / "junit.xml").getroot()
    assert suite.get("name") == "trainguard.smoke" and suite.get("failures") == "0" and int(suite.get("tests")) >= 24
    assert summary_file.read_text().count("## trainguard smoke: PASS") == 2
    capsys.readouterr()
    assert cli.main(["ledger", *smoke_args, "--plots", str(tmp_path / "plots")]) == 0
    out = capsys.readouterr().out
    assert out.count("| NewModel2-3 ") == 2 and (tmp_path / "plots" / "trend-Baseline1.png").exists()


def test_junit_xml_marks_failures_and_unfailing_flags():
    from trainguard.api import RunSummary
    from trainguard.core.compare import Verdict
    from trainguard.report.markdown import junit_xml
    from trainguard.core.spec import load_profile

    failed = Verdict("baseline", "NewModel2-20", False, "NewModel2-20 Test Accuracy: ... REGRESSION", metric="test_acc")
    flag = Verdict("speed", "NewModel2 speed", False, "NewModel2 speed: 2.00× ... SLOWDOWN")
    summary = RunSummary(profile=load_profile("ci"), verdicts=[failed], environment={}, rows_by_budget={},
                         statistics={}, notes=[], flags=[flag])
    suite = ElementTree.fromstring(junit_xml(summary).split("?>", 1)[1])
    assert suite.get("failures") == "1" and suite.get("skipped") == "1"
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert cases["NewModel2-20 test_acc"].find("failure").text.endswith("REGRESSION")
    assert cases["NewModel2 speed"].find("skipped") is not None


def test_a_declared_experiment_continues_a_renamed_one_or_the_profile_s_models_it_replaces():
    """``formerly``: the previous night's cells under a former name, or — a former name that is the profile's own —
    the profile's models' cells (the plug-in that replaces them); the likely cause says which."""
    from trainguard.checks.trend import drift_checks, likely_causes

    cells = {"M": {"2": {"acc": {"100": 1.0}}}}
    now = {"profile": "p", "experiments": {"x": {"M": {"2": {"acc": {"100": 1.5}}}}}, "sources": {"x": "b" * 64}}
    models = {"profile": "p", "cells": cells}
    renamed = {"profile": "p", "experiments": {"old": cells}, "sources": {"old": "a" * 64}}
    assert drift_checks(models, now) == [] and drift_checks(renamed, now) == []  # nothing known under "x"
    assert drift_checks(models, now, {"x": ("p",)}) == [("experiment", ("x", "M"), 2, "acc", {"100": 1.0},
                                                          {"100": 1.5})]
    assert drift_checks(renamed, now, {"x": ("old",)})[0][4] == {"100": 1.0}
    assert likely_causes(models, now, experiment="x", formerly=("p",))[0] == "profile p's models now checked as experiment x"
    assert likely_causes(renamed, now, experiment="x", formerly=("old",))[:2] == [
        "experiment old renamed x", f"the source of experiment x ({'a' * 12} → {'b' * 12})"]
