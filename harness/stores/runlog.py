"""The run log: every training run appends structured events as JSON lines.

In the spirit of MLPerf's logging: ``run_start`` (config, versions, seed, device, data),
one ``epoch_end`` per epoch with its metrics, ``run_stop`` with the status. A run can be
audited from it, and the report re-rendered from it alone (``trainguard report --from-log``).

Each event is one ``write`` of one line to a file opened with O_APPEND and fsynced, so
concurrent writers (pytest-xdist workers, two runs) interleave whole lines, never halves;
events carry the run's key, so interleaved runs can be told apart.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from ..core.history import EpochRecord, History
from ..core.storage import append_line, read_json_lines

EVENTS = ("run_start", "epoch_end", "run_stop")


class RunLog:
    def __init__(self, path: Path | str | None) -> None:
        self.path = Path(path) if path else None

    def event(self, event: str, **fields) -> None:
        if self.path is None:
            return
        record = {"time": dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds"), "event": event, **fields}
        append_line(self.path, json.dumps(record, sort_keys=True, default=str))

    def run_start(self, run: str, model: str, seed: int, **fields) -> None:
        self.event("run_start", run=run, model=model, seed=seed, **fields)

    def epoch_end(self, run: str, record: EpochRecord) -> None:
        self.event("epoch_end", run=run, epoch=record.epoch, train_loss=record.train_loss, train_acc=record.train_acc,
                   test_loss=record.test_loss, test_acc=record.test_acc, seconds=record.seconds, extra=record.extra)

    def run_stop(self, run: str, history: History) -> None:
        self.event("run_stop", run=run, status=history.status, epochs=len(history.epochs),
                   failed_epoch=history.failed_epoch, message=history.message, peak_memory_mb=history.peak_memory_mb)

    def read(self) -> list[dict]:
        """Every event appended so far (the ledger's ``read``: the same errors for a damaged line)."""
        return read_events(self.path)


def read_events(path: Path | str) -> list[dict]:
    """Every event in the log; a line that is not a JSON event is an error naming file and line."""
    return read_json_lines(path, "run log", lambda e: e.get("event") in EVENTS and "run" in e,
                           f"a trainguard event (expected an object with 'event' in {EVENTS} and 'run')")


def histories_from_log(path: Path | str, profile: str | None = None) -> dict[tuple[str, int], History]:
    """The last completed run per (model, seed) in the log, optionally only those of ``profile``."""
    runs: dict[str, History] = {}
    latest: dict[tuple[str, int], History] = {}
    for event in read_events(path):
        run = event["run"]
        if event["event"] == "run_start":
            if profile is not None and event.get("profile") != profile:
                continue
            runs[run] = History(model=event["model"], seed=event["seed"], device=event.get("device", "?"),
                                parameters=event.get("parameters", 0), key=event.get("key", run),
                                spec={k: event[k] for k in ("profile", "device_class", "training", "versions")
                                      if k in event})
        elif run in runs and event["event"] == "epoch_end":
            fields = {k: event[k] for k in ("epoch", "train_loss", "train_acc", "test_loss", "test_acc", "seconds")}
            runs[run].epochs.append(EpochRecord(**fields, extra=event.get("extra", {})))
        elif run in runs and event["event"] == "run_stop":
            history = runs.pop(run)
            history.status, history.failed_epoch = event["status"], event.get("failed_epoch")
            history.message = event.get("message", "")
            history.peak_memory_mb = event.get("peak_memory_mb")
            if history.completed:
                latest[(history.model, history.seed)] = history
    return latest
