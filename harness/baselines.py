"""Baseline tables: plain CSV that reviews well in a diff, metadata in JSON beside it.

- ``baselines/published.csv``: the report's tables verbatim (model, epochs, train_loss, train_acc, test_acc).
- ``baselines/<profile>/<device_class>.csv``: measured, one row per model × budget with
  ``<metric>_mean, <metric>_std, <metric>_n`` for each metric, and
  ``<device_class>.meta.json`` beside it (seeds, versions, device, date, commit, data fingerprint).

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

from .spec import METRICS, ConfigError
from .storage import atomic_write_json, atomic_write_text

FORMAT_VERSION = 1
PUBLISHED_COLUMNS = ("model", "epochs", *METRICS)
MEASURED_COLUMNS = ("model", "epochs", *(f"{m}_{s}" for m in METRICS for s in ("mean", "std", "n")))


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
    path: Path
    cells: dict[tuple[str, int, str], BaselineCell]  # (model, epochs, metric) → cell
    meta: dict

    def cell(self, model: str, epochs: int, metric: str) -> BaselineCell | None:
        return self.cells.get((model, epochs, metric))

    def pooled_std(self, epochs: int, metric: str) -> float:
        """Root-mean-square of the per-model stds of ``metric`` at ``epochs``.

        A std from a handful of seeds is itself noisy: measured on ci (5 seeds), NewModel1's
        10-epoch test accuracy had std 0.69 beside 1.4–2.1 for its neighbours, and a new
        seed landed 4.7 points off. Pooling across the models at the same budget gives an
        estimate with several times the degrees of freedom.
        """
        stds = [c.std for (m, e, k), c in self.cells.items() if e == epochs and k == metric]
        return math.sqrt(sum(s * s for s in stds) / len(stds)) if stds else 0.0


def baseline_path(root: Path, profile: str, device_class: str) -> Path:
    return Path(root) / profile / f"{device_class}.csv"


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


def load_measured(path: Path, models: tuple[str, ...], budgets: tuple[int, ...]) -> BaselineTable:
    """Read a measured table and check that it covers every model × budget the profile needs."""
    meta_file = meta_path(path)
    try:
        meta = json.loads(meta_file.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{meta_file}: metadata for {path.name} is missing; regenerate with --update-baselines") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{meta_file}: not valid JSON ({exc})") from None
    if meta.get("format_version") != FORMAT_VERSION:
        raise ConfigError(f"{meta_file}: format_version {meta.get('format_version')!r}, this trainguard reads "
                          f"{FORMAT_VERSION}; regenerate with --update-baselines")
    cells = {}
    for line, row in _read_rows(path, MEASURED_COLUMNS):
        epochs = _number(path, line, row, "epochs", int)
        for metric in METRICS:
            cells[(row["model"], epochs, metric)] = BaselineCell(
                _number(path, line, row, f"{metric}_mean"),
                _number(path, line, row, f"{metric}_std"),
                _number(path, line, row, f"{metric}_n", int),
            )
    missing = [f"{m}-{b}" for m in models for b in budgets if (m, b, METRICS[0]) not in cells]
    if missing:
        raise ConfigError(f"{path}: no row for {', '.join(missing)}; regenerate with --update-baselines")
    return BaselineTable(path, cells, meta)


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


def write_measured(path: Path, cells, models, budgets, meta: dict) -> None:
    """CSV first, metadata second, each atomically; a reader never sees a half-written table."""
    atomic_write_text(path, render_measured(cells, models, budgets))
    atomic_write_json(meta_path(path), {**meta, "format_version": FORMAT_VERSION})


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
