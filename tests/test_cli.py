"""The trainguard command on the smoke profile: exit codes, report, baselines."""

import shutil
from pathlib import Path

import pytest

from harness import cli, data

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def dirs(tmp_path):
    baselines = tmp_path / "baselines"
    baselines.mkdir()
    shutil.copy(ROOT / "baselines" / "published.csv", baselines)
    return ["--profile", "smoke", "--device", "cpu", "--baselines-dir", str(baselines),
            "--results-dir", str(tmp_path / "results")]


def test_run_without_baseline_reports_uncompared_and_passes(tmp_path, dirs, capsys):
    assert cli.main(["run", *dirs, "--report", str(tmp_path / "r.md")]) == 0
    report = (tmp_path / "r.md").read_text()
    assert "no baseline" in report and "trainguard baselines update --profile smoke" in report


def test_update_then_show_then_run_passes(tmp_path, dirs, capsys):
    assert cli.main(["baselines", "update", *dirs]) == 0
    assert "new baseline with 8 cells" in capsys.readouterr().out
    assert cli.main(["baselines", "show", *dirs]) == 0
    assert capsys.readouterr().out.startswith("model,epochs,train_loss_mean")
    assert cli.main(["run", *dirs, "--report", str(tmp_path / "r.md")]) == 0
    out = capsys.readouterr().out
    assert "24 passed, 0 failed" in out
    assert cli.main(["baselines", "update", *dirs]) == 0  # same seeds, cached: nothing moves
    assert "no change" in capsys.readouterr().out


def test_failed_check_exits_1(tmp_path, dirs, capsys):
    assert cli.main(["baselines", "update", *dirs]) == 0
    profile = tmp_path / "smoke.toml"
    profile.write_text((ROOT / "harness/profiles/smoke.toml").read_text().replace("lr = 0.01", "lr = 0.0001"))
    dirs[1] = str(profile)
    assert cli.main(["run", *dirs, "--report", str(tmp_path / "r.md")]) == 1
    out = capsys.readouterr().out
    assert "FAIL Baseline1-2 Test Accuracy: measured" in out and "REGRESSION" in out and "2 failed" in out


def test_input_errors_exit_2(tmp_path, capsys, monkeypatch):
    assert cli.main(["run", "--profile", "nope"]) == 2
    assert "unknown profile 'nope'" in capsys.readouterr().err
    monkeypatch.setattr(data, "DOWNLOADER", lambda name, scratch: (_ for _ in ()).throw(OSError("offline")))
    monkeypatch.setenv("TRAINGUARD_CACHE_DIR", str(tmp_path / "cache"))
    assert cli.main(["data", "fetch", "cifar10"]) == 2
    assert "cifar10 is not available" in capsys.readouterr().err
    assert not (tmp_path / "cache").exists()
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
