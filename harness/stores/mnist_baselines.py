"""The MNIST experiment's stored baseline: per framework and device class, every baseline seed's measured
quantities (``mnist-<framework>-<device>.csv``, one row per seed, with its ``.meta.json``), written as one
transaction and refused, naming the file, when damaged. Measured by the ``mnist_gaps`` kind's update."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..core.spec import MNIST_QUANTITIES as QUANTITIES
from ..core.spec import ConfigError


@dataclass
class MnistBaseline:
    """One framework's per-seed quantities over the baseline seeds (``mnist-<framework>-<device>.csv``)."""

    path: object
    per_seed: dict[int, dict[str, float]]
    meta: dict

    @property
    def values(self) -> dict[str, list[float]]:
        return {q: [self.per_seed[s][q] for s in sorted(self.per_seed)] for q in QUANTITIES}

    def describe(self) -> str:
        seeds = sorted(self.per_seed)
        return f"{self.path.parent.name}/{self.path.name} (seeds {seeds[0]}–{seeds[-1]}, n={len(seeds)})"


MNIST_FORMAT_VERSION = 2  # 2: one row per baseline seed (1 held only mean/std/min/max)


def write_distribution(path, per_seed: dict[int, dict[str, float]], meta: dict) -> None:
    """Every baseline seed's quantities, as reviewable CSV + JSON metadata, replaced together."""
    import json

    from ..core.storage import write_together

    lines = ["seed," + ",".join(QUANTITIES)]
    lines += [f"{seed}," + ",".join(f"{per_seed[seed][q]:.6g}" for q in QUANTITIES) for seed in sorted(per_seed)]
    meta = json.dumps({**meta, "format_version": MNIST_FORMAT_VERSION}, indent=2, sort_keys=True) + "\n"
    write_together(path.parent, {path.name: ("\n".join(lines) + "\n").encode(),
                                 path.with_suffix(".meta.json").name: meta.encode()}, f"the MNIST baseline {path.name}")


def _int(path, line: int, row: dict, column: str) -> int:
    try:
        return int(row[column])
    except (KeyError, TypeError, ValueError):
        raise ConfigError(f"{path}, line {line}, column {column!r}: expected an integer, got {row.get(column)!r} "
                          f"(columns seed,{','.join(QUANTITIES)})") from None


def _finite(path, line: int, row: dict, column: str) -> float:
    """A number of a stored MNIST baseline: finite, except the ratio, which is infinite where a seed had no gap."""
    try:
        value = float(row[column])
    except (KeyError, TypeError, ValueError):
        raise ConfigError(f"{path}, line {line}, column {column!r}: expected a number, got {row.get(column)!r} "
                          f"(columns seed,{','.join(QUANTITIES)})") from None
    if math.isnan(value) or (math.isinf(value) and column != "ratio"):
        raise ConfigError(f"{path}, line {line}, column {column!r}: {value} is not a finite number; the file is "
                          f"damaged — restore it from git or regenerate with trainguard baselines update")
    return value


def load_distribution(path) -> MnistBaseline | None:
    """The per-seed MNIST baseline at ``path``; None if absent. A malformed one raises ConfigError."""
    import csv
    import io
    import json
    from pathlib import Path

    from ..core.storage import reading_together

    path = Path(path)
    with reading_together(path.parent, f"the MNIST baseline {path.name}"):
        if not path.exists():
            return None
        try:
            meta = json.loads(path.with_suffix(".meta.json").read_text(encoding="utf-8"))
            text = path.read_text(encoding="utf-8")
        except (FileNotFoundError, json.JSONDecodeError) as exc:
            raise ConfigError(f"{path.with_suffix('.meta.json')}: missing or not JSON ({exc}); regenerate with "
                              f"trainguard baselines update") from None
    if meta.get("format_version") != MNIST_FORMAT_VERSION:
        raise ConfigError(f"{path}: format_version {meta.get('format_version')!r}, this trainguard reads "
                          f"{MNIST_FORMAT_VERSION} (one row per seed); regenerate with trainguard baselines update")
    per_seed = {}
    for line, row in enumerate(csv.DictReader(io.StringIO(text)), start=2):
        per_seed[_int(path, line, row, "seed")] = {q: _finite(path, line, row, q) for q in QUANTITIES}
    missing = sorted(set(meta.get("seeds", [])) - set(per_seed))
    if missing:
        raise ConfigError(f"{path}: seeds {missing} of the metadata's {meta.get('seeds')} have no row: truncated or "
                          f"edited? Restore it from git or regenerate with trainguard baselines update")
    if len(per_seed) < 2:
        raise ConfigError(f"{path}: needs at least 2 seeds to measure a spread, has {len(per_seed)}")
    return MnistBaseline(path, per_seed, meta)
