"""The pytest plugin end to end on the smoke profile (generated data, seconds).

Runs pytest in a subprocess inside a scratch project holding a copy of the slow test
module, as a user's checkout would.
"""

import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def project(pytester, preloaded):
    # another basename than trainguard's own copy: pytest runs in this process may have imported that one
    shutil.copy(ROOT / "tests" / "test_cifar10_matrix.py", pytester.path / "test_project_cifar10_matrix.py")
    (pytester.path / "baselines").mkdir()
    shutil.copy(ROOT / "baselines" / "published.csv", pytester.path / "baselines" / "published.csv")
    return pytester


def run(project, *args):
    """The project's own (initially empty) baselines directory, not the ones shipped with trainguard; no figures
    (seconds per report; the figures have tests of their own). In this process: a pytest of its own, without
    paying torch's import again (the tests that need separate processes, xdist and shards, start them)."""
    return project.runpytest_inprocess("-m", "slow", "--tg-profile", "smoke", "--tg-baselines-dir", "baselines",
                                        "-p", "no:cacheprovider", "--tg-no-figures", *args)


@pytest.fixture
def cached(project, smoke_runs):
    """The project with the smoke runs already in its result cache (.trainguard/results): for tests of what
    happens after training, not of training."""
    smoke_runs.copy(project.path / ".trainguard" / "results")
    return project


@pytest.fixture
def with_baseline(cached, smoke_runs):
    """The cached project with the committed smoke baseline, instead of measuring it again."""
    smoke_runs.copy_baseline(cached.path / "baselines")
    return cached


def test_update_then_check_then_resume_from_cache(project, smoke_runs):
    smoke_runs.copy(project.path / ".trainguard" / "results", "baseline_seeds")  # the check seed still trains
    created = run(project, "--tg-update-baselines")
    created.assert_outcomes(passed=8, skipped=3)
    created.stdout.fnmatch_lines(["*rewrote*baselines/smoke/cpu.csv*", "*new baseline with 8 cells*"])
    table = project.path / "baselines" / "smoke" / "cpu.csv"
    assert table.read_text().count("\n") == 9  # header + 4 models × 2 budgets
    assert (project.path / "baselines" / "smoke" / "cpu.meta.json").exists()

    assert "training" in created.stdout.str()
    again = run(project, "-v")
    again.assert_outcomes(passed=8, skipped=3)
    again.stdout.fnmatch_lines(["*test_cell_within_baseline?NewModel2-3? PASSED*"])
    assert "training" not in again.stdout.str()  # every run came from the result cache
    report = (project.path / "reports" / "report.md").read_text()
    assert "## 2 epochs" in report and "## 3 epochs" in report and "NewModel2" in report
    assert "## Statistics" in report and "MDE" in report and "held out" in report
    assert "Result: PASS" in report and "Synthetic data" in report


def test_missing_baseline_skips_with_the_command_that_creates_it(cached, monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    result = run(cached, "-rs")
    result.assert_outcomes(skipped=11)
    result.stdout.fnmatch_lines(["*no baseline*smoke*trainguard baselines update --profile smoke*"])


def test_missing_baseline_fails_under_ci(cached, monkeypatch):
    """CI=true (or --tg-strict): a night with nothing to compare against is red, with the way out."""
    project = cached
    monkeypatch.setenv("CI", "true")
    result = run(project)
    result.assert_outcomes(failed=8, skipped=3)  # strict: every cell fails, red
    result.stdout.fnmatch_lines(["*no baseline*trainguard baselines update --profile smoke*strict: CI=true or --tg-strict*"])
    monkeypatch.delenv("CI")
    run(project, "--tg-strict").assert_outcomes(failed=8, skipped=3)


def test_a_baseline_seed_is_refused_unless_asked(with_baseline):
    project = with_baseline
    refused = run(project, "--tg-seeds", "0")
    assert refused.ret == 4
    assert "are in profile smoke's baseline_seeds" in refused.stdout.str() + refused.stderr.str()
    run(project, "--tg-seeds", "0", "--tg-allow-baseline-seeds").assert_outcomes(passed=8, skipped=3)


def test_injected_regression_fails_naming_model_metric_and_tolerance(with_baseline):
    project = with_baseline
    smoke = (ROOT / "harness" / "profiles" / "smoke.toml").read_text()
    broken = project.path / "smoke-lr-div10.toml"
    broken.write_text(smoke.replace("lr = 0.001", "lr = 0.0001"))
    result = project.runpytest_inprocess("-m", "slow", "--tg-profile", str(broken), "-p", "no:cacheprovider",
                                         "--tg-no-figures")
    assert result.ret == 1
    out = result.stdout.str()
    assert "NewModel2-3 Train Loss (mean of epochs 2–3): measured" in out and "baseline" in out and "α" in out
    report = (project.path / "reports" / "report.md").read_text()
    assert "Result: FAIL" in report and "REGRESSION" in report


@pytest.mark.parametrize("profile", ["smoke", "ci", "seed", "gpu-timing"])
def test_every_shipped_profile_collects(pytester, profile, preloaded):
    """`pytest -m slow --tg-profile P` (and so tox -e slow / gpu) collects for every shipped profile, with or
    without declared experiments."""
    for module in ("test_cifar10_matrix.py", "test_mnist_overfit.py", "test_selftest.py"):
        shutil.copy(ROOT / "tests" / module, pytester.path / f"test_project_{module.removeprefix('test_')}")
    result = pytester.runpytest_inprocess("-m", "slow", "--tg-profile", profile, "--collect-only", "-q",
                                          "-p", "no:cacheprovider")
    assert result.ret == 0, result.stdout.str() + result.stderr.str()
    # smoke has 2- and 3-epoch budgets; gpu-timing enables no check kind (timing only: `trainguard run`)
    assert "test_cell_within_baseline[NewModel2-20]" in result.stdout.str() or profile in ("smoke", "gpu-timing")
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()


def test_bad_options_are_usage_errors(project):
    result = project.runpytest_subprocess("--tg-profile", "nope", "-p", "no:cacheprovider")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*unknown profile 'nope'*"])
    result = project.runpytest_subprocess("--tg-device", "tpu", "-p", "no:cacheprovider")
    assert result.ret == 4


def _matrix_profile(project):
    """The smoke profile with every cross-model check on, as a file in the project. On generated data
    the ranking and "more epochs help" checks fail: the merge must carry failures as faithfully as passes."""
    smoke = (ROOT / "harness" / "profiles" / "smoke.toml").read_text()
    path = project.path / "smoke-all.toml"
    path.write_text(smoke.replace('checks = ["baseline"]', 'checks = ["baseline", "ranking", "budget_improves"]'))
    return str(path)


def _tables(report_path):
    """The measured tables and the checks of a report: everything but the environment and notes."""
    text = report_path.read_text()
    return text[text.index("## 2 epochs"):text.index("## Figures")]


def _outcomes(result):
    counts = result.parseoutcomes()
    return {k: counts.get(k, 0) for k in ("passed", "failed", "skipped")}


def _trained(log_path):
    from trainguard.stores.runlog import read_events

    return sorted(e["model"] for e in read_events(log_path) if e["event"] == "run_start")


@pytest.mark.slow  # out of the fast suite (its 3-minute budget); run by `pytest -m slow` in CI
@pytest.mark.generated
def test_xdist_workers_train_each_model_once_and_merge_one_report(with_baseline):
    pytest.importorskip("xdist")
    project = with_baseline
    profile = _matrix_profile(project)
    # one thread in both: the in-process run would otherwise train at whatever count this worker has
    base = ["-m", "slow", "--tg-profile", profile, "-p", "no:cacheprovider", "--tg-no-figures", "--tg-threads", "1"]
    single = project.runpytest_inprocess(*base, "--tg-report", "one/report.md", "--tg-run-log", "one.jsonl")
    spread = project.runpytest_subprocess(*base, "-n", "2", "-v", "--tg-results-dir", "fresh", "--tg-report",
                                          "two/report.md", "--tg-run-log", "two.jsonl")
    assert _outcomes(spread) == _outcomes(single) and sum(_outcomes(single).values()) == 15
    # it did run on two workers (-v prints each test's worker; without it only failures name theirs)
    assert "[gw0]" in spread.stdout.str() and "[gw1]" in spread.stdout.str()
    assert _trained(project.path / "two.jsonl") == ["Baseline1", "Baseline2", "NewModel1", "NewModel2"]
    assert _tables(project.path / "two" / "report.md") == _tables(project.path / "one" / "report.md")


def test_two_shards_merge_into_the_single_process_report(with_baseline):
    from trainguard import cli

    project = with_baseline
    profile = _matrix_profile(project)
    base = ["-m", "slow", "--tg-profile", profile, "-p", "no:cacheprovider", "--tg-no-figures"]
    project.runpytest_inprocess(*base, "--tg-report", "one/report.md", "--tg-run-log", "one.jsonl")
    for shard in (1, 2):  # each shard a pytest session of its own, as on its own host
        result = project.runpytest_inprocess(*base, "--tg-shard", f"{shard}/2", "--tg-results-dir", f"r{shard}",
                                              "--tg-run-log", f"s{shard}.jsonl", "--tg-report", f"s{shard}/report.md")
        counts = _outcomes(result)  # 2 models × (2 cells + 1 budget check); the published test has no case
        assert counts["passed"] + counts["failed"] == 6 and counts["skipped"] == 1
        assert len(set(_trained(project.path / f"s{shard}.jsonl"))) == 2
    code = cli.main(["report", "--profile", profile, "--device", "cpu", "--baselines-dir", str(project.path / "baselines"),
                     "--results-dir", str(project.path / "nothing"), "--run-log", str(project.path / "x.jsonl"),
                     "--from-log", str(project.path / "s1.jsonl"), str(project.path / "s2.jsonl"),
                     "--report", str(project.path / "merged" / "report.md")])
    assert code == 1  # the same failing checks as the single run
    assert _tables(project.path / "merged" / "report.md") == _tables(project.path / "one" / "report.md")


def test_worker_device_pinning():
    from trainguard.plugin import pin_cuda_device

    assert pin_cuda_device("gw0", "4,6") == "4" and pin_cuda_device("gw1", "4,6") == "6"
    assert pin_cuda_device("gw2", "4,6") == "4"  # more workers than devices: round-robin
    assert pin_cuda_device("gw1", None) is None and pin_cuda_device("gw1", "") is None


USER_TEST = '''
def test_my_model_night(trainguard_night):
    summary = trainguard_night("mine.toml", device="cpu")
    assert summary.result == "PASS"
'''


def test_a_user_s_own_test_runs_a_night_through_the_fixture(pytester, preloaded):
    """trainguard_night in a project of the user's: first use fails naming the command, --tg-update-baselines
    measures baseline and goldens, then it passes and writes the report; a broken model fails it. Each run is a
    pytest of its own inside this process (the user's module is imported afresh each time: pytester drops it)."""
    (pytester.path / "mynet.py").write_text(
        "from torch import nn\n\n\ndef TinyNet():\n"
        "    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),"
        " nn.Linear(16, 10))\n")
    smoke = (ROOT / "harness" / "profiles" / "smoke.toml").read_text()
    (pytester.path / "mine.toml").write_text(
        smoke.replace('name = "smoke"', 'name = "mine"').replace(
            'models = ["Baseline1", "Baseline2", "NewModel1", "NewModel2"]', 'models = ["mynet:TinyNet"]')
        + "perturbations = 1\nisa = false\n")
    pytester.makepyfile(test_mine=USER_TEST)
    pytester.syspathinsert()  # `mynet` imports from the project's directory, as under `python -m pytest` there
    first = pytester.runpytest_inprocess("-p", "no:cacheprovider", "--tg-no-figures")
    first.assert_outcomes(failed=1)
    first.stdout.fnmatch_lines(["*NOTHING CHECKED*trainguard baselines update --profile*"])
    pytester.runpytest_inprocess("-p", "no:cacheprovider", "--tg-update-baselines",
                                  "--tg-no-figures").assert_outcomes(passed=1)
    assert (pytester.path / "baselines" / "mine" / "golden-cpu" / "mynet--TinyNet.json").exists()
    again = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    again.assert_outcomes(passed=1)
    assert "Result: PASS" in (pytester.path / "reports" / "report.md").read_text()
    (pytester.path / "mynet.py").write_text((pytester.path / "mynet.py").read_text().replace("nn.ReLU()", "nn.Tanh()"))
    shutil.rmtree(pytester.path / "__pycache__", ignore_errors=True)  # same size, maybe the same second: no stale .pyc
    broken = pytester.runpytest_inprocess("-p", "no:cacheprovider", "--tg-strict", "--tg-no-figures")
    broken.assert_outcomes(failed=1)
    broken.stdout.fnmatch_lines(["*mynet:TinyNet: changed at step 1*"])


def test_collecting_a_profile_s_checks_imports_no_training_engine(pytester):
    """Listing the cases (pytest --collect-only, the first second of every run) reads profiles and check kinds
    only: torch is imported when a check first needs a run."""
    for module in ("test_cifar10_matrix.py", "test_mnist_overfit.py"):
        shutil.copy(ROOT / "tests" / module, pytester.path / f"test_project_{module.removeprefix('test_')}")
    script = ("import sys, pytest\n"
              "code = pytest.main(['-q', '--collect-only', '-m', 'slow', '--tg-profile', 'ci', '-p', 'no:cacheprovider'])\n"
              "print('torch imported:', 'torch' in sys.modules)\n"
              "sys.exit(int(code))\n")
    result = pytester.run(sys.executable, "-c", script)
    assert result.ret == 0, result.stdout.str()[-2000:]
    assert "test_mnist_overfit_within_baseline[keras-nodrop-10]" in result.stdout.str()
    assert "test_mnist_overfit_within_baseline[torch-claims]" in result.stdout.str()
    result.stdout.fnmatch_lines(["torch imported: False"])


def test_an_unusable_input_ends_the_session_or_in_an_xdist_worker_fails_the_case():
    """pytest.exit in an xdist worker crashes the controller (INTERNALERROR, the message lost): a worker fails the
    case with the message instead; a single process still ends the session with a usage error."""
    from types import SimpleNamespace

    from trainguard.plugin import stop

    with pytest.raises(pytest.fail.Exception, match="cifar10 is not available") as failed:
        try:
            raise ValueError("the underlying error")
        except ValueError:
            stop(SimpleNamespace(workerinput={"workerid": "gw0"}), "trainguard: cifar10 is not available")
    assert failed.value.__suppress_context__ and not failed.value.pytrace  # the message alone, no traceback
    with pytest.raises(pytest.exit.Exception, match="cifar10") as ended:
        stop(SimpleNamespace(), "trainguard: cifar10 is not available")
    assert ended.value.returncode == pytest.ExitCode.USAGE_ERROR


def test_a_test_marked_with_a_retired_kind_is_told_its_replacement(pytester, preloaded):
    """`trainguard_kinds("mnist_gaps")` (the report's first experiment before it was a declared plug-in) is a usage
    error naming the kind that checks it now, not a silently skipped test."""
    pytester.makepyfile(test_old='''
        import pytest

        @pytest.mark.trainguard_kinds("mnist_gaps")
        def test_gaps(trainguard_case):
            trainguard_case.check()
    ''')
    result = pytester.runpytest_inprocess("--tg-profile", "ci", "--collect-only", "-q", "-p", "no:cacheprovider")
    assert result.ret != 0
    assert "retired kind(s); what they checked is now ['experiments']" in result.stdout.str() + result.stderr.str()
