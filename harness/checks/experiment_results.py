"""What an experiment's runs measured, in the report, for any experiment: every declared metric at every budget,
seed by seed with the mean the bands check, and one figure of each metric's curve per variant (the mean over the
seeds, shaded from the lowest to the highest seed). It reads only what the runs reported through the contract
(trainguard.stores.experiment_records.Record), so a user's experiment gets the same tables and figure as the
report's own.

What it shows is what the runs reported: a metric the experiment does not report per epoch is not there, and a
run that did not complete is listed with its reason, not drawn.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Results:
    """Plain data (no experiment object), so a report re-renders from it alone."""

    name: str
    metrics: dict[str, str]  # metric → "higher" / "lower" (which is better)
    budgets: tuple[int, ...]
    curves: dict[tuple[str, int], dict[str, list[float]]] = field(default_factory=dict)  # (variant, seed) → per epoch
    failed: list[str] = field(default_factory=list)  # "variant seed N: status: message"
    window: int = 1  # the experiment's: a budget's value is the mean of its last ``window`` epochs
    # numbers measured elsewhere: (name, note, {(variant, metric, budget): value}), shown beside each variant's mean
    references: list[tuple[str, str, dict]] = field(default_factory=list)
    # the start of the curve, where declared: (metric, epochs, the variants it is checked for), a column of its own
    start: tuple[tuple[str, ...], int, tuple[str, ...]] | None = None
    # the baseline seeds' curves, where known: (variant, seed) → metric → per epoch (drawn as the spread behind)
    baseline: dict[tuple[str, int], dict[str, list[float]]] = field(default_factory=dict)
    data: list[str] = field(default_factory=list)  # the data in words, as the night's runs described it

    @property
    def variants(self) -> list[str]:
        return list(dict.fromkeys(variant for variant, _ in self.curves))


def gather(experiment, night: dict, baseline: dict | None = None) -> Results:
    """``night``: (variant, seed) → Record, as the runs delivered them; ``baseline``: the baseline seeds' runs, as
    stored (their spread is drawn behind the night's curves)."""
    results = Results(experiment.name, dict(experiment.metrics), tuple(experiment.budgets),
                      window=experiment.window,
                      references=[(r.name, r.note, {(v, m, b): value for v, b, m, value in r.cells()})
                                  for r in experiment.references],
                      start=None if experiment.start is None else (
                          tuple(experiment.start.metrics), experiment.start.epochs,
                          tuple(experiment.start.variants or experiment.variants)))
    for (variant, seed), record in sorted(night.items(), key=lambda item: (list(experiment.variants).index(item[0][0]),
                                                                          item[0][1])):
        if record.completed:
            results.curves[(variant, seed)] = {m: list(record.epochs.get(m, ())) for m in experiment.metrics}
        else:
            results.failed.append(f"{variant} seed {seed}: {record.status}: {record.message}")
    results.data = list(dict.fromkeys(r.data_note for _, r in sorted(night.items()) if r.data_note))
    results.baseline = {key: {m: list(record.epochs.get(m, ())) for m in experiment.metrics}
                        for key, record in sorted((baseline or {}).items()) if record.completed}
    return results


def _value(values: list[float], budget: int, window: int = 1) -> float | None:
    return statistics.fmean(values[budget - window:budget]) if len(values) >= budget else None


def _cell(value: float | None) -> str:
    return "—" if value is None else f"{value:.4g}"


def _columns(results: Results) -> tuple[dict[tuple[str, int, int], str], set]:
    """(metric, last epoch, epochs averaged) → heading: each metric at each budget, then the start of the curve; and
    which columns are the start's."""
    arrow = {m: "↑" if better == "higher" else "↓" for m, better in results.metrics.items()}
    over = f", last {results.window} epochs" if results.window > 1 else ""
    columns = {(m, b, results.window): f"{m} @{b} ({arrow[m]}{over})" for m in results.metrics for b in results.budgets}
    start = {}
    if results.start is not None:
        metrics, epochs, _ = results.start
        span = "epoch 1" if epochs == 1 else f"epochs 1–{epochs}"
        start = {(m, epochs, epochs): f"{m} at the start ({arrow[m]}, {span})" for m in metrics}
    return {**columns, **start}, set(start)


def table_rows(results: Results) -> list[dict]:
    """One row per (variant, seed), then the variant's mean over its seeds (what the bands check); a column per
    metric and budget, headed with the metric's better direction (and the window the value averages, if any), and
    one per metric of the start of the curve where declared ("—" for a variant it is not checked for)."""
    heading, start_only = _columns(results)
    columns = list(heading)
    rows = []
    for variant in results.variants:
        seeds = [seed for v, seed in results.curves if v == variant]
        shown = [c for c in columns if c not in start_only or variant in results.start[2]]
        per_seed = {seed: {c: _value(results.curves[(variant, seed)][c[0]], c[1], c[2]) if c in shown else None
                           for c in columns} for seed in seeds}
        rows += [{"variant": variant, "seed": str(seed), **{heading[c]: _cell(values[c]) for c in columns}}
                 for seed, values in per_seed.items()]
        found = {c: [values[c] for values in per_seed.values() if values[c] is not None] for c in columns}
        means = {c: statistics.fmean(found[c]) if found[c] else None for c in columns}
        if len(seeds) > 1:
            rows.append({"variant": variant, "seed": "mean", **{heading[c]: _cell(means[c]) for c in columns}})
        for name, _, cells in results.references:
            if any(v == variant for v, _, _ in cells):
                # the reference is of each budget's own epoch; beside it, the night's mean of that same epoch
                own = {(m, b, w): cells.get((variant, m, b)) if (m, b, w) not in start_only else None
                       for m, b, w in columns}
                rows.append({"variant": variant, "seed": name, **{heading[c]: _cell(own[c]) for c in columns}})
                rows.append({"variant": variant, "seed": f"Δ {name}",
                             **{heading[c]: _delta(_own_epoch_mean(results, variant, c[0], c[1]), own[c])
                                for c in columns}})
    return rows


def _own_epoch_mean(results: Results, variant: str, metric: str, budget: int) -> float | None:
    """The night's mean of ``metric`` at epoch ``budget`` itself (window 1: what a published table reports)."""
    values = [v for v in (_value(curves[metric], budget) for (name, _), curves in results.curves.items()
                          if name == variant) if v is not None]
    return statistics.fmean(values) if values else None


def _delta(night: float | None, reference: float | None) -> str:
    return "—" if night is None or reference is None else f"{night - reference:+.4g}"


def draw(results: Results, path: Path) -> Path | None:
    """The figure of ``results`` at ``path`` (None when no run completed)."""
    from ..core import plots

    if not results.curves:
        return None
    def per_variant(runs: dict, metric: str) -> dict:
        return {variant: [values[metric] for (v, _), values in runs.items() if v == variant]
                for variant in results.variants}

    labels = {metric: f"{metric} ({direction} is better)" for metric, direction in results.metrics.items()}
    curves = {labels[m]: per_variant(results.curves, m) for m in results.metrics}
    if results.baseline:  # where the night's curve lies within what the baseline's seeds did
        spread = {labels[m]: per_variant(results.baseline, m) for m in results.metrics}
        return plots.metric_curves(path, f"{results.name}: the night's mean per variant; shaded: the baseline seeds, "
                                         f"lowest to highest", curves, spread)
    return plots.metric_curves(path, f"{results.name}: mean over seeds per variant (shaded: lowest to highest seed)",
                               curves)


@dataclass(frozen=True)
class Checked:
    """One band as the night checked it: ``variant``'s ``metric`` at ``budget`` (the night's statistic), against the
    baseline's ``centre`` ± ``halfwidth`` (None: no band), with its MDE."""

    variant: str
    budget: int
    metric: str
    measured: float | None
    centre: float | None
    halfwidth: float | None
    mde: float | None
    passed: bool


def checked_of_bands(verdicts) -> list[Checked]:
    """From trainguard.checks.experiment_bands' verdicts (``trainguard guard … check``)."""
    return [Checked(v.variant, v.budget, v.metric, v.value, v.band.center if v.band else None,
                    v.band.halfwidth if v.band else None, v.band.mde if v.band else None, v.passed) for v in verdicts]


def checked_of_verdicts(verdicts) -> list[Checked]:
    """From a night's verdicts of one experiment's bands (trainguard.core.compare.Verdict, check "experiment": its
    variant as the model)."""
    return [Checked(v.model, v.budget, v.metric, v.measured, v.expected, v.allowed, v.mde, v.passed)
            for v in verdicts if v.check == "experiment" and v.model is not None and v.metric is not None]


def checked_rows(checked: list[Checked], budget: int) -> list[dict]:
    """The bands at one budget, one row per variant × metric: the night's statistic, the band, the difference from
    its centre, the MDE and the verdict (the start of the curve is kept with the smallest budget)."""
    rows = []
    for c in checked:
        if c.budget != budget:
            continue
        band = c.centre is not None and c.halfwidth is not None
        rows.append({"Variant": c.variant, "Metric": c.metric, "Measured": _cell(c.measured),
                     "Band": f"{c.centre - c.halfwidth:.4g} … {c.centre + c.halfwidth:.4g}" if band else "—",
                     "Δ": f"{c.measured - c.centre:+.3g}" if band and c.measured is not None else "—",
                     "MDE": _cell(c.mde), "Verdict": "pass" if c.passed else "**FAIL**"})
    return rows


def checked_section(results: Results, checked: list[Checked], report: Path | None, figures: bool,
                    heading: str = "####") -> list[str]:
    """Markdown lines: per budget, every band as checked (a table), then one figure of them all — each metric's
    statistic per variant and budget beside its band and any reference (drawn beside ``report`` when ``figures``)."""
    import pandas as pd

    if not checked:
        return []
    over = f"mean of the last {results.window} epochs up to the budget" if results.window > 1 else "the budget's epoch"
    seeds = sorted({seed for _, seed in results.curves})
    lines = []
    for budget in sorted({c.budget for c in checked}):
        lines += [f"{heading} Against the baseline at {budget} epochs", "",
                  f"{over[0].upper()}{over[1:]}, averaged over seed(s) {', '.join(map(str, seeds)) or '—'}; band: "
                  f"the baseline seeds' mean ± the derived half-width; MDE: the smallest shift the band catches at the "
                  f"night's power:", "",
                  pd.DataFrame.from_records(checked_rows(checked, budget)).to_markdown(index=False,
                                                                                       disable_numparse=True), ""]
    if figures and report is not None:
        drawn = draw_checked(results, checked, Path(report).parent / f"{figure_name(report, results).stem}-checked.png")
        lines += [f"![{results.name}: each checked statistic, its band and the references]({drawn.name})", ""]
    return lines


def draw_checked(results: Results, checked: list[Checked], path: Path) -> Path:
    """Each checked statistic per variant and budget inside its band, beside the references' values (what the
    models' accuracy figure draws of test accuracy, for every metric of any experiment)."""
    from ..core import plots

    panels = {}
    for metric in dict.fromkeys(c.metric for c in checked):
        mine = [c for c in checked if c.metric == metric]
        groups = [(c.variant, c.budget) for c in mine]
        references = {name: {(v, b): value for (v, m, b), value in cells.items() if m == metric}
                      for name, _, cells in results.references}
        panels[metric] = (groups, {(c.variant, c.budget): c.measured for c in mine if c.measured is not None},
                          {(c.variant, c.budget): (c.centre, c.halfwidth) for c in mine if c.centre is not None},
                          {name: values for name, values in references.items() if values},
                          {(c.variant, c.budget) for c in mine if not c.passed})
    return plots.checked_intervals(path, f"{results.name}: as checked\n(references at each budget's own epoch)",
                                   panels)


def figure_name(report: Path, results: Results) -> Path:
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in results.name)
    return Path(report).parent / f"{Path(report).stem}-experiment-{safe}.png"


def section(results: Results, report: Path | None, figures: bool, heading: str = "####") -> list[str]:
    """Markdown lines: the table, the runs that failed, the figure (drawn beside ``report`` when ``figures``)."""
    import pandas as pd  # not at import: the plugin lists the cases without pandas

    lines = [f"{heading} Measured: each metric at each budget, per seed", ""]
    lines += [f"Data: {note}" for note in results.data] + ([""] if results.data else [])
    rows = table_rows(results)
    lines += [pd.DataFrame.from_records(rows).to_markdown(index=False, disable_numparse=True) if rows
              else "No run completed.", ""]
    lines += [f"- not completed: {line}" for line in results.failed] + ([""] if results.failed else [])
    lines += [f"- {name}: numbers measured elsewhere, each budget's own epoch" + (f" ({note})" if note else "")
              for name, note, _ in results.references] + ([""] if results.references else [])
    if figures and report is not None and (drawn := draw(results, figure_name(report, results))) is not None:
        lines += [f"![{results.name}: each metric per epoch]({drawn.name})", ""]
    return lines
