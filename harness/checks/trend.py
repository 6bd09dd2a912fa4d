"""Between nights: the history entry of a run, drift (a step between the last two runs) and speed.

Both checks are instruments with a stated false-alarm rate, like the baseline bands:

- **drift**: this run's mean of k seeds against the previous run's mean, per cell and checked metric,
  through :func:`trainguard.core.stats.drift_band` (the baseline's per-seed spread, the profile's
  family-wise false-alarm rate split over the drift checks). A step that coincides with a change of
  library versions, data, training configuration or commit names that change as the likely cause.
- **speed**: this run's median epoch time per model against earlier runs *on the same hardware*
  (never an absolute time across machines), by ratio, through :func:`trainguard.core.stats.slowdown_bound`
  (one-sided; needs 3 earlier runs that trained the model, to measure the between-night noise).

Runs whose results came from the cache are recorded, but carry no timing: it was not measured tonight.
Both checks flag; they fail the run only when asked (``--fail-on-drift``, ``--fail-on-slowdown``).
"""

from __future__ import annotations

import datetime as dt
import math
import os
import statistics
import uuid

from ..core import stats
from ..core.compare import Verdict, check_band
from ..core.environment import cpu_name, git_commit, versions
from ..core.spec import METRIC_LABELS

LABELS = dict(METRIC_LABELS)


def hardware(device_name: str) -> str:
    """What a speed comparison must hold fixed: the processor (or GPU) and the cores available."""
    if device_name != "cpu":
        return device_name
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{cpu_name()}, {cores} cores"


def speed_of(histories: list, images: int) -> dict:
    """Median epoch seconds (epoch 1 left out: warm-up), images per second, peak memory, and the within-run
    standard error of the median of log epoch times (the speed check's noise floor)."""
    seconds = [e.seconds for h in histories for e in h.epochs[1:] if e.seconds > 0]
    if len(seconds) < 2:
        return {"trained": True, "epochs": len(seconds)}
    timed = epoch_times(seconds)
    peaks = [h.peak_memory_mb for h in histories if h.peak_memory_mb is not None]
    return {"trained": True, "epochs": len(seconds), "epoch_seconds": timed["epoch_seconds"],
            "images_per_second": images / timed["epoch_seconds"], "log_se": timed["log_se"],
            "peak_memory_mb": max(peaks) if peaks else None}


def epoch_times(seconds: list[float]) -> dict:
    """Two or more positive epoch times → their median, and the standard error of the median of their logs (the
    speed check's noise floor): what a model's speed and an experiment's variant's speed both record."""
    logs = [math.log(s) for s in seconds]
    return {"epoch_seconds": statistics.median(seconds), "log_se": 1.2533 * statistics.stdev(logs) / math.sqrt(len(logs))}


def history_entry(matrix, experiments: dict | None = None, sources: dict | None = None) -> dict:
    """The compact record of one run that later nights compare against (its ``result`` and ``failed``
    are set by :func:`trainguard.api.summarize` once every verdict, flags included, is known). ``experiments``: the
    declared experiments' values, name → variant → budget → metric → seed → value
    (trainguard.checks.declared_experiments.night_cells)."""
    from .baseline import checked_value
    from ..engines.engine import device_name

    profile, seeds = matrix.profile, matrix.seeds
    cells: dict = {}
    for model in profile.models:
        histories = [matrix.histories.get((model, s)) for s in seeds]
        if not all(h is not None and h.completed for h in histories):
            continue
        for budget in profile.budgets:
            cells.setdefault(model, {})[str(budget)] = {
                metric: {str(s): checked_value(matrix, model, budget, metric, (s,)) for s in seeds}
                for metric in profile.checked_metrics}
    speed = {}
    for model in profile.models:
        histories = [matrix.histories[(model, s)] for s in seeds if (model, s) in matrix.histories]
        if histories and all((model, s) in matrix.trained for s in seeds):
            speed[model] = speed_of(histories, len(matrix.dataset.x_train))
        elif histories:
            speed[model] = {"trained": False}
    return {
        "run_id": uuid.uuid4().hex[:12],
        "time": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "profile": profile.name, "device_class": matrix.device_class, "hardware": hardware(device_name(matrix.device)),
        "commit": git_commit(), "versions": versions(),
        "data": matrix.data_fingerprint if profile.models else None,  # experiments alone: each its own inputs
        "training": {m: vars(profile.training(m)) for m in profile.models},
        "seeds": list(seeds), "window": profile.statistics.window,
        "cells": cells, "speed": speed, "experiments": experiments or {},
        "sources": sources or {},  # a declared experiment's name → its source fingerprint (a drift's likely cause)
    }


def likely_causes(before: dict, now: dict, model: str | None = None, experiment: str | None = None,
                  formerly: tuple[str, ...] = ()) -> list[str]:
    """What changed between two runs that could explain a step; ``experiment``: the declared experiment whose cell
    stepped (its own source is then a cause when it changed, and its rename where the earlier run knew it under one
    of the names it had ``formerly``)."""
    causes, sources = [], before.get("sources", {})
    old_name = next((n for n in formerly if n in sources), None) if experiment not in sources else None
    if old_name is not None:
        causes.append(f"experiment {old_name} renamed {experiment}")
    elif experiment is not None and experiment not in sources and before.get("profile") in formerly:
        causes.append(f"profile {before['profile']}'s models now checked as experiment {experiment}")
    was, now_source = sources.get(old_name or experiment), now.get("sources", {}).get(experiment)
    if experiment is not None and was and now_source and was != now_source:
        causes.append(f"the source of experiment {experiment} ({was[:12]} → {now_source[:12]})")
    for name in sorted(set(before.get("versions", {})) | set(now.get("versions", {}))):
        a, b = before.get("versions", {}).get(name), now.get("versions", {}).get(name)
        if a != b:
            causes.append(f"{name} {a} → {b}")
    if before.get("data") != now.get("data"):
        causes.append("the data changed (fingerprint)")
    if model is not None and before.get("training", {}).get(model) != now.get("training", {}).get(model):
        a, b = before.get("training", {}).get(model, {}), now.get("training", {}).get(model, {})
        causes.append("training config " + ", ".join(f"{k} {a.get(k)} → {b.get(k)}" for k in sorted(set(a) | set(b))
                                                     if a.get(k) != b.get(k)))
    if before.get("commit") != now.get("commit"):
        causes.append(f"commit {before.get('commit')} → {now.get('commit')}")
    if before.get("hardware") != now.get("hardware"):
        causes.append(f"hardware {before.get('hardware')} → {now.get('hardware')}")
    return causes


def _mean(per_seed: dict) -> float:
    return statistics.fmean(per_seed.values())


def drift_checks(before: dict, now: dict, formerly: dict | None = None) -> list[tuple]:
    """(kind, name, budget, metric, previous values, current values) that both runs hold; ``formerly``: a declared
    experiment's name → the names it had before (a renamed experiment's previous night holds it under one of them)."""
    checks = []
    for model, budgets in now.get("cells", {}).items():
        for budget, metrics in budgets.items():
            for metric, values in metrics.items():
                old = before.get("cells", {}).get(model, {}).get(budget, {}).get(metric)
                if old:
                    checks.append(("cell", model, int(budget), metric, old, values))
    recorded = before.get("experiments", {})
    for name, variants in now.get("experiments", {}).items():
        former = (formerly or {}).get(name, ())
        earlier = recorded.get(name) or next((recorded[n] for n in former if n in recorded), None)
        if earlier is None and before.get("profile") in former:  # it replaces that profile's models: their cells
            earlier = before.get("cells", {})
        earlier = earlier or {}
        for variant, budgets in variants.items():
            for budget, metrics in budgets.items():
                for metric, values in metrics.items():
                    old = earlier.get(variant, {}).get(budget, {}).get(metric)
                    if old:
                        checks.append(("experiment", (name, variant), int(budget), metric, old, values))
    return checks


def drift_verdicts(before: dict | None, now: dict, table, experiment_tables: dict, false_alarm_rate: float,
                   power: float) -> tuple[list[Verdict], list[str]]:
    """One verdict per cell and metric that both runs hold (check ``drift``), and notes on what was not checked.
    ``table``: the models' baseline (the seed noise of a cell); ``experiment_tables``: a declared experiment's name →
    its baseline seeds' values (trainguard.checks.experiment_night.ExperimentTable)."""
    if before is None:
        return [], ["drift: no earlier run of this profile on this device class in the ledger"]
    formerly = {name: found.experiment.formerly for name, found in experiment_tables.items()}  # renamed experiments
    checks, notes = drift_checks(before, now, formerly), []
    comparable = []
    for check in checks:
        kind, name, budget, metric, old, values = check
        if kind == "cell":
            if table is None or not table.has(metric) or now.get("window") != before.get("window"):
                continue
            comparable.append((check, table.values(name, budget, metric, now["window"]), table.resolution(metric),
                               _direction(table, metric)))
        elif (found := experiment_tables.get(name[0])) is not None and found.has(metric):
            comparable.append((check, found.values(name[1], budget, metric), found.resolution(metric),
                               _direction(found, metric)))
    if not comparable:
        return [], ["drift: nothing comparable between the last two runs (no baseline to measure the seed noise)"]
    alpha = stats.per_check_alpha(false_alarm_rate, len(comparable))
    verdicts = []
    for (kind, name, budget, metric, old, values), baseline_values, resolution, lower in comparable:
        band = stats.drift_band(baseline_values, _mean(old), len(old), len(values), alpha, resolution, power)
        subject = f"{name}-{budget}" if kind == "cell" else f"{name[0]} {name[1]}-{budget}"
        verdict = check_band(subject, metric, LABELS.get(metric, metric), _mean(values), band,
                             f"the previous run ({before.get('time', '?')}, commit {before.get('commit', '?')})",
                             check="drift", model=name if kind == "cell" else None, budget=budget,
                             lower_is_better=lower)
        if not verdict.passed:
            mine = name[0] if kind == "experiment" else _only_source(now)
            renamed = formerly.get(mine) or getattr(getattr(table, "experiment", None), "formerly", ())
            causes = likely_causes(before, now, name if kind == "cell" else None, mine, renamed)
            message = verdict.message.replace("REGRESSION (worse than baseline)", "STEP (worse than the previous run)")
            message = message.replace("DEVIATION (better than baseline: check what changed)",
                                      "STEP (better than the previous run)")
            message += f"; changed since: {'; '.join(causes)}" if causes else "; nothing recorded changed (seeds noise?)"
            verdict = Verdict(**{**verdict.__dict__, "message": message})
        verdicts.append(verdict)
    return verdicts, notes


def _only_source(entry: dict) -> str | None:
    """The experiment a ``trainguard guard`` night records (its variants stand where a profile's models do)."""
    sources = entry.get("sources", {})
    return next(iter(sources)) if len(sources) == 1 and not entry.get("experiments") else None


def _direction(table, metric: str) -> bool | None:
    """A declared metric's direction, where the table knows it (an experiment's); None: the metric's name decides."""
    known = getattr(table, "lower_is_better", None)
    return known(metric) if known is not None else None


def speed_verdicts(earlier: list[dict], now: dict, false_alarm_rate: float) -> tuple[list[Verdict], list[str]]:
    """Per model trained tonight: median epoch time against earlier runs on the same hardware (check ``speed``)."""
    models = [m for m, s in now.get("speed", {}).items() if s.get("epoch_seconds")]
    if not models:
        return [], ["speed: nothing trained tonight (all results cached), so nothing timed"]
    alpha = stats.per_check_alpha(false_alarm_rate, len(models))
    verdicts, notes = [], []
    for model in models:
        mine = now["speed"][model]
        # earlier timed runs on this hardware, less those flagged slow: a known-slow night is not the machine's
        # normal speed, and would widen the noise estimate until nothing could be flagged again
        reference = [e["speed"][model] for e in earlier
                     if e.get("hardware") == now.get("hardware") and e.get("speed", {}).get(model, {}).get("epoch_seconds")
                     and not e["speed"][model].get("slowdown")]
        if len(reference) < 3:
            notes.append(f"speed {model}: {len(reference)} of 3 earlier timed runs on {now.get('hardware')} (runs "
                         f"flagged slow left out); not checked yet")
            continue
        logs = [math.log(r["epoch_seconds"]) for r in reference]
        floor = max([mine.get("log_se", 0.0)] + [r.get("log_se", 0.0) for r in reference])
        bound, std = stats.slowdown_bound(logs, floor, alpha)
        typical = math.exp(statistics.fmean(logs))
        ratio = mine["epoch_seconds"] / typical
        passed = math.log(mine["epoch_seconds"]) <= bound
        message = (f"{model} speed: {mine['epoch_seconds']:.3f} s per epoch, {ratio:.2f}× the typical "
                   f"{typical:.3f} s of {len(reference)} earlier runs on {now.get('hardware')}; slowdown flagged above "
                   f"{math.exp(bound) / typical:.2f}× (between-night std {std:.3f} in log time, α {alpha:.2g} one-sided)"
                   + ("" if passed else " — SLOWDOWN"))
        if not passed:
            mine["slowdown"] = True  # recorded in the history entry: later nights leave it out of their reference
        verdicts.append(Verdict("speed", f"{model} speed", passed, message, model=model, metric="epoch_seconds",
                                measured=mine["epoch_seconds"], expected=typical, allowed=math.exp(bound) - typical))
    return verdicts, notes


def history_rows(entries: list[dict], last: int = 10) -> list[dict]:
    """The last runs, one row per cell and run (grouped by cell, runs oldest first): the checked statistic per
    metric (mean over the run's seeds), the median epoch time and the peak memory."""
    rows = []
    for entry in entries[-last:]:
        for model, budgets in entry.get("cells", {}).items():
            for budget, metrics in budgets.items():
                speed = entry.get("speed", {}).get(model, {})
                rows.append({"run": entry.get("time", "?")[:16].replace("T", " "), "commit": entry.get("commit", "?"),
                             "result": entry.get("result", "?"), "cell": f"{model}-{budget}",
                             **{LABELS.get(m, m): round(_mean(v), 4) for m, v in metrics.items()},
                             "epoch s": round(speed["epoch_seconds"], 3) if speed.get("epoch_seconds") else "cached",
                             "peak MiB": round(speed["peak_memory_mb"]) if speed.get("peak_memory_mb") else "—"})
    return sorted(rows, key=lambda row: row["cell"])  # stable: each cell's runs stay in time order


def experiment_rows(entries: list[dict], last: int = 10) -> dict[str, list[dict]]:
    """The declared experiments of the last runs, per experiment (their metrics are their own): one row per variant,
    budget and run, grouped by cell and oldest first — each declared metric's mean over the run's seeds, and the
    variant's seconds per epoch where it was trained and timed that night."""
    found: dict[str, list[dict]] = {}
    for entry in entries[-last:]:
        for name, variants in entry.get("experiments", {}).items():
            for variant, budgets in variants.items():
                speed = entry.get("speed", {}).get(f"{name} {variant}", {})
                for budget, metrics in budgets.items():
                    found.setdefault(name, []).append({
                        "run": entry.get("time", "?")[:16].replace("T", " "), "commit": entry.get("commit", "?"),
                        "result": entry.get("result", "?"), "cell": f"{variant}-{budget}",
                        **{m: round(_mean(v), 4) for m, v in metrics.items() if v},
                        "epoch s": round(speed["epoch_seconds"], 3) if speed.get("epoch_seconds") else "cached"})
    return {name: sorted(rows, key=lambda row: row["cell"]) for name, rows in sorted(found.items())}


def series(entries: list[dict], model: str, budget: int, metric: str) -> list[float | None]:
    """One cell's checked value per run (None where the run does not hold it), oldest first."""
    return [_mean(v) if (v := e.get("cells", {}).get(model, {}).get(str(budget), {}).get(metric)) else None
            for e in entries]
