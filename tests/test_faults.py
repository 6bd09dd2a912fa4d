"""Faults: interruption and resume, killed processes, stale and corrupt results, concurrent
runs on one results directory, untrusted files. Smoke profile (generated data, seconds)."""

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from trainguard.stores import results
from trainguard.runs import training
from trainguard.runs.training import deliver
from trainguard.runs.matrix import Matrix
from trainguard.runs.options import Options
from trainguard.core.spec import load_profile

ROOT = Path(__file__).resolve().parent.parent


def _matrix(tmp_path, printer=None):
    lines = []
    options = Options(load_profile("smoke"), device="cpu", baselines_dir=tmp_path / "baselines",
                      results_dir=tmp_path / "results", run_log=tmp_path / "runlog.jsonl")
    return Matrix(options, printer=printer or lines.append), lines


def test_ctrl_c_keeps_completed_runs_and_the_next_run_trains_only_the_rest(tmp_path, monkeypatch):
    matrix, _ = _matrix(tmp_path)
    deliver(matrix, "Baseline1")

    def interrupted(matrix, model, seed, spec):
        raise KeyboardInterrupt

    monkeypatch.setattr(training, "train_one", interrupted)
    with pytest.raises(KeyboardInterrupt):
        deliver(matrix, "Baseline2")
    monkeypatch.undo()
    resumed, _ = _matrix(tmp_path)
    for model in resumed.profile.models:
        deliver(resumed, model)
    assert resumed.trained == [("Baseline2", 100), ("NewModel1", 100), ("NewModel2", 100)]  # Baseline1 from the cache


@pytest.mark.slow  # over 7 s here: in the slow suite (CI runs it), the fast one stays under 3 minutes
@pytest.mark.generated  # generated data: isolated from the user's data, cache and CI=true as a fast test is
def test_a_killed_process_loses_only_the_run_in_flight(tmp_path):
    """SIGKILL during NewModel1's first epoch: Baseline1 and Baseline2 are kept; the rerun resumes."""
    script = textwrap.dedent(f"""
        import os, signal, sys
        sys.path.insert(0, {str(ROOT)!r})
        from pathlib import Path
        from trainguard.runs.matrix import Matrix
        from trainguard.runs.training import deliver
        from trainguard.runs.options import Options
        from trainguard.core.spec import load_profile
        from trainguard.engines import engine
        tmp = Path({str(tmp_path)!r})
        matrix = Matrix(Options(load_profile("smoke"), device="cpu", baselines_dir=tmp / "b",
                                results_dir=tmp / "results", run_log=tmp / "runlog.jsonl"), printer=lambda s: None)
        real_train = engine.train
        def train(model, *args, **kwargs):
            if model == "NewModel1":
                os.kill(os.getpid(), signal.SIGKILL)
            return real_train(model, *args, **kwargs)
        engine.train = train
        for model in matrix.profile.models:
            deliver(matrix, model)
    """)
    killed = subprocess.run([sys.executable, "-c", script], cwd=tmp_path)
    assert killed.returncode == -signal.SIGKILL
    stored = sorted(p.name.split("-seed")[0] for p in (tmp_path / "results").rglob("*.json"))
    assert stored == ["Baseline1", "Baseline2"]
    assert not list((tmp_path / "results").rglob("*.tmp"))  # no half-written file left behind
    resumed, _ = _matrix(tmp_path)
    for model in resumed.profile.models:
        deliver(resumed, model)
    assert resumed.trained == [("NewModel1", 100), ("NewModel2", 100)]


class EditedLeNet(__import__("models").REGISTRY["Baseline2"]):
    """Baseline2 after an edit (any change to the class's source counts)."""


def test_a_changed_model_is_never_served_a_stale_result(tmp_path, monkeypatch):
    first, _ = _matrix(tmp_path)
    deliver(first, "Baseline2")
    deliver(first, "NewModel2")
    from trainguard import models

    monkeypatch.setitem(models.REGISTRY, "Baseline2", EditedLeNet)  # Baseline2's source "edited"
    results.code_fingerprint.cache_clear()
    second, _ = _matrix(tmp_path)
    deliver(second, "Baseline2")
    deliver(second, "NewModel2")
    assert second.trained == [("Baseline2", 100)]  # NewModel2's source did not change: served from the cache
    results.code_fingerprint.cache_clear()


def test_the_fingerprint_covers_the_model_class_and_its_bases():
    import inspect

    from trainguard import models

    assert results.code_fingerprint("Baseline2") != results.code_fingerprint("NewModel1")  # same base, own class
    assert inspect.getsource(models.REGISTRY["Baseline2"].__mro__[1]).startswith("class LeNet")


def test_a_corrupt_result_file_is_reported_and_recomputed(tmp_path):
    first, _ = _matrix(tmp_path)
    expected = deliver(first, "Baseline2")
    path = first.store.path(first.run_spec("Baseline2", 100))
    path.write_text(path.read_text()[:100])  # truncated
    second, _ = _matrix(tmp_path)
    with pytest.warns(UserWarning, match=rf"result file .*{re.escape(path.name)} is corrupt"):
        again = deliver(second, "Baseline2")
    assert second.trained == [("Baseline2", 100)]
    assert [e.train_loss for e in again.epochs] == [e.train_loss for e in expected.epochs]
    assert json.loads(path.read_text())["key"] == again.key  # rewritten whole


def test_a_result_file_under_another_key_is_not_trusted(tmp_path):
    first, _ = _matrix(tmp_path)
    deliver(first, "Baseline1")
    path = first.store.path(first.run_spec("Baseline1", 100))
    tampered = json.loads(path.read_text())
    tampered["key"] = "0" * 20
    path.write_text(json.dumps(tampered))
    second, _ = _matrix(tmp_path)
    with pytest.warns(UserWarning, match="does not match the file name"):
        deliver(second, "Baseline1")
    assert second.trained == [("Baseline1", 100)]


@pytest.mark.slow  # out of the fast suite (its 3-minute budget); run by `pytest -m slow` in CI
@pytest.mark.generated
def test_two_concurrent_runs_on_one_results_directory(tmp_path):
    """Two `trainguard run`s at once, same results dir, run log and report: both finish, nothing torn."""
    shared = ["--profile", "smoke", "--device", "cpu", "--results-dir", str(tmp_path / "results"),
              "--run-log", str(tmp_path / "runlog.jsonl"), "--baselines-dir", str(ROOT / "baselines"),
              "--ledger-dir", str(tmp_path / "history"),
              "--report", str(tmp_path / "report.md"), "--no-figures", "--no-replay"]  # the stores are tested, not the goldens
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    runs = [subprocess.Popen([sys.executable, "-m", "trainguard.cli", "run", *shared], cwd=ROOT, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=300)[0] for p in runs]
    assert [p.returncode for p in runs] == [0, 0], outputs
    from trainguard.core.history import History
    from trainguard.stores.runlog import read_events

    files = list((tmp_path / "results").rglob("*.json"))
    assert len(files) == 4 and all(History.from_json(json.loads(f.read_text())).completed for f in files)
    events = read_events(tmp_path / "runlog.jsonl")  # every line whole
    assert sum(e["event"] == "run_stop" for e in events) >= 4
    assert (tmp_path / "report.md").read_text().startswith("# trainguard report")
    assert not list(tmp_path.rglob("*.tmp"))


def test_no_unsafe_deserialisation_in_the_code():
    """Nothing is unpickled: np.load without pickles, no torch.load, no pickle module."""
    sources = {p: p.read_text() for p in [*ROOT.glob("harness/**/*.py"), *ROOT.glob("models/**/*.py")]}
    assert ROOT / "harness" / "checks" / "baseline.py" in sources  # subpackages too
    for path, text in sources.items():
        assert "import pickle" not in text and "torch.load(" not in text, path
        assert "allow_pickle=True" not in text, path
        for call in re.findall(r"np\.load\([^)]*\)", text):
            assert "allow_pickle=False" in call, (path, call)


def test_atomic_writes_get_the_usual_file_permissions(tmp_path):
    """Reports and results are readable like any file the user writes (mkstemp alone makes them 0600)."""
    import os

    from trainguard.core.storage import atomic_write_text

    umask = os.umask(0)
    os.umask(umask)
    atomic_write_text(tmp_path / "report.md", "x")
    assert (tmp_path / "report.md").stat().st_mode & 0o777 == 0o666 & ~umask
