"""Fault injection: a night killed or broken at each write point it has, a child that hangs, a lock never released,
a full disk, two writers at once. Each test shows the next run recovers with nothing lost or torn. The table of
what was tried is docs/reliability.md (keep the two in step).

A "kill" is a real SIGKILL of a child process at the named point (no cleanup code runs), made by patching the
function that performs that write so that it kills its own process on the chosen call.
"""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from trainguard.stores import baselines, golden
from trainguard.core import storage, watchdog
from trainguard.stores.ledger import JsonLinesLedger, open_ledger
from trainguard.stores.runlog import RunLog, read_events
from trainguard.core.spec import ConfigError

ROOT = Path(__file__).resolve().parent.parent
SMOKE_GOLDENS = ROOT / "baselines" / "smoke" / "golden-cpu"


def _killed_child(tmp_path: Path, body: str, patch: str = "") -> subprocess.CompletedProcess:
    """Run ``body`` in a child whose ``patch`` makes it SIGKILL itself at a write point; it must die by SIGKILL."""
    script = tmp_path / "child.py"
    script.write_text(textwrap.dedent(f"""
        import os, signal, sys
        sys.path.insert(0, {str(ROOT)!r})
        def die():
            os.kill(os.getpid(), signal.SIGKILL)
    """) + textwrap.dedent(patch) + textwrap.dedent(body))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]
    return done


def _kill_on_call(module: str, name: str, call: int, before: bool = True) -> str:
    """Patch ``module.name`` to SIGKILL the process on its ``call``-th call (before or after doing it)."""
    return f"""
        import importlib
        _module = importlib.import_module({module!r})
        _real, _calls = getattr(_module, {name!r}), [0]
        def _patched(*args, **kwargs):
            _calls[0] += 1
            if _calls[0] == {call} and {before}:
                die()
            result = _real(*args, **kwargs)
            if _calls[0] == {call} and not {before}:
                die()
            return result
        setattr(_module, {name!r}, _patched)
    """


# ------------------------------------------------------------------------------------ line stores

def _events(path):
    return [(e["event"], e["run"]) for e in read_events(path)]


def test_a_writer_killed_mid_line_leaves_a_torn_tail_that_is_set_aside_and_the_log_goes_on(tmp_path):
    log = tmp_path / "runlog.jsonl"
    RunLog(log).event("run_start", run="a", model="Baseline1", seed=0)
    # the second event: half of its bytes written, then the process is killed (a crash mid-write)
    _killed_child(tmp_path, f"""
        from trainguard.stores.runlog import RunLog
        RunLog({str(log)!r}).event("run_stop", run="a", status="completed")
    """, patch="""
        _write = os.write
        def write(fd, data):
            _write(fd, data[: len(data) // 2])
            die()
        os.write = write
    """)
    assert not log.read_bytes().endswith(b"\n")  # torn
    storage.RECOVERED.clear()
    RunLog(log).event("run_start", run="b", model="Baseline2", seed=0)  # the next night appends
    assert _events(log) == [("run_start", "a"), ("run_start", "b")]  # nothing glued, nothing lost
    aside = list(tmp_path.glob("runlog.jsonl.torn-*"))
    assert len(aside) == 1 and aside[0].read_bytes().startswith(b'{"event": "run_stop"')
    assert any("last line was torn" in note and "set aside" in note for note in storage.RECOVERED)


def test_a_torn_ledger_tail_does_not_stop_the_next_night(tmp_path):
    ledger = JsonLinesLedger(tmp_path)  # the former format, still read by `trainguard ledger import`
    ledger.append({"profile": "ci", "device_class": "cpu", "run_id": "one"})
    with open(ledger.path("ci", "cpu"), "a") as handle:
        handle.write('{"format_version": 1, "profile": "ci", "devi')  # a full disk cut this line
    assert [e["run_id"] for e in ledger.read("ci", "cpu")] == ["one"]
    ledger.append({"profile": "ci", "device_class": "cpu", "run_id": "two"})
    assert [e["run_id"] for e in ledger.read("ci", "cpu")] == ["one", "two"]


def test_a_damaged_line_in_the_middle_is_still_an_error_naming_file_and_line(tmp_path):
    path = tmp_path / "runlog.jsonl"
    RunLog(path).event("run_start", run="a", model="m", seed=0)
    with open(path, "a") as handle:
        handle.write("garbage\n")
    RunLog(path).event("run_stop", run="a", status="completed")
    with pytest.raises(ConfigError, match=r"runlog.jsonl, line 2: not JSON"):
        read_events(path)


def test_a_short_write_is_finished(tmp_path, monkeypatch):
    """os.write may write fewer bytes than asked (a signal, a pipe, some file systems): the rest follows."""
    real = os.write

    def short(fd, data):
        return real(fd, data[:7])

    monkeypatch.setattr(os, "write", short)
    storage.append_line(tmp_path / "log.jsonl", json.dumps({"event": "run_start", "run": "r" * 50}))
    monkeypatch.undo()
    assert json.loads((tmp_path / "log.jsonl").read_text()) == {"event": "run_start", "run": "r" * 50}


def test_a_write_that_fails_half_way_is_cut_back_and_names_the_file(tmp_path, monkeypatch):
    path = tmp_path / "log.jsonl"
    storage.append_line(path, '{"a": 1}')
    real, calls = os.write, []

    def disk_full(fd, data):
        calls.append(1)
        if len(calls) == 1:
            return real(fd, data[:3])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "write", disk_full)
    with pytest.raises(OSError) as error:
        storage.append_line(path, '{"b": 2}')
    monkeypatch.undo()
    assert error.value.filename == str(path) and path.read_text() == '{"a": 1}\n'  # our half line taken back


# ------------------------------------------------------------------------------------ references

def _curves(value: float) -> dict:
    return {(model, seed): [{m: value + seed for m in baselines.CURVE_METRICS} for _ in range(2)]
            for model in ("Baseline1", "Baseline2") for seed in (0, 1, 2)}


def _write_baseline(path: Path, value: float, writer: str) -> None:
    baselines.write_measured(path, _curves(value), ("Baseline1", "Baseline2"), (1, 2),
                             {"seeds": [0, 1, 2], "writer": writer})


def _whole(path: Path) -> str:
    """The writer of the baseline at ``path``, after checking its curves and summary are that writer's too."""
    with storage.reading_together(path.parent, "the test's reader"):  # all three files in one read, as a night's
        table = baselines._load_measured(path, ("Baseline1", "Baseline2"), (1, 2))
        summary = path.read_text()
    writer = table.meta["writer"]
    expected = {"old": 1.0, "new": 50.0}.get(writer, float(writer[1:]) if writer[1:].isdigit() else None)
    assert table.curves[("Baseline1", 0)][0]["train_acc"] == expected, (writer, table.curves[("Baseline1", 0)][0])
    assert f"{expected + 1:.4f}" in summary  # the summary (mean over seeds 0-2) is the same writer's
    return writer


@pytest.mark.parametrize("point, call, expect", [
    ("before the commit (the second staged file)", ("trainguard.core.storage", "_write_fsynced", 2, True), "old"),
    ("after the commit, one file moved", ("os", "replace", 3, False), "new"),
])
def test_a_baseline_update_killed_half_way_leaves_one_whole_baseline(tmp_path, point, call, expect):
    path = tmp_path / "smoke" / "cpu.csv"
    _write_baseline(path, 1.0, "old")
    module, name, number, before = call
    # os.replace's calls: 1 = the commit file into the stage, 2.. = the moves into place
    _killed_child(tmp_path, f"""
        from pathlib import Path
        import sys
        sys.path.insert(0, {str(ROOT / "tests")!r})
        from test_reliability import _write_baseline
        _write_baseline(Path({str(path)!r}), 50.0, "new")
    """, patch=_kill_on_call(module, name, number, before))
    assert list(path.parent.glob(".staged-*"))  # the interrupted update is there, half done
    assert _whole(path) == expect  # the next reader finishes or discards it: one whole baseline either way
    assert not list(path.parent.glob(".staged-*"))


def test_two_baseline_updates_at_once_end_with_one_whole_baseline(tmp_path):
    path = tmp_path / "smoke" / "cpu.csv"
    _write_baseline(path, 1.0, "old")
    script = tmp_path / "writer.py"
    script.write_text(textwrap.dedent(f"""
        import sys
        from pathlib import Path
        sys.path[:0] = [{str(ROOT)!r}, {str(ROOT / "tests")!r}]
        from test_reliability import _write_baseline
        value = int(sys.argv[1])
        for _ in range(15):
            _write_baseline(Path({str(path)!r}), float(value), f"w{{value}}")
    """))
    writers = [subprocess.Popen([sys.executable, str(script), str(n)]) for n in (2, 3)]
    seen = set()
    while any(w.poll() is None for w in writers):
        seen.add(_whole(path))  # read while they write: never half of one and half of the other
    assert all(w.wait(timeout=120) == 0 for w in writers)
    assert _whole(path) in ("w2", "w3") and seen <= {"old", "w2", "w3"}


def _smoke_golden(name: str, commit: str) -> golden.Golden:
    g = golden.read_golden(SMOKE_GOLDENS / f"{name}.json")
    g.provenance = {**g.provenance, "commit": commit}
    return g


def test_a_golden_update_killed_half_way_is_finished_by_the_next_replay(tmp_path):
    directory = tmp_path / "golden-cpu"
    names = ("Baseline1", "Baseline2")
    golden.write_goldens_together({directory / f"{n}.json": _smoke_golden(n, "old") for n in names})
    _killed_child(tmp_path, f"""
        from pathlib import Path
        from trainguard.stores import golden
        g = {{n: golden.read_golden(Path({str(SMOKE_GOLDENS)!r}) / f"{{n}}.json") for n in {names!r}}}
        for one in g.values():
            one.provenance = {{**one.provenance, "commit": "new"}}
        golden.write_goldens_together({{Path({str(directory)!r}) / f"{{n}}.json": one for n, one in g.items()}})
    """, patch=_kill_on_call("os", "replace", 3, before=False))  # the commit, one golden moved, then killed
    commits = {n: golden.read_golden(directory / f"{n}.json").provenance["commit"] for n in names}
    assert commits == {"Baseline1": "new", "Baseline2": "new"}  # not one of each


@pytest.mark.parametrize("damage, message", [
    (lambda text: text.replace('"seeds": [\n    0,\n    1,\n    2\n  ]', '"seeds": [0, 1, 2, 3]'),
     r"the metadata cpu.meta.json lists \[0, 1, 2, 3\] \(missing: \[3\]\)"),
    (lambda text: None, "nan"),
])
def test_every_baseline_reader_refuses_a_truncated_or_non_finite_table(tmp_path, damage, message):
    path = tmp_path / "smoke" / "cpu.csv"
    _write_baseline(path, 1.0, "old")
    meta = baselines.meta_path(path)
    if message == "nan":
        curves = baselines.seeds_path(path)
        lines = curves.read_text().splitlines()
        fields = lines[1].split(",")
        fields[3] = "nan"  # the first row's train_loss
        curves.write_text("\n".join([lines[0], ",".join(fields), *lines[2:]]) + "\n")
        message = r"cpu-seeds.csv, line \d+, column 'train_loss': expected a finite number"
    else:
        meta.write_text(damage(meta.read_text()))
    with pytest.raises(ConfigError, match=message):
        baselines.load_measured(path, ("Baseline1", "Baseline2"), (1, 2))


def test_a_golden_with_a_non_finite_value_is_refused(tmp_path):
    raw = json.loads((SMOKE_GOLDENS / "Baseline1.json").read_text())
    raw["trace"]["parts"][0]["steps"]["loss"][3] = float("nan")
    (tmp_path / "Baseline1.json").write_text(json.dumps(raw))
    with pytest.raises(ConfigError, match=r"Baseline1.json is corrupt .*not a finite number"):
        golden.read_golden(tmp_path / "Baseline1.json")


# ------------------------------------------------------------------------------------ data cache, report, results

def test_a_data_download_killed_before_its_checksum_file_is_fetched_again(tmp_path):
    cache = tmp_path / "cache"
    downloader = """
        import numpy as np
        from trainguard.stores import data
        rng = np.random.default_rng(0)
        data.DOWNLOADER = lambda name, scratch: {
            "x_train": rng.integers(0, 256, (40, 32, 32, 3), dtype=np.uint8), "y_train": np.tile(np.arange(10, dtype=np.uint8), 4),
            "x_test": rng.integers(0, 256, (20, 32, 32, 3), dtype=np.uint8), "y_test": np.tile(np.arange(10, dtype=np.uint8), 2)}
    """
    _killed_child(tmp_path, downloader + f"""
        data.load("cifar10", cache_dir={str(cache)!r})
    """, patch=_kill_on_call("trainguard.core.storage", "atomic_write_bytes", 2))  # the archive written, not its checksum
    assert (cache / "cifar10.npz").exists() and not (cache / "cifar10.npz.sha256").exists()
    from trainguard.stores import data

    def fetched(name, scratch):
        fetched.calls += 1
        import numpy as np
        rng = np.random.default_rng(1)
        return {"x_train": rng.integers(0, 256, (40, 32, 32, 3), dtype=np.uint8),
                "y_train": np.tile(np.arange(10, dtype=np.uint8), 4),
                "x_test": rng.integers(0, 256, (20, 32, 32, 3), dtype=np.uint8),
                "y_test": np.tile(np.arange(10, dtype=np.uint8), 2)}

    fetched.calls = 0
    original, data.DOWNLOADER = data.DOWNLOADER, fetched
    try:
        loaded = data.load("cifar10", cache_dir=cache)
    finally:
        data.DOWNLOADER = original
    assert fetched.calls == 1 and loaded.source == str(cache / "cifar10.npz")
    assert (cache / "cifar10.npz.sha256").exists() and list(cache.glob("cifar10.npz.bad-*"))


def test_a_report_write_killed_leaves_the_previous_report_whole(tmp_path):
    report = tmp_path / "report.md"
    storage.atomic_write_text(report, "# the previous night\n" * 100)
    _killed_child(tmp_path, f"""
        from trainguard.report import markdown as report
        report.write({str(report)!r}, "# tonight\\n" * 5000)
    """, patch=_kill_on_call("os", "replace", 1))
    assert report.read_text() == "# the previous night\n" * 100


def test_a_result_write_killed_leaves_no_torn_result_and_the_next_write_lands(tmp_path):
    """The result cache's write point: a process killed at its rename leaves no result file, torn or whole (the run
    is trained again next night: tests/test_faults.py shows the resume), and the next write of it lands."""
    from trainguard.core.history import EpochRecord, History
    from trainguard.stores.results import ResultStore
    from trainguard.core.spec import RunSpec, TrainConfig

    spec_code = "RunSpec('smoke', 'Baseline1', 100, 1, TrainConfig(), 'data', 'cpu')"
    _killed_child(tmp_path, f"""
        from trainguard.core.history import EpochRecord, History
        from trainguard.stores.results import ResultStore
        from trainguard.core.spec import RunSpec, TrainConfig
        spec = {spec_code}
        history = History('Baseline1', 100, 'cpu', 10, [EpochRecord(1, 2.0, 10.0, 2.1, 11.0, 0.1)], key=spec.key())
        ResultStore({str(tmp_path / "results")!r}).put(spec, history)
    """, patch=_kill_on_call("os", "replace", 1))  # killed at the rename: the temporary file is all it wrote
    store = ResultStore(tmp_path / "results")
    spec = RunSpec("smoke", "Baseline1", 100, 1, TrainConfig(), "data", "cpu")  # the child's spec_code
    assert store.get(spec) is None and not list((tmp_path / "results").rglob("*.json"))
    store.put(spec, History("Baseline1", 100, "cpu", 10, [EpochRecord(1, 2.0, 10.0, 2.1, 11.0, 0.1)], key=spec.key()))
    assert store.get(spec).epochs[0].test_acc == 11.0


# ------------------------------------------------------------------------------------ bounded waits

def test_a_child_that_hangs_is_killed_with_a_message_naming_it(monkeypatch):
    monkeypatch.setenv("TRAINGUARD_CHILD_TIMEOUT", "1")
    started = time.monotonic()
    with pytest.raises(storage.WaitTimeout, match=r"a sleeping test double: the child process ran past 1 s and was "
                                                  r"killed \(the bound: TRAINGUARD_CHILD_TIMEOUT"):
        watchdog.run_child([sys.executable, "-c", "import time; time.sleep(60)"], "a sleeping test double")
    assert time.monotonic() - started < 30


def test_a_hung_keras_child_is_a_timed_out_run_and_the_night_goes_on(tmp_path, monkeypatch):
    """The Keras child of the MNIST plug-in hangs before it starts (a sitecustomize that sleeps, only in children):
    the run is a timeout naming what hung, never cached, and nothing raises."""
    import numpy as np

    from trainguard.experiments import mnist_overfit
    from trainguard.runs.experiment_runs import train
    from trainguard.stores import data

    fake = data.synthetic("mnist", train_per_class=4, test_per_class=2)
    (tmp_path / "data").mkdir()
    np.savez(tmp_path / "data" / "mnist.npz", x_train=fake.x_train, y_train=fake.y_train, x_test=fake.x_test,
             y_test=fake.y_test)
    hang = tmp_path / "hang"
    hang.mkdir()
    (hang / "sitecustomize.py").write_text("import time\ntime.sleep(120)\n")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(hang), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv("TRAINGUARD_CHILD_TIMEOUT", "1")
    settings = mnist_overfit.Settings(train_images=20, epochs=1, check_seeds=(100,), baseline_seeds=(1, 2))
    record = train(mnist_overfit.make(settings, "keras"), "nodrop", 0, 1, data_dir=tmp_path / "data")
    assert record.status == "timeout" and "the Keras run (dropout 0.0, seed 0)" in record.message
    assert "TRAINGUARD_CHILD_TIMEOUT" in record.message and not record.completed


def test_a_lock_never_released_fails_that_run_not_the_night(tmp_path, monkeypatch, smoke_runs):
    from trainguard.runs.matrix import Matrix
    from trainguard.runs.training import deliver
    from trainguard.runs.options import Options
    from trainguard.core.spec import load_profile

    monkeypatch.setenv("TRAINGUARD_LOCK_TIMEOUT", "1")
    matrix = Matrix(Options(load_profile("smoke"), device="cpu", baselines_dir=tmp_path / "b",
                            results_dir=tmp_path / "results", run_log=None), printer=lambda s: None)
    lock = matrix.store.path(matrix.run_spec("Baseline1", 100)).with_suffix(".lock")
    lock.parent.mkdir(parents=True)
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from filelock import FileLock
        held = FileLock({str(lock)!r})
        held.acquire()
        print("held", flush=True)
        time.sleep(60)
    """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        history = deliver(matrix, "Baseline1")
    finally:
        holder.kill()
        holder.wait()
    assert history.status == "timeout" and str(lock) in history.message and "TRAINGUARD_LOCK_TIMEOUT" in history.message


def test_a_night_past_its_time_limit_still_writes_its_report_and_ledger_entry_and_fails(tmp_path, smoke_runs, capsys):
    from trainguard import cli

    baselines_dir = smoke_runs.copy_baseline(tmp_path / "b").parent
    code = cli.main(["run", "--profile", "smoke", "--device", "cpu", "--no-replay", "--no-figures",
                     "--max-minutes", "0.0001", "--results-dir", str(tmp_path / "results"),
                     "--baselines-dir", str(baselines_dir), "--run-log", str(tmp_path / "runlog.jsonl"),
                     "--ledger-dir", str(tmp_path / "ledger"), "--report", str(tmp_path / "report.md")])
    assert code == 1
    report = (tmp_path / "report.md").read_text()
    assert "time limit (0.0001 min" in report and "FAIL" in report
    entries = open_ledger(tmp_path / "ledger" / "ledger.sqlite").read("smoke", "cpu")
    assert len(entries) == 1 and entries[0]["result"] == "FAIL"
    assert watchdog.remaining() is None  # the limit ends with the night


def test_a_full_disk_is_exit_2_naming_the_path(tmp_path, smoke_runs):
    """A file-size limit on the process (what a full disk looks like to a writer): the report cannot be written;
    exit 2 with one sentence naming the file, no traceback."""
    import resource

    baselines_dir = smoke_runs.copy_baseline(tmp_path / "b").parent
    results = smoke_runs.copy(tmp_path / "results")

    open_ledger(tmp_path / "ledger" / "ledger.sqlite")  # an existing ledger: the report is the first file to write

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))

    done = subprocess.run([sys.executable, "-m", "trainguard.cli", "run", "--profile", "smoke", "--device", "cpu",
                           "--no-replay", "--no-figures", "--results-dir", str(results), "--baselines-dir",
                           str(baselines_dir), "--run-log", str(tmp_path / "runlog.jsonl"),
                           "--ledger-dir", str(tmp_path / "ledger"), "--report", str(tmp_path / "report.md")],
                          capture_output=True, text=True, timeout=300, preexec_fn=limit,
                          env={**os.environ, "PYTHONPATH": str(ROOT), "CI": ""})
    assert done.returncode == 2, done.stderr[-3000:]
    # the first file past the limit is the ledger's write-ahead log or the report, whichever the night writes first
    assert ("trainguard: error: cannot write" in done.stderr or "trainguard: error: ledger sqlite" in done.stderr)
    assert "file-size limit" in done.stderr and "Traceback" not in done.stderr
    assert str(tmp_path) in done.stderr


def test_a_report_that_cannot_be_written_names_its_path(tmp_path, monkeypatch):
    """A full disk while the report is written (a file object's write names no file): the error names the path,
    the sentence says what it means, and no temporary file is left."""
    real = os.fdopen

    def failing_fdopen(fd, mode="r", *args, **kwargs):
        handle = real(fd, mode, *args, **kwargs)
        if "w" in mode:
            class Full:
                def __enter__(self):
                    return self

                def __exit__(self, *exc):
                    handle.close()

                def write(self, data):
                    raise OSError(28, "No space left on device")
            return Full()
        return handle

    monkeypatch.setattr(os, "fdopen", failing_fdopen)
    with pytest.raises(OSError) as error:
        storage.atomic_write_text(tmp_path / "report.md", "x")
    monkeypatch.undo()
    assert error.value.filename == str(tmp_path / "report.md")
    assert storage.environment_error(error.value).startswith(f"cannot write {tmp_path / 'report.md'}: the disk is full")
    assert not list(tmp_path.glob(".report.md.*.tmp"))


def test_a_ledger_that_cannot_be_written_is_exit_2_naming_it(tmp_path, smoke_runs):
    """The same limit on a new ledger database: SQLite's own I/O error becomes one sentence naming the ledger."""
    import resource

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))

    done = subprocess.run([sys.executable, "-m", "trainguard.cli", "ledger", "import", str(ROOT / "docs" / "nightly-acceptance"),
                           "--ledger", str(tmp_path / "new.sqlite")], capture_output=True, text=True, timeout=300,
                          preexec_fn=limit, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 2, done.stderr[-3000:]
    assert f"ledger sqlite:///{tmp_path / 'new.sqlite'}:" in done.stderr and "Traceback" not in done.stderr
