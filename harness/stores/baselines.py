"""Baseline tables: plain CSV that reviews well in a diff, metadata in JSON beside it.

- ``baselines/published.csv``: the report's tables verbatim (model, epochs, train_loss, train_acc, test_acc);
- ``baselines/<profile>/<device_class>-seeds.csv``: measured, the source of truth: every baseline
  seed's per-epoch curve (model, seed, epoch, train/test/val loss and accuracy);
- ``baselines/<profile>/<device_class>.csv``: a view of it for people, one row per model × budget
  with ``<metric>_mean, <metric>_std, <metric>_n`` of the final-epoch metrics;
- ``<device_class>.meta.json`` beside them (seeds, versions, device, date, commit, data fingerprint,
  evaluation split sizes).

Nothing in ``baselines/`` changes unless ``--update-baselines`` (or ``trainguard baselines update``) is given.
"""

from __future__ import annotations

import csv
import io
import json
import math
import statistics
from dataclasses import dataclass
from pathlib import Path

from ..core.spec import METRICS, ConfigError
from ..core.storage import reading_together, write_together

FORMAT_VERSION = 2  # 2: per-seed curves are the source of truth; 1 (mean/std only) is read as "regenerate"
PUBLISHED_COLUMNS = ("model", "epochs", *METRICS)
MEASURED_COLUMNS = ("model", "epochs", *(f"{m}_{s}" for m in METRICS for s in ("mean", "std", "n")))
#: Per-epoch columns of the per-seed file; val_* are empty where the profile has no validation split.
CURVE_METRICS = ("train_loss", "train_acc", "test_loss", "test_acc", "val_loss", "val_acc")
CURVE_COLUMNS = ("model", "seed", "epoch", *CURVE_METRICS)


@dataclass(frozen=True)
class BaselineCell:
    mean: float
    std: float
    n: int

    @classmethod
    def of(cls, values: list[float]) -> "BaselineCell":
        return cls(statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0, len(values))


@dataclass
class BaselineTable:
    """A measured baseline: every baseline seed's per-epoch curve, per model, with its provenance.

    Every statistic a check uses is computed from the curves (``values``), so statistics can be
    recomputed, seeds held out (``without``) and a rerun compared seed by seed. The mean ± std of
    the final-epoch metrics (``cell``) is a view for people (``<device>.csv``, ``baselines show``).
    """

    path: Path
    curves: dict[tuple[str, int], list[dict[str, float]]]  # (model, seed) → per-epoch metrics, epoch 1 first
    meta: dict

    @property
    def seeds(self) -> tuple[int, ...]:
        return tuple(sorted({seed for _, seed in self.curves}))

    def models(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(model for model, _ in self.curves))

    def series(self, model: str, seed: int, metric: str) -> list[float]:
        return [epoch[metric] for epoch in self.curves[(model, seed)]]

    def values(self, model: str, budget: int, metric: str, window: int = 1) -> list[float]:
        """Per baseline seed: ``metric`` averaged over the ``window`` epochs ending at ``budget``."""
        from ..core.stats import window_mean

        return [window_mean(self.series(model, seed, metric), budget, window)
                for m, seed in sorted(self.curves) if m == model]

    def cell(self, model: str, epochs: int, metric: str) -> BaselineCell | None:
        curves = [c for (m, _), c in self.curves.items() if m == model]
        if not curves or min(map(len, curves)) < epochs or not self.has(metric):
            return None
        return BaselineCell.of(self.values(model, epochs, metric))

    def summary(self, budgets) -> dict[tuple[str, int, str], BaselineCell]:
        """Mean ± std of the final-epoch metrics at each of ``budgets`` that all seeds of a model reached."""
        cells = {}
        for model in self.models():
            reached = min(len(c) for (m, _), c in self.curves.items() if m == model)
            for budget in (b for b in budgets if b <= reached):
                cells.update({(model, budget, k): self.cell(model, budget, k) for k in METRICS if self.has(k)})
        return cells

    def has(self, metric: str) -> bool:
        return all(not math.isnan(epoch.get(metric, math.nan)) for curve in self.curves.values() for epoch in curve)

    def without(self, seeds) -> "BaselineTable":
        """The same baseline with ``seeds`` held out (for leave-out calibration)."""
        held = set(seeds)
        return BaselineTable(self.path, {k: v for k, v in self.curves.items() if k[1] not in held}, self.meta)

    def resolution(self, metric: str) -> float:
        """The smallest step of a metric: one image of its split, in accuracy points; 1e-4 for losses."""
        images = self.meta.get("eval_images", {}).get(metric.split("_")[0])
        return 100.0 / images if metric.endswith("acc") and images else 1e-4


def curve(history) -> list[dict[str, float]]:
    """A run's per-epoch metrics in the per-seed file's columns (NaN where the run has no such metric)."""
    return [{m: record.metric(m) if m in vars(record) or m in record.extra else math.nan for m in CURVE_METRICS}
            for record in history.epochs]


def meta_path(csv_path: Path) -> Path:
    return csv_path.with_suffix(".meta.json")


def _read_rows(path: Path, columns: tuple[str, ...]) -> list[tuple[int, dict]]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"baseline file {path} does not exist") from None
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in columns if c not in (reader.fieldnames or [])]
    if missing:
        raise ConfigError(f"{path}: missing column(s) {missing}; expected columns {list(columns)}")
    return [(line, row) for line, row in enumerate(reader, start=2)]


def _number(path: Path, line: int, row: dict, column: str, kind=float):
    value = row.get(column)
    try:
        number = kind(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{path}, line {line}, column {column!r}: expected a number, got {value!r}") from None
    if isinstance(number, float) and not math.isfinite(number):
        raise ConfigError(f"{path}, line {line}, column {column!r}: expected a finite number, got {value!r}")
    return number


def load_published(path: Path) -> dict[tuple[str, int, str], float]:
    values = {}
    for line, row in _read_rows(path, PUBLISHED_COLUMNS):
        epochs = _number(path, line, row, "epochs", int)
        for metric in METRICS:
            values[(row["model"], epochs, metric)] = _number(path, line, row, metric)
    return values


def seeds_path(csv_path: Path) -> Path:
    """The per-seed curves beside the summary: ``cpu.csv`` → ``cpu-seeds.csv``."""
    return csv_path.with_name(f"{csv_path.stem}-seeds.csv")


def load_measured(path: Path, models: tuple[str, ...], budgets: tuple[int, ...]) -> BaselineTable:
    """Read a measured baseline (metadata + per-seed curves), never between two files of an update; check it covers
    every model × budget."""
    with reading_together(Path(path).parent, f"the baseline {Path(path).name}"):
        return _load_measured(Path(path), models, budgets)


def _load_measured(path: Path, models: tuple[str, ...], budgets: tuple[int, ...]) -> BaselineTable:
    meta_file, curves_file = meta_path(path), seeds_path(path)
    try:
        meta = json.loads(meta_file.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{meta_file}: metadata for {path.name} is missing; regenerate with --update-baselines") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{meta_file}: not valid JSON ({exc})") from None
    if meta.get("format_version") != FORMAT_VERSION:
        raise ConfigError(f"{meta_file}: format_version {meta.get('format_version')!r}, this trainguard reads "
                          f"{FORMAT_VERSION} (per-seed curves in {curves_file.name}); regenerate with --update-baselines")
    curves: dict[tuple[str, int], list[dict[str, float]]] = {}
    for line, row in _read_rows(curves_file, CURVE_COLUMNS):
        seed, epoch = _number(curves_file, line, row, "seed", int), _number(curves_file, line, row, "epoch", int)
        curve = curves.setdefault((row["model"], seed), [])
        if epoch != len(curve) + 1:
            raise ConfigError(f"{curves_file}, line {line}: {row['model']} seed {seed} epoch {epoch} follows epoch "
                              f"{len(curve)}; each curve must list epochs 1, 2, ... in order")
        curve.append({metric: (_number(curves_file, line, row, metric) if row[metric] not in ("", None) else math.nan)
                      for metric in CURVE_METRICS})
    _check_whole(curves_file, meta_file, meta, curves)
    table = BaselineTable(path, curves, meta)
    # every seed the metadata names, for every model, to the largest budget: a file cut at a line boundary
    # parses, and must still be refused, not read as a baseline of fewer seeds
    short = [f"{m} seed {seed}" for m in models for seed in meta.get("seeds", [])
             if len(curves.get((m, seed), ())) < max(budgets, default=0)]
    if short:
        raise ConfigError(f"{curves_file}: {', '.join(short[:4])}{' …' if len(short) > 4 else ''} missing or short "
                          f"(the metadata {meta_file.name} lists seeds {meta.get('seeds')}): truncated or edited? "
                          f"Restore it from git or regenerate with trainguard baselines update")
    missing = [f"{m}-{b}" for m in models for b in budgets
               if sum(1 for (mm, _), c in curves.items() if mm == m and len(c) >= b) < 2]
    if missing:
        raise ConfigError(f"{curves_file}: fewer than 2 seeds reach {', '.join(missing)}; regenerate with --update-baselines")
    return table


def _check_whole(curves_file: Path, meta_file: Path, meta: dict, curves: dict) -> None:
    """The whole reference checked, not only what tonight's bands read: the metadata lists its seeds; every model
    in the file has exactly those seeds; a metric's column is empty in every row (a quantity this baseline did not
    measure) or a finite number in every row — an empty cell among numbers is damage, not a missing metric."""
    listed = meta.get("seeds")
    if not isinstance(listed, list) or not listed or not all(isinstance(s, int) for s in listed):
        raise ConfigError(f"{meta_file}: 'seeds' must list the baseline's seeds, got {listed!r}; restore it from git "
                          f"or regenerate with trainguard baselines update")
    for model in sorted({m for m, _ in curves}):
        found = sorted(seed for m, seed in curves if m == model)
        if found != sorted(listed):
            extra, lacking = sorted(set(found) - set(listed)), sorted(set(listed) - set(found))
            raise ConfigError(f"{curves_file}: {model} has seeds {found}, the metadata {meta_file.name} lists {sorted(listed)}"
                              + (f" (not listed: {extra})" if extra else "") + (f" (missing: {lacking})" if lacking else "")
                              + "; the two files disagree: restore them from git or regenerate with trainguard baselines update")
    for metric in CURVE_METRICS:
        cells = [(key, epoch, row[metric]) for key, curve in sorted(curves.items()) for epoch, row in enumerate(curve, 1)]
        empty = [cell for cell in cells if math.isnan(cell[2])]
        if empty and len(empty) < len(cells):
            (model, seed), epoch, _ = empty[0]
            raise ConfigError(f"{curves_file}: column {metric!r} is empty for {model} seed {seed} epoch {epoch} "
                              f"({len(empty)} of {len(cells)} rows) but a number elsewhere: a damaged file; restore it "
                              f"from git or regenerate with trainguard baselines update")


def render_measured(cells: dict[tuple[str, int, str], BaselineCell], models, budgets) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(MEASURED_COLUMNS)
    for model in models:
        for budget in budgets:
            row = [model, budget]
            for metric in METRICS:
                cell = cells[(model, budget, metric)]
                row += [f"{cell.mean:.4f}", f"{cell.std:.4f}", cell.n]
            writer.writerow(row)
    return out.getvalue()


def render_curves(curves: dict[tuple[str, int], list[dict[str, float]]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CURVE_COLUMNS)
    for (model, seed), curve in curves.items():
        for epoch, values in enumerate(curve, start=1):
            writer.writerow([model, seed, epoch, *("" if values.get(m) is None or math.isnan(values[m])
                                                   else f"{values[m]:.6g}" for m in CURVE_METRICS)])
    return out.getvalue()


def write_measured(path: Path, curves, models, budgets, meta: dict) -> BaselineTable:
    """The per-seed curves, the summary view and the metadata, replaced together (storage.write_together): a crash
    or a second writer never leaves new curves beside old metadata."""
    table = BaselineTable(path, curves, {**meta, "format_version": FORMAT_VERSION})
    cells = {(m, b, metric): table.cell(m, b, metric) for m in models for b in budgets for metric in METRICS}
    write_together(path.parent, {seeds_path(path).name: render_curves(curves).encode(),
                                 path.name: render_measured(cells, models, budgets).encode(),
                                 meta_path(path).name: (json.dumps(table.meta, indent=2, sort_keys=True) + "\n").encode()},
                   f"the baseline {path.name}")
    return table


def diff_cells(old: dict | None, new: dict) -> list[str]:
    """Human-readable lines: what changed between two tables (means and stds)."""
    if not old:
        return [f"new baseline with {len({(m, b) for m, b, _ in new})} cells"]
    lines = []
    for key in sorted(new):
        model, budget, metric = key
        before, after = old.get(key), new[key]
        if before is None:
            lines.append(f"{model}-{budget} {metric}: new, mean {after.mean:.4f} std {after.std:.4f} n={after.n}")
        elif (round(before.mean, 4), round(before.std, 4), before.n) != (round(after.mean, 4), round(after.std, 4), after.n):
            lines.append(f"{model}-{budget} {metric}: mean {before.mean:.4f} → {after.mean:.4f} "
                         f"({after.mean - before.mean:+.4f}), std {before.std:.4f} → {after.std:.4f}, n {before.n} → {after.n}")
    for key in sorted(set(old) - set(new)):
        lines.append(f"{key[0]}-{key[1]} {key[2]}: removed")
    return lines or ["no change"]
