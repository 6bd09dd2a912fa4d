"""An experiment's baseline from numbers measured before trainguard guarded it: a CSV of per-seed, per-epoch metrics
(one row per variant, seed and epoch; a column per metric), read as the baseline seeds' runs — so a team adopts the
guard on the results it already has instead of training its baseline seeds again.

What it can carry: every declared metric at every epoch up to the largest budget, per baseline seed. What it cannot:
step scalars, input fingerprints, or the code the runs came from (an imported run's source is the file's sha256, its
message says where it came from; the night notes that its baseline was imported).
"""

from __future__ import annotations

import csv
import hashlib
import math
from pathlib import Path

from ..core.errors import ConfigError
from .experiment_records import Record

IMPORTED = "imported from"  # how an imported run's message begins


def records_from_csv(experiment, path: Path, threads: int) -> list[Record]:
    """One completed Record per variant × baseline seed of ``experiment``, from ``path``'s rows: columns ``seed``,
    ``epoch`` and each declared metric, and the variant in a ``variant`` column (else the first column, e.g.
    ``model``). A ConfigError naming the file and what is missing or malformed otherwise."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"--from-csv {path}: cannot read it ({exc.strerror or exc})") from None
    rows = list(csv.DictReader(text.splitlines()))
    columns = list(rows[0]) if rows else []
    if not rows or "seed" not in columns or "epoch" not in columns:
        raise ConfigError(f"--from-csv {path}: expected a header with seed, epoch and the metrics, and one row per "
                          f"variant, seed and epoch")
    missing = [m for m in experiment.metrics if m not in columns]
    if missing:
        raise ConfigError(f"--from-csv {path}: no column for the declared metric(s) {missing} (columns: {columns})")
    variant_column = "variant" if "variant" in columns else columns[0]
    series = _series(rows, variant_column, list(experiment.metrics), path)
    digest = hashlib.sha256(text.encode()).hexdigest()
    epochs = max(experiment.budgets)
    return [_record(experiment, variant, seed, epochs, threads, series, digest, path)
            for variant in experiment.variants for seed in experiment.baseline_seeds]


def _series(rows, variant_column: str, metrics: list[str], path: Path) -> dict:
    """(variant, seed) → metric → {epoch: value}."""
    found: dict = {}
    seen: dict = {}  # (variant, seed, epoch) → the line that gave it
    for line, row in enumerate(rows, start=2):
        try:
            key, epoch = (row[variant_column], int(row["seed"])), int(row["epoch"])
            values = {m: float(row[m]) for m in metrics}
        except (TypeError, ValueError):
            raise ConfigError(f"--from-csv {path}:{line}: seed and epoch must be integers and every metric a number, "
                              f"got {dict(row)}") from None
        if (*key, epoch) in seen:
            raise ConfigError(f"--from-csv {path}:{line}: variant {key[0]!r}, seed {key[1]}, epoch {epoch} again (first "
                              f"on line {seen[(*key, epoch)]}): which run is the baseline's is not clear")
        seen[(*key, epoch)] = line
        if not all(math.isfinite(v) for v in values.values()):
            raise ConfigError(f"--from-csv {path}:{line}: a metric that is not finite ({values}): a run that diverged "
                              f"is no baseline")
        for metric, value in values.items():
            found.setdefault(key, {}).setdefault(metric, {})[epoch] = value
    return found


def _record(experiment, variant, seed, epochs, threads, series, digest, path) -> Record:
    mine = series.get((variant, seed))
    if mine is None:
        raise ConfigError(f"--from-csv {path}: no rows for variant {variant!r}, seed {seed} (the experiment's baseline "
                          f"seeds are {list(experiment.baseline_seeds)})")
    lacking = sorted({e for values in mine.values() for e in range(1, epochs + 1) if e not in values})
    if lacking:
        raise ConfigError(f"--from-csv {path}: variant {variant!r}, seed {seed} lacks epoch(s) {lacking[:5]} of the "
                          f"largest budget, {epochs}")
    return Record(experiment.name, variant, seed, epochs, threads, digest,
                  epochs={m: [values[e] for e in range(1, epochs + 1)] for m, values in mine.items()},
                  message=f"{IMPORTED} {path.name} (sha256 {digest[:12]})")
