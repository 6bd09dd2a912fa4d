"""The baseline bands: every model × budget against the per-seed baseline measured on this device class.

Each band check (``Profile.band_checks``: the cell's metrics at its budget, and the start of the learning
curve where asked) reads one statistic — its series averaged over a window of epochs, then over the night's
seeds — and is judged against the band derived from the same statistic of the baseline's n seeds
(docs/statistics.md). A run whose evaluation was not repeatable fails the cell before any band.

Every band keeps all the baseline's seeds; a seed far from the others (``tails``, ``stats.tail_screen``) is
named wherever the baseline is read, because the band's stated false-alarm rate cannot cover a seed farther out.

The functions below the kind are shared with what reads the same numbers: the calibration (false alarms
from stored runs), the trend store and the report's figures.
"""

from __future__ import annotations

import datetime as dt
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from ..stores import baselines as bl
from ..core import compare, stats
from ..core.environment import git_commit, versions
from ..stores.results import code_fingerprint
from ..core.spec import METRIC_LABELS, BandCheck, ConfigError, seed_list
from . import Case, CheckKind, Part, Reference

EVALUATION_TOLERANCE = 1e-6  # relative: a repeated evaluation of the same model may differ by rounding only


class BaselineBands(CheckKind):
    name = "baseline"
    reference_policy = "stored"

    def band_checks(self, profile) -> int:
        return len(profile.band_checks())

    def cases(self, profile) -> list[Case]:
        return [Case(self.name, f"{m}-{b}", m, (m, b)) for m in profile.models for b in profile.budgets]

    def runs(self, session, case):
        model, budget = case.params
        return [(model, budget, seed) for seed in session.seeds]

    def reference(self, session, case) -> Reference:
        table, problem = checkable(session.matrix)
        return Reference(table, problem)

    def verdicts(self, session, case, table) -> list[compare.Verdict]:
        model, budget = case.params
        matrix = session.matrix
        failed = [v for seed in session.seeds for v in evaluation_verdicts(matrix, model, budget, seed)]
        source = f"{table.path.parent.name}/{table.path.name} (seeds {seed_list(table.seeds)})"
        window = matrix.profile.statistics.window
        label = (lambda c: f"{METRIC_LABELS[c.source]} (mean of epochs {c.end - c.window + 1}–{c.end})") \
            if window > 1 else (lambda c: METRIC_LABELS[c.source])
        return failed + [
            compare.check_band(f"{model}-{budget}", check.metric, label(check), check_value(matrix, check),
                               derive(table, check, len(session.seeds), session.alpha, matrix.profile.statistics.power),
                               source, model=model, budget=budget)
            for check in matrix.profile.band_checks() if check.model == model and check.budget == budget]

    def update(self, session) -> list[str]:
        return update(session.matrix, source_logs=session.source_logs)

    def summary_part(self, session) -> "BaselinePart":
        return BaselinePart(spread(session))


@dataclass
class BaselinePart(Part):
    """What the report's figures of the models shade behind the night's curves: the baseline seeds' spread per epoch
    (its bands are in the verdicts). No section of its own."""

    spread: dict = field(default_factory=dict)  # model → metric → (means, stds) per epoch; {} without a baseline


def spread(session) -> dict:
    """Per model, the baseline seeds' per-epoch mean and standard deviation of the train loss and test accuracy;
    empty without a comparable baseline."""
    table = table_of(session)
    if table is None:
        return {}
    out = {}
    for model in session.profile.models:
        seeds = [s for m, s in table.curves if m == model]
        for metric in ("train_loss", "test_acc"):
            series = [table.series(model, s, metric) for s in seeds]
            epochs = min((len(x) for x in series), default=0)
            columns = [[x[e] for x in series] for e in range(epochs)]
            if len(series) >= 2 and epochs:
                out.setdefault(model, {})[metric] = ([statistics.fmean(c) for c in columns],
                                                     [statistics.stdev(c) for c in columns])
    return out


# ---------------------------------------------------------------------- the band and the statistic (pure)

def derive(table: bl.BaselineTable, check: BandCheck, k: int, alpha: float, power: float = 0.9) -> stats.Band:
    """The band of one band check for the mean of ``k`` seeds, from the baseline's per-seed values."""
    return stats.derive_band(table.values(check.model, check.end, check.source, check.window), k, alpha,
                             table.resolution(check.source), power)


def statistic(curves: list[list[dict]], check: BandCheck) -> float:
    """What a band check reads: its series averaged over its window, then over the seeds' per-epoch ``curves``."""
    return statistics.fmean(stats.window_mean([e[check.source] for e in curve], check.end, check.window)
                            for curve in curves)


def tails(table: bl.BaselineTable, profile) -> list[tuple[BandCheck, int, stats.Tail]]:
    """(check, seed, tail) for every band check whose baseline seeds hold one far from the others
    (stats.tail_screen). Its band, derived from all the seeds, holds that seed; what a band cannot vouch
    for there is a seed farther out still, which the baseline has not drawn."""
    found = []
    for check in profile.band_checks():
        tail = stats.tail_screen(table.values(check.model, check.end, check.source, check.window),
                                 table.resolution(check.source))
        if tail is not None:
            found.append((check, table.seeds[tail.index], tail))
    return found


def describe_tail(check: BandCheck, seed: int, tail: stats.Tail, n: int) -> str:
    return f"{check.model}-{check.budget} {check.metric}: {tail.describe(seed, n)}"


def cell_check(profile, model: str, budget: int, metric: str) -> BandCheck:
    """The band check of one cell and metric (the figures and the trend store read single cells)."""
    return BandCheck(model, budget, metric, metric, budget, profile.statistics.window)


def check_value(matrix, check: BandCheck, seeds: tuple[int, ...] | None = None) -> float:
    """The statistic of ``check`` over this run's seeds (or ``seeds``)."""
    return statistic([bl.curve(matrix.history(check.model, seed)) for seed in (seeds or matrix.seeds)], check)


def checked_value(matrix, model: str, budget: int, metric: str, seeds: tuple[int, ...] | None = None) -> float:
    return check_value(matrix, cell_check(matrix.profile, model, budget, metric), seeds)


def band(matrix, table: bl.BaselineTable, model: str, budget: int, metric: str, k: int | None = None) -> stats.Band:
    """The derived band of one cell and metric for the mean of ``k`` seeds (default: this run's)."""
    from . import per_check_alpha

    return derive(table, cell_check(matrix.profile, model, budget, metric), k or len(matrix.seeds),
                  per_check_alpha(matrix.profile), matrix.profile.statistics.power)


def evaluation_verdicts(matrix, model: str, budget: int, seed: int) -> list[compare.Verdict]:
    """A failing verdict if the run's evaluation was not repeatable (engine.evaluation_repeat_diff);
    nothing when it was, or when the run predates the measurement."""
    final = matrix.history(model, seed).epochs[-1]
    diff = final.extra.get("eval_repeat_diff")
    if diff is None or diff <= EVALUATION_TOLERANCE * max(1.0, abs(final.test_loss)):
        return []
    return [compare.Verdict("run", f"{model}-{budget}", False,
                            f"{model} seed {seed}: evaluating the trained model twice on the same images gave test "
                            f"losses {diff:.4g} apart — evaluation is random (dropout left on, model.eval() "
                            f"forgotten, or test-time augmentation)", model=model, budget=budget,
                            metric="eval_repeat_diff", measured=diff, expected=0.0)]


# ---------------------------------------------------------------------- the stored baseline (I/O)

def baseline_file(matrix) -> Path:
    return matrix.references.baseline


def read(matrix) -> bl.BaselineTable | None:
    """The measured baseline of this profile and device class (None if absent; malformed: ConfigError)."""
    path = baseline_file(matrix)
    return bl.load_measured(path, matrix.profile.models, matrix.profile.budgets) if path.exists() else None


def missing_message(matrix) -> str:
    options = matrix.options
    return (f"no baseline {baseline_file(matrix)} for profile {matrix.profile.name} on {matrix.device_class}; create "
            f"it with: trainguard baselines update --profile {matrix.profile.cli_name} --device {matrix.device.type}"
            + (f" --precision {options.precision}" if options.precision != "fp32" else "")
            + (" --compile" if options.compile else "")
            + (" --stack-seeds" if options.stack_seeds else "")
            + " (or pytest -m slow --tg-profile ... --tg-update-baselines)")


def data_mismatch(matrix, table: bl.BaselineTable) -> str | None:
    """None if the baseline was measured on this exact data; else why not."""
    recorded = table.meta.get("data", {}).get("fingerprint")
    if recorded != matrix.data_fingerprint:
        return (f"{table.path} was measured on other data ({table.meta.get('data', {}).get('test_split')}, "
                f"fingerprint {str(recorded)[:12]}) than this run ({matrix.dataset.test_split}, "
                f"fingerprint {matrix.data_fingerprint[:12]}); regenerate it with `trainguard baselines update` "
                f"(pytest: --tg-update-baselines)")
    return None


def checkable(matrix) -> tuple[bl.BaselineTable | None, str | None]:
    """The baseline to check against, or None and why it cannot be used (missing, other data).
    A malformed baseline raises ConfigError: that is never a skip."""
    table = read(matrix)
    if table is None:
        return None, missing_message(matrix)
    mismatch = data_mismatch(matrix, table)
    return (None, mismatch) if mismatch else (table, None)


def table_of(session) -> bl.BaselineTable | None:
    """The run's usable baseline for what only shows it (the report's figures, statistics and trend bands), read
    once through ``session``: None when absent, measured on other data, or malformed (the checks say which)."""
    from ..core.registry import load

    try:
        return session.reference(session.kind("baseline") or load("baseline")).value
    except ConfigError:
        return None


def measure(matrix) -> dict[tuple[str, int], list[dict[str, float]]]:
    """Every baseline seed's per-epoch curve, per model (trained now where not cached)."""
    curves = {}
    for model in matrix.profile.models:
        for seed in matrix.profile.baseline_seeds:
            history = matrix.history(model, seed)
            if history.status == "missing":  # --from-log without the run, and training not allowed
                raise ConfigError(f"cannot write a baseline: no run of {model} seed {seed} in the run log(s) or the "
                                  f"result cache; pass --train-missing to train the runs they lack")
            if not history.completed:
                raise RuntimeError(f"cannot write a baseline: {model} seed {seed} {history.status} ({history.message})")
            curves[(model, seed)] = bl.curve(history)
    return curves


def update(matrix, source_logs=None) -> list[str]:
    """Train every baseline seed (or take it from the cache or ``matrix.preload``), rewrite the measured
    baseline, return what changed. ``source_logs``: the run logs the runs came from, for the metadata."""
    path = baseline_file(matrix)
    old = None
    if path.exists():
        try:
            old = bl.load_measured(path, (), ())
        except ConfigError:
            old = None
    from ..engines import engine

    curves = measure(matrix)
    ds, profile = matrix.dataset, matrix.profile
    meta = {
        "profile": profile.name,
        "device_class": matrix.device_class,
        "device_name": engine.device_name(matrix.device),
        "seeds": list(profile.baseline_seeds),
        "versions": versions(),
        "threads": matrix.threads,
        "date": dt.date.today().isoformat(),
        "commit": git_commit(),
        "data": {"source": Path(ds.source).name, "verification": ds.verification,
                 "test_split": ds.test_split, "notes": ds.notes, "fingerprint": matrix.data_fingerprint},
        "eval_images": {"train": len(ds.x_train), "test": len(ds.x_test),
                        **({"val": len(ds.x_val)} if ds.x_val is not None else {})},
        "code_fingerprint": {model: code_fingerprint(model) for model in profile.models},
        "runs": {f"{m}-seed{s}": {"key": h.key, "device": h.device}
                 for (m, s), h in sorted(matrix.histories.items()) if s in profile.baseline_seeds},
    }
    if source_logs:
        meta["source_logs"] = [str(p) for p in source_logs]
    table = bl.write_measured(path, curves, profile.models, profile.budgets, meta)
    changes = bl.diff_cells(old.summary(profile.budgets) if old else None, table.summary(profile.budgets))
    return changes + [f"tail: {describe_tail(check, seed, tail, len(table.seeds))} — its band, from all the seeds, holds "
                      f"it; see docs/statistics.md (Tails)" for check, seed, tail in tails(table, profile)] + [f"wrote {path}"]
