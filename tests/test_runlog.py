"""The JSON-lines run log: events per run, histories rebuilt from it, damage named."""

import json
import multiprocessing

import pytest

from trainguard.core.history import EpochRecord
from trainguard.stores.runlog import RunLog, histories_from_log, read_events
from trainguard.core.spec import ConfigError


def _record(epoch, loss):
    return EpochRecord(epoch=epoch, train_loss=loss, train_acc=50.0, test_loss=loss, test_acc=40.0, seconds=1.0)


def _write_run(log, run, model, seed, losses, status="completed", profile="ci"):
    log.run_start(run, model, seed, profile=profile, key=f"key-{run}")
    for epoch, loss in enumerate(losses, 1):
        log.epoch_end(run, _record(epoch, loss))
    log.event("run_stop", run=run, status=status, failed_epoch=None, message="")


def test_histories_are_rebuilt_from_interleaved_runs(tmp_path):
    log = RunLog(tmp_path / "log.jsonl")
    log.run_start("a", "Baseline1", 0, profile="ci")
    log.run_start("b", "Baseline2", 0, profile="ci")
    log.epoch_end("a", _record(1, 2.0))
    log.epoch_end("b", _record(1, 1.5))
    log.epoch_end("a", _record(2, 1.9))
    log.event("run_stop", run="a", status="completed")
    log.event("run_stop", run="b", status="diverged", failed_epoch=2)  # not a result
    histories = histories_from_log(tmp_path / "log.jsonl", "ci")
    assert list(histories) == [("Baseline1", 0)]
    assert [e.train_loss for e in histories[("Baseline1", 0)].epochs] == [2.0, 1.9]


def test_the_latest_completed_run_wins_and_profiles_are_kept_apart(tmp_path):
    log = RunLog(tmp_path / "log.jsonl")
    _write_run(log, "old", "Baseline1", 0, [2.0])
    _write_run(log, "new", "Baseline1", 0, [1.0])
    _write_run(log, "other", "Baseline1", 0, [9.0], profile="seed")
    _write_run(log, "cut", "Baseline1", 0, [5.0], status="interrupted")
    assert histories_from_log(tmp_path / "log.jsonl", "ci")[("Baseline1", 0)].epochs[0].train_loss == 1.0
    assert histories_from_log(tmp_path / "log.jsonl", "seed")[("Baseline1", 0)].epochs[0].train_loss == 9.0


def test_every_event_has_time_event_and_run(tmp_path):
    _write_run(RunLog(tmp_path / "log.jsonl"), "r", "NewModel2", 3, [1.0, 0.5])
    events = read_events(tmp_path / "log.jsonl")
    assert [e["event"] for e in events] == ["run_start", "epoch_end", "epoch_end", "run_stop"]
    assert all({"time", "event", "run"} <= set(e) for e in events)


def test_damaged_log_is_an_error_naming_file_and_line(tmp_path):
    path = tmp_path / "log.jsonl"
    _write_run(RunLog(path), "r", "Baseline1", 0, [1.0])
    with path.open("a") as handle:
        handle.write('{"event": "epoch_end", "run": "r", "epo\n')  # a line damaged in the middle of the log
    _write_run(RunLog(path), "r2", "Baseline1", 1, [1.0])
    with pytest.raises(ConfigError, match=r"log.jsonl, line 4: not JSON"):
        read_events(path)
    path.write_text(json.dumps({"hello": 1}) + "\n")
    with pytest.raises(ConfigError, match="line 1: not a trainguard event"):
        read_events(path)
    with pytest.raises(ConfigError, match="does not exist"):
        read_events(tmp_path / "missing.jsonl")


def _writer(path, name):
    log = RunLog(path)
    for i in range(200):
        log.event("epoch_end", run=name, epoch=i, payload="x" * 300)


def test_concurrent_writers_never_interleave_within_a_line(tmp_path):
    path = tmp_path / "log.jsonl"
    processes = [multiprocessing.Process(target=_writer, args=(path, f"w{i}")) for i in range(3)]
    for p in processes:
        p.start()
    for p in processes:
        p.join()
    events = read_events(path)  # raises if any line were torn
    assert len(events) == 600 and {e["run"] for e in events} == {"w0", "w1", "w2"}
