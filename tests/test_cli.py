"""The trainguard command on the smoke profile: exit codes, report, baselines."""

import re
import shutil
from pathlib import Path

import pytest

from trainguard import cli
from trainguard.stores import data

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def dirs(tmp_path):
    baselines = tmp_path / "baselines"
    baselines.mkdir()
    shutil.copy(ROOT / "baselines" / "published.csv", baselines)
    return ["--profile", "smoke", "--device", "cpu", "--baselines-dir", str(baselines),
            "--results-dir", str(tmp_path / "results"), "--run-log", str(tmp_path / "runlog.jsonl"),
            "--ledger-dir", str(tmp_path / "history"), "--no-figures"]  # figures: tests/test_report.py


def test_run_without_baseline_or_golden_is_nothing_checked_not_a_pass(tmp_path, dirs, capsys):
    """An empty baselines directory: everything trains, nothing is compared — exit 5, everywhere it is said."""
    assert cli.main(["run", *dirs, "--report", str(tmp_path / "r.md"), "--junit-xml", str(tmp_path / "j.xml")]) == 5
    out = capsys.readouterr().out
    assert "NOTHING CHECKED: no check compared anything" in out and "0 passed, 0 failed" in out
    assert "trainguard baselines update --profile smoke" in out and "baselines update --golden" in out
    report = (tmp_path / "r.md").read_text()
    assert report.splitlines()[2].startswith("**Result: NOTHING CHECKED**")
    assert "no baseline" in report and "trainguard baselines update --profile smoke" in report
    assert "| NewModel2 " in report  # trained and shown, though not compared
    assert "Not drawn: this run was asked for the markdown alone (--no-figures)" in report  # the fixture's option
    assert not list(tmp_path.glob("*.png"))
    junit = (tmp_path / "j.xml").read_text()
    assert 'tests="1"' in junit and 'failures="1"' in junit and "nothing checked" in junit
    import json

    from trainguard.stores.ledger import open_ledger

    nights = open_ledger(tmp_path / "history" / "ledger.sqlite").read("smoke", "cpu")  # --ledger-dir: DIR/ledger.sqlite
    assert [night["result"] for night in nights] == ["NOTHING CHECKED"]
    assert json  # (the entry is JSON in the database)


def test_strict_run_without_baseline_fails_naming_the_command(tmp_path, dirs, capsys, monkeypatch):
    monkeypatch.setenv("CI", "true")
    assert cli.main(["run", *dirs, "--report", str(tmp_path / "r.md")]) == 1
    out = capsys.readouterr().out
    assert "FAIL no baseline" in out and "strict: CI=true or --tg-strict" in out
    assert "trainguard baselines update --profile smoke" in out


def test_a_baseline_seed_is_refused_unless_asked(tmp_path, dirs, capsys):
    assert cli.main(["run", *dirs, "--seeds", "0,100"]) == 2
    assert "seed(s) 0 are in profile smoke's baseline_seeds" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:  # argparse: a usage error naming the option
        cli.main(["run", *dirs, "--seeds", "x"])
    assert exit_info.value.code == 2 and "--seeds" in capsys.readouterr().err


def test_selftest_and_calibrate_commands_start(tmp_path, dirs, capsys):
    dirs[dirs.index("--baselines-dir") + 1] = str(ROOT / "baselines")  # the committed smoke baseline
    assert cli.main(["selftest", *dirs, "--injections", "permuted-labels", "--report", str(tmp_path / "s.md"),
                     "--selftest-log", str(tmp_path / "s.jsonl")]) == 0
    assert "caught: permuted-labels (labels)" in capsys.readouterr().out
    assert "| caught " in (tmp_path / "s.md").read_text()
    assert cli.main(["baselines", "calibrate", *dirs]) == 0
    out = capsys.readouterr().out
    assert "## False alarms" in out and "## Minimum detectable effect" in out and "Leave-1-out" in out


def test_update_then_show_then_run_passes(tmp_path, dirs, capsys, smoke_runs):
    smoke_runs.copy(tmp_path / "results", "baseline_seeds")  # the baseline seeds' runs: measured, not trained
    smoke_runs.copy(tmp_path / "results")  # and the check seed's (training itself is tested elsewhere)
    assert cli.main(["baselines", "update", "--skip-golden", *dirs]) == 0
    assert "new baseline with 8 cells" in capsys.readouterr().out
    assert cli.main(["baselines", "show", *dirs]) == 0
    shown = capsys.readouterr().out
    assert "| model" in shown and "train_loss_mean" in shown and "n = 5 seeds" in shown  # a table, not raw CSV
    assert "tails (docs/statistics.md): " in shown
    assert cli.main(["baselines", "diff", *dirs]) == 0  # the smoke budgets (2, 3) are not in the published table
    assert "against" in capsys.readouterr().out
    assert cli.main(["run", *dirs, "--report", str(tmp_path / "r.md")]) == 0
    out = capsys.readouterr().out
    assert "24 passed, 0 failed" in out
    assert cli.main(["baselines", "update", "--skip-golden", *dirs]) == 0  # same seeds, cached: nothing moves
    assert "no change" in capsys.readouterr().out


def test_failed_check_exits_1(tmp_path, dirs, capsys, smoke_runs):
    smoke_runs.copy_baseline(tmp_path / "baselines")
    profile = tmp_path / "smoke.toml"
    profile.write_text((ROOT / "harness/profiles/smoke.toml").read_text().replace("lr = 0.001", "lr = 0.00001"))
    dirs[1] = str(profile)
    assert cli.main(["run", *dirs, "--report", str(tmp_path / "r.md")]) == 1
    out = capsys.readouterr().out
    assert "FAIL Baseline1-3 Test Accuracy (mean of epochs 2–3): measured" in out and "REGRESSION" in out
    failed = int(re.search(r"\d+ passed, (\d+) failed", out).group(1))
    assert failed == out.count("REGRESSION") > 0  # the summary counts every failing check it printed


def _tables(report: str) -> str:
    """The measured tables of a report, without the environment (wall time) and notes."""
    end = min(report.index(h) for h in ("## Checks", "## Figures") if h in report)
    return report[report.index("## 2 epochs"):end]


def test_report_rerenders_from_the_cache_or_the_run_log_without_training(tmp_path, dirs, capsys, smoke_runs):
    smoke_runs.copy_baseline(tmp_path / "baselines")
    assert cli.main(["run", *dirs, "--report", str(tmp_path / "run.md")]) == 0
    capsys.readouterr()
    assert cli.main(["report", *dirs, "--report", str(tmp_path / "again.md")]) == 0
    assert "training" not in capsys.readouterr().out
    run, again = (tmp_path / "run.md").read_text(), (tmp_path / "again.md").read_text()
    assert _tables(again) == _tables(run) and "nothing was trained" in again
    shutil.rmtree(tmp_path / "results")  # the log alone is enough
    assert cli.main(["report", *dirs, "--from-log", str(tmp_path / "runlog.jsonl"),
                     "--report", str(tmp_path / "log.md")]) == 0
    assert _tables((tmp_path / "log.md").read_text()) == _tables(run)
    assert cli.main(["report", *dirs, "--report", str(tmp_path / "none.md")]) == 1  # nothing stored: never trains
    out = capsys.readouterr().out
    assert "no stored result" in out and "trainguard run --profile smoke" in out


@pytest.mark.slow  # over 7 s here: in the slow suite (CI runs it), the fast one stays under 3 minutes
@pytest.mark.generated  # generated data: isolated from the user's data, cache and CI=true as a fast test is
def test_compare_shows_what_moved_since_an_earlier_run(tmp_path, dirs, capsys):
    assert cli.main(["run", *dirs, "--report", str(tmp_path / "r.md")]) == 5  # no baseline in the fixture: nothing compared, the table still shown
    (tmp_path / "runlog.jsonl").rename(tmp_path / "yesterday.jsonl")
    profile = tmp_path / "smoke.toml"
    profile.write_text((ROOT / "harness/profiles/smoke.toml").read_text().replace("lr = 0.001", "lr = 0.002"))
    dirs[1] = str(profile)
    assert cli.main(["run", *dirs, "--compare", str(tmp_path / "yesterday.jsonl"), "--report", str(tmp_path / "r.md")]) == 5
    report = (tmp_path / "r.md").read_text()
    section = report[report.index("## Changes since"):]
    rows = [[cell.strip() for cell in line.split("|")[1:-1]] for line in section.splitlines() if line.startswith("| ")]
    row = next(r for r in rows if r[:2] == ["NewModel2", "2"])
    assert "→" in row[2] and row[3] != "+0.0000"  # lr doubled: the loss moved
    assert cli.main(["report", *dirs, "--compare", str(tmp_path / "nope")]) == 2
    assert "--compare" in capsys.readouterr().err


def test_input_errors_exit_2(tmp_path, capsys, monkeypatch):
    assert cli.main(["run", "--profile", "nope"]) == 2
    assert "unknown profile 'nope'" in capsys.readouterr().err
    monkeypatch.setattr(data, "DOWNLOADER", lambda name, scratch: (_ for _ in ()).throw(OSError("offline")))
    monkeypatch.setenv("TRAINGUARD_CACHE_DIR", str(tmp_path / "cache"))
    assert cli.main(["data", "fetch", "cifar10"]) == 2
    assert "cifar10 is not available" in capsys.readouterr().err
    assert _nothing_but_the_lock(tmp_path / "cache")
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["run", "--device"])
    assert exit_info.value.code == 2


def test_data_verify_names_the_file(tmp_path, tiny_arrays, capsys):
    import numpy as np

    np.savez_compressed(tmp_path / "cifar10.npz", **tiny_arrays)
    assert cli.main(["data", "verify", "cifar10", "--data-dir", str(tmp_path)]) == 0
    assert "unverified" in capsys.readouterr().out
    assert cli.main(["data", "verify", "mnist", "--data-dir", str(tmp_path)]) == 2
    assert "mnist.npz: no such file" in capsys.readouterr().err


def test_timing_profile_on_generated_data_makes_no_checks_and_says_so(tmp_path, dirs, capsys):
    """The gpu-timing profile, shrunk: generated CIFAR-shaped tensors, report marked, exit 0."""
    text = (ROOT / "harness/profiles/gpu-timing.toml").read_text()
    small = (text.replace("train_per_class = 5000", "train_per_class = 10").replace("test_images = 10000", "test_images = 50")
             .replace("budgets = [10, 20]", "budgets = [1]").replace("batch_size = 8", "batch_size = 32"))
    profile = tmp_path / "timing.toml"
    profile.write_text(small)
    dirs[1] = str(profile)
    assert cli.main(["run", *dirs, "--report", str(tmp_path / "t.md")]) == 0
    assert "0 passed, 0 failed" in capsys.readouterr().out
    report = (tmp_path / "t.md").read_text()
    assert "accuracies mean nothing about CIFAR-10." in report and "| training time" in report
    # the run log alone re-renders the runs' tables
    assert cli.main(["report", *dirs, "--from-log", str(tmp_path / "runlog.jsonl"), "--report", str(tmp_path / "r.md")]) == 0
    again = (tmp_path / "r.md").read_text()
    section = lambda text: text[text.index("## 1 epochs"):text.index("## Statistics")]
    assert section(again) == section(report)


def test_option_precision_choices_are_the_engine_s():
    from trainguard.engines import engine
    from trainguard import options
    from trainguard.core import spec

    assert options.PRECISIONS is engine.PRECISIONS is spec.PRECISIONS  # one tuple, read by both


def test_version(capsys):
    from importlib.metadata import version

    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"trainguard {version('trainguard')}"


def test_cli_accepts_the_pytest_spelling_of_options(tmp_path, dirs, capsys):
    """Options copied from a pytest command line (--tg-NAME) work in the CLI too."""
    tg = [arg.replace("--", "--tg-", 1) if arg.startswith("--") else arg for arg in dirs]
    assert cli.main(["run", *tg, "--tg-report", str(tmp_path / "r.md")]) == 5  # nothing compared: no baseline here
    assert (tmp_path / "r.md").exists()


VOLATILE = ("| wall time", "| training time", "| commit", "| python", "Replay time:")


def _stable(text: str) -> str:
    """A report without what differs between two runs of the same code by design: timing and provenance
    lines, and the trend section (tonight's timings, the run's time)."""
    text = text.split("## Trend")[0]
    return "\n".join(line for line in text.splitlines() if not line.startswith(VOLATILE))


@pytest.mark.slow  # over 8 s here: in the slow suite (CI runs it), the fast one stays under 3 minutes
@pytest.mark.generated  # generated data: isolated from the user's data, cache and CI=true as a fast test is
def test_library_entry_point_and_reports_are_identical_across_runs(tmp_path, dirs):
    """run_profile is what `trainguard run` calls; two runs with the same seed and no cache give the same
    report and verdicts, byte for byte outside the timing and provenance lines."""
    import trainguard
    from trainguard.options import session_options

    args = cli.build_parser().parse_args(["run", *dirs, "--no-result-cache"])
    shutil.copytree(ROOT / "baselines" / "smoke", args.baselines_dir / "smoke")  # the committed smoke baseline
    texts = []
    for attempt in range(2):
        summary = trainguard.run_profile(session_options(vars(args), trainguard.load_profile("smoke")),
                                         printer=lambda line: None)
        # 24 outcome checks, the replay of the 4 committed smoke goldens and of the night's inputs
        assert isinstance(summary, trainguard.RunSummary) and len(summary.verdicts) == 29 and summary.passed
        # the inputs and the 4 goldens: bit for bit on the goldens' own machine class; elsewhere (another ISA) within the noise
        assert len(summary.replay) == 5 and all(o.status == "identical" if not o.environment_diff
                                                else o.status in ("identical", "numerics differ")
                                                for o in summary.replay), [o.message for o in summary.replay]
        path = trainguard.write_report(summary, tmp_path / f"run{attempt}" / "report.md")
        texts.append(path.read_text())
    assert _stable(texts[0]) == _stable(texts[1])
    assert texts[0].count("\n") == texts[1].count("\n")


def test_a_truncated_baseline_fails_before_training(tmp_path, dirs, capsys):
    """Every input is read before the first epoch: a cut baseline file is an error naming it, nothing trains."""
    baselines = Path(dirs[dirs.index("--baselines-dir") + 1])
    shutil.copytree(ROOT / "baselines" / "smoke", baselines / "smoke")
    table = baselines / "smoke" / "cpu-seeds.csv"
    lines = table.read_text().splitlines(keepends=True)
    for cut in ("".join(lines[: len(lines) // 2]), "".join(lines)[:-40]):  # at a line boundary; inside a line
        table.write_text(cut)
        assert cli.main(["run", *dirs, "--report", str(tmp_path / "r.md")]) == 2
        captured = capsys.readouterr()
        assert "cpu-seeds.csv" in captured.err and "training" not in captured.out, captured.err
        assert not (tmp_path / "results").exists()


def test_an_unwritable_report_path_fails_before_training(tmp_path, dirs, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert cli.main(["run", *dirs, "--report", str(blocker / "sub" / "r.md")]) == 2
    assert "--report" in capsys.readouterr().err


@pytest.mark.slow  # out of the fast suite (its 3-minute budget); run by `pytest -m slow` in CI
@pytest.mark.generated
def test_a_baseline_measured_over_several_sessions_resumes_from_its_run_log(tmp_path, dirs, capsys):
    """Half the baseline seeds in a run log (an earlier session), the cache gone: --from-log alone stops naming
    the run it lacks (no surprise training); with --train-missing only the missing seeds train."""
    from trainguard.stores.runlog import read_events

    first = [a if a != "smoke" else str(_smoke_with_seeds(tmp_path, [0, 1])) for a in dirs]
    assert cli.main(["baselines", "update", *first, "--skip-golden"]) == 0
    shutil.rmtree(tmp_path / "results")  # the cache did not survive; the run log did
    log = tmp_path / "session1.jsonl"
    (tmp_path / "runlog.jsonl").rename(log)
    again = [a if a != "smoke" else str(_smoke_with_seeds(tmp_path, [0, 1, 2])) for a in dirs]
    assert cli.main(["baselines", "update", *again, "--skip-golden", "--from-log", str(log)]) == 2
    assert "no run of Baseline1 seed 2 in the run log(s)" in capsys.readouterr().err
    assert cli.main(["baselines", "update", *again, "--skip-golden", "--from-log", str(log), "--train-missing"]) == 0
    trained = sorted({(e["model"], e["seed"]) for e in read_events(tmp_path / "runlog.jsonl") if e["event"] == "run_start"})
    assert trained == [(m, 2) for m in ("Baseline1", "Baseline2", "NewModel1", "NewModel2")]


def _smoke_with_seeds(tmp_path: Path, seeds: list[int]) -> Path:
    text = (ROOT / "harness" / "profiles" / "smoke.toml").read_text()
    path = tmp_path / f"smoke-{len(seeds)}.toml"
    path.write_text(text.replace("baseline_seeds = [0, 1, 2, 3, 4]", f"baseline_seeds = {seeds}"))
    return path


def test_the_ledger_s_former_names_still_work(tmp_path):
    """--history-dir (CLI and pytest spellings), the ini key tg_history_dir and `trainguard history` were renamed
    (the "history" of a run is its curve); nightly jobs written against the old names keep working."""
    from trainguard.options import RUN_OPTIONS, resolve_pytest_options

    parser = cli.build_parser()
    for spelling in ("--ledger-dir", "--history-dir", "--tg-history-dir"):
        assert parser.parse_args(["run", spelling, "n"]).ledger_dir == Path("n")
    assert parser.parse_args(["history"]).command == "history"  # dispatched to the ledger command
    ini = {"tg_history_dir": "old"}
    values = resolve_pytest_options(lambda name: None, lambda key: ini.get(key, ""), tmp_path, tmp_path, RUN_OPTIONS)
    assert values["ledger_dir"] == tmp_path / "old"


def test_a_far_baseline_seed_is_named_in_the_report_and_the_calibration(tmp_path, dirs, smoke_runs, capsys):
    """One baseline seed of one model edited far from the others: the report's Statistics section and
    `baselines calibrate` name the check and the seed (docs/statistics.md, Tails); nothing else changes."""
    import csv

    seeds_csv = smoke_runs.copy_baseline(Path(dirs[dirs.index("--baselines-dir") + 1])) / "cpu-seeds.csv"
    rows = list(csv.DictReader(seeds_csv.open()))
    for row in rows:
        if row["model"] == "Baseline2" and row["seed"] == "3":
            row["train_loss"] = f"{float(row['train_loss']) + 5:.6g}"
    with seeds_csv.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    smoke_runs.copy(tmp_path / "results")
    cli.main(["run", *dirs, "--no-replay", "--report", str(tmp_path / "r.md")])
    statistics_section = (tmp_path / "r.md").read_text().split("## Statistics", 1)[1]
    assert "- Tail: Baseline2-3 train_loss: seed 3 at " in statistics_section
    assert "Tail: Baseline1" not in statistics_section
    capsys.readouterr()
    assert cli.main(["baselines", "calibrate", *dirs]) == 0
    out = capsys.readouterr().out
    assert "- Tails (screen at p < 0.01 per check" in out and "  - Baseline2-3 train_loss: seed 3 at" in out
    assert cli.main(["baselines", "show", *dirs]) == 0
    assert "tails (docs/statistics.md): Baseline2-2 train_loss: seed 3 at" in capsys.readouterr().out


def _nothing_but_the_lock(cache) -> bool:
    """A failed download writes no data: at most the download's lock, inside trainguard's own cache directory."""
    return not cache.exists() or all(p.name.endswith(".lock") for p in cache.iterdir())


def test_a_command_run_in_process_gives_back_the_torch_thread_count(dirs, capsys):
    """torch's thread count is process-wide and part of every run's cache key: a command that leaves --threads set
    (here `baselines show`, which opens the matrix and stops at the missing baseline) would make every later
    run in the same process (the test session, a notebook) miss the cache and train again at another count."""
    import torch

    before = torch.get_num_threads()
    other = 1 if before != 1 else 2
    assert cli.main(["baselines", "show", *dirs, "--threads", str(other)]) == 2
    assert "no baseline at" in capsys.readouterr().err
    assert torch.get_num_threads() == before


def test_a_retired_flag_still_works_as_its_replacement_and_says_so():
    from trainguard.core import retired

    args = cli.build_parser().parse_args(["baselines", "update", "--skip-mnist"])
    assert args.retired == [("--skip-mnist", "--skip-experiments")] and retired.flags()["--skip-mnist"] == "--skip-experiments"
    assert not cli.build_parser().parse_args(["baselines", "update"]).retired
