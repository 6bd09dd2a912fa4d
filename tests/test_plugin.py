"""The pytest plugin end to end on the smoke profile (generated data, seconds).

Runs pytest in a subprocess inside a scratch project holding a copy of the slow test
module, as a user's checkout would.
"""

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def project(pytester):
    shutil.copy(ROOT / "tests" / "test_cifar10_matrix.py", pytester.path / "test_cifar10_matrix.py")
    (pytester.path / "baselines").mkdir()
    shutil.copy(ROOT / "baselines" / "published.csv", pytester.path / "baselines" / "published.csv")
    return pytester


def run(project, *args):
    return project.runpytest_subprocess("-m", "slow", "--profile", "smoke", "-p", "no:cacheprovider", *args)


def test_update_then_check_then_resume_from_cache(project):
    created = run(project, "--update-baselines")
    created.assert_outcomes(passed=8, skipped=6)
    created.stdout.fnmatch_lines(["*rewrote*baselines/smoke/cpu.csv*", "*new baseline with 8 cells*"])
    table = project.path / "baselines" / "smoke" / "cpu.csv"
    assert table.read_text().count("\n") == 9  # header + 4 models × 2 budgets
    assert (project.path / "baselines" / "smoke" / "cpu.meta.json").exists()

    again = run(project, "-v")
    again.assert_outcomes(passed=8, skipped=6)
    again.stdout.fnmatch_lines(["*test_cell_within_baseline?NewModel2-2? PASSED*"])
    assert "training" not in again.stdout.str()  # every run came from the result cache
    report = (project.path / "reports" / "report.md").read_text()
    assert "## 1 epochs" in report and "## 2 epochs" in report and "NewModel2" in report
    assert "Result: PASS" in report and "Synthetic data" in report


def test_missing_baseline_skips_with_the_command_that_creates_it(project):
    result = run(project, "-rs")
    result.assert_outcomes(skipped=14)
    result.stdout.fnmatch_lines(["*no baseline*smoke*--update-baselines*"])


def test_injected_regression_fails_naming_model_metric_and_tolerance(project):
    run(project, "--update-baselines").assert_outcomes(passed=8, skipped=6)
    smoke = (ROOT / "harness" / "profiles" / "smoke.toml").read_text()
    broken = project.path / "smoke-lr-div10.toml"
    broken.write_text(smoke.replace("lr = 0.01", "lr = 0.001"))
    result = project.runpytest_subprocess("-m", "slow", "--profile", str(broken), "-p", "no:cacheprovider")
    assert result.ret == 1
    out = result.stdout.str()
    assert "NewModel2-2 Train Loss: measured" in out and "baseline" in out and "allowed ±" in out
    report = (project.path / "reports" / "report.md").read_text()
    assert "Result: FAIL" in report and "REGRESSION" in report


def test_bad_options_are_usage_errors(project):
    result = project.runpytest_subprocess("--profile", "nope", "-p", "no:cacheprovider")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*unknown profile 'nope'*"])
    result = project.runpytest_subprocess("--device", "tpu", "-p", "no:cacheprovider")
    assert result.ret == 4
