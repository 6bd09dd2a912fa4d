"""An experiment's night in the ledger: the record later nights compare against, in the same shape as a profile's
(trainguard.checks.trend.history_entry), so the ledger's instruments read it unchanged — drift (a step since the
previous night, against the baseline's seed noise), speed (median epoch time against earlier nights on the same
hardware), ``trainguard ledger`` and the dashboard. An experiment's variant takes the place of a model; its
declared metrics are the checked metrics.
"""

from __future__ import annotations

import datetime as dt
import statistics
import uuid

from collections.abc import Iterable

from ..core.environment import git_commit, versions
from ..core.experiment import Cell, Experiment
from ..stores.experiment_records import Record
from .experiment_bands import BandVerdict
from .trend import drift_verdicts, epoch_times, hardware, speed_verdicts


class ExperimentTable:
    """The baseline seeds' values as drift reads a baseline table (values per cell, the metric's resolution): each
    cell's statistic as the experiment defines it (:meth:`Experiment.cells`), as its ledger cells hold it."""

    def __init__(self, baseline: dict[tuple[str, int], Record], experiment: Experiment) -> None:
        self.records = [r for r in baseline.values() if r.completed]
        self.experiment = experiment
        self.cells = {(c.variant, c.budget, c.metric): c for c in experiment.cells()}

    def lower_is_better(self, metric: str) -> bool | None:
        return {"lower": True, "higher": False}.get(self.experiment.direction(metric))

    def has(self, metric: str) -> bool:
        return all(self.experiment.source(metric) in r.epochs for r in self.records)

    def values(self, variant: str, budget: int, metric: str, window: int | None = None) -> list[float]:
        """The baseline seeds' values of a cell; ``window`` (the ledger entry's) for a cell the experiment no longer
        declares — one the ledger holds from before — read as the budgets' cells are."""
        cell = self.cells.get((variant, budget, metric))
        if cell is None:
            cell = Cell(variant, budget, metric, metric, budget, window or self.experiment.window)
        return [cell.value(r) for r in self.records if r.variant == variant]

    def resolution(self, metric: str) -> float:
        return self.experiment.resolution(metric)


def variant_cells(experiment: Experiment, night: dict[tuple[str, int], Record]) -> dict:
    """variant → budget → metric → seed → value, for each variant whose runs in ``night`` all completed (a failed run
    measured nothing): what the ledger keeps of an experiment's night, alone or in a profile's."""
    cells: dict = {}
    for cell in experiment.cells():
        records = [r for (v, _), r in sorted(night.items()) if v == cell.variant]
        if records and all(r.completed for r in records):
            cells.setdefault(cell.variant, {}).setdefault(str(cell.budget), {})[cell.metric] = {
                str(r.seed): cell.value(r) for r in records}
    return cells


def variant_speed(experiment: Experiment, night: dict[tuple[str, int], Record], prefix: str = "") -> dict:
    """``prefix``VARIANT → the speed of its runs trained in this process tonight, as the models' speed is measured
    (trainguard.checks.trend.speed_of): the median of their epochs' seconds, epoch 1 of each run left out (warm-up),
    with the standard error of its log (the speed check's noise floor). An epoch's seconds are the interval between
    the function's reports, or what it stated (Run.epoch_time: the plug-ins state their training time, evaluation
    left out). A run that kept no epoch times (a stack whose function stated none) counts as its seconds over its
    epochs. {"trained": False} for a variant whose runs all came from the cache (their seconds are another night's)
    or ran elsewhere (a Ray worker's host is not this one)."""
    speed = {}
    for variant in experiment.variants:
        runs = [r for (v, _), r in sorted(night.items()) if v == variant and r.completed and getattr(r, "trained_here", False)]
        seconds = [s for r in runs for s in (r.epoch_seconds[1:] if len(r.epoch_seconds) > 1 else
                                             [r.seconds / r.epochs_asked])]
        speed[f"{prefix}{variant}"] = _speed(seconds) if seconds else {"trained": False}
    return speed


def _speed(seconds: list[float]) -> dict:
    found = {"trained": True, "epochs": len(seconds), "epoch_seconds": statistics.median(seconds)}
    if len(positive := [s for s in seconds if s > 0]) > 1:
        found["log_se"] = epoch_times(positive)["log_se"]  # the median's noise, as a model's speed records it
    return found


def night_entry(experiment: Experiment, night: dict[tuple[str, int], Record], verdicts: list[BandVerdict],
                device: str = "cpu") -> dict:
    """The ledger record of one ``trainguard guard … check``; ``device``: its arithmetic class (``cpu``,
    ``cuda-bf16`` …: trainguard.stores.experiment_records.arithmetic_class), which earlier nights it is compared with."""
    seeds = sorted({seed for _, seed in night})
    cells, speed = variant_cells(experiment, night), variant_speed(experiment, night)
    failed = [v for v in verdicts if not v.passed]
    return {"run_id": uuid.uuid4().hex[:12], "time": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "profile": experiment.name, "device_class": device, "hardware": hardware(device.split("-")[0]),
            "commit": git_commit(),
            "versions": {k: str(v) for k, v in versions().items()}, "data": _inputs(night),
            "training": {variant: {k: v for k, v in settings.items() if isinstance(v, (int, float, str, bool))}
                         for variant, settings in experiment.variants.items()},
            "seeds": seeds, "window": experiment.window, "cells": cells, "speed": speed, "experiments": {},
            "sources": {experiment.name: experiment.source_fingerprint()},
            "result": "FAIL" if failed else "PASS", "failed": [v.case for v in failed],
            "failures": [v.message for v in failed][:50], "flags": [], "replay": {},
            "bands": {"metric": next(iter(experiment.metrics)),
                      **{f"{v.variant}-{v.budget}": [v.band.low, v.band.high] for v in verdicts
                         if v.band is not None and v.metric == next(iter(experiment.metrics))}},
            "experiment_bands": every_metric_bands(experiment.name, (
                (v.metric, v.variant, v.budget, v.band.low, v.band.high) for v in verdicts if v.band is not None))}


def every_metric_bands(name: str, bands: Iterable[tuple[str, str, int, float, float]]) -> dict:
    """The night record's ``experiment_bands``: {name: metric → "VARIANT-BUDGET" → [low, high]} from (metric, variant,
    budget, low, high) of every band judged — what the dashboard shades behind the charts of each metric, a guard
    night's and a profile's declared experiments' alike ("bands" keeps the first one, the models' form)."""
    found: dict = {}
    for metric, variant, budget, low, high in bands:
        found.setdefault(metric, {})[f"{variant}-{budget}"] = [low, high]
    return {name: found} if found else {}


def _inputs(night: dict[tuple[str, int], Record]) -> str | None:
    """One fingerprint of every declared input of the night's runs (the ledger's "data changed" cause)."""
    import hashlib

    found = sorted({f"{k}={v}" for r in night.values() for k, v in r.inputs.items()})
    return hashlib.sha256("\n".join(found).encode()).hexdigest() if found else None


def between_nights(entry: dict, earlier: list[dict], baseline: dict[tuple[str, int], Record], experiment: Experiment,
                   false_alarm_rate: float = 0.01, power: float = 0.9) -> tuple[list, list[str]]:
    """Drift against the previous night and speed against the earlier ones (flags), and what was not compared."""
    drift, drift_notes = drift_verdicts(earlier[-1] if earlier else None, entry, ExperimentTable(baseline, experiment),
                                        {}, false_alarm_rate, power)
    speed, speed_notes = speed_verdicts(earlier, entry, false_alarm_rate)
    flags = drift + speed
    entry["flags"] = [f.message for f in flags if not f.passed]
    return flags, drift_notes + speed_notes
