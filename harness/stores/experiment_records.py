"""What the runs of an :class:`~trainguard.core.experiment.Experiment` measured, kept: one JSON file per run (the
result cache, keyed by the experiment's source fingerprint, so changed code trains again) and one golden file per
variant (the replay's reference). Written atomically; a file that does not parse, or holds a non-finite step value,
is refused naming it, never trusted.

Layout under the store's root (``--dir``, default ``.trainguard/experiments``)::

    <experiment>/<variant>/seed<S>-e<E>-t<T>-<source>.json    a run: seed S, E epochs, T threads, that source
    <experiment>/golden/<variant>.json                         the golden trace and its noise envelope
"""

from __future__ import annotations

import contextlib
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..core.errors import ConfigError
from ..core.storage import atomic_write_json

FORMAT_VERSION = 1


@dataclass
class Record:
    """One run of an experiment: what it reported per step and per epoch, what it trained on, how it ended."""

    experiment: str
    variant: str
    seed: int
    epochs_asked: int
    threads: int
    source: str  # the experiment's source fingerprint
    steps: dict[str, list[float]] = field(default_factory=dict)
    epochs: dict[str, list[float]] = field(default_factory=dict)
    inputs: dict[str, str] = field(default_factory=dict)  # declared inputs → fingerprint
    data_path: dict[str, str] = field(default_factory=dict)  # batches as the step loop received them → fingerprint
    status: str = "completed"  # "error" (the function raised, or reported fewer epochs than asked), "timeout"
    message: str = ""
    seconds: float = 0.0
    # each epoch's seconds, as the run timed or stated them (Run.epoch_time); the speed check leaves epoch 1 out
    # (warm-up). Empty in a record written before it was kept, or imported: its speed is seconds / epochs.
    epoch_seconds: list[float] = field(default_factory=list)
    data_note: str = ""  # the data in words, as the function described it (Run.describe_data); "" when it did not

    @property
    def completed(self) -> bool:
        return self.status == "completed"

    def at(self, metric: str, budget: int, window: int = 1) -> float:
        """The metric after epoch ``budget``; with ``window`` > 1 the mean of its last ``window`` epochs up to it."""
        if window == 1:
            return self.epochs[metric][budget - 1]
        return math.fsum(self.epochs[metric][budget - window:budget]) / window

    def to_json(self) -> dict:
        raw = asdict(self)
        for key in ("epoch_seconds", "data_note"):
            if not raw[key]:  # as records were written before it was kept
                del raw[key]
        return {"format_version": FORMAT_VERSION, **raw}

    @classmethod
    def from_json(cls, raw: dict, where: Path) -> "Record":
        if raw.get("format_version") != FORMAT_VERSION:
            raise ConfigError(f"{where}: not a format {FORMAT_VERSION} experiment record")
        raw = {k: v for k, v in raw.items() if k != "format_version"}
        try:
            return cls(**raw)
        except TypeError as exc:
            raise ConfigError(f"{where}: not an experiment record ({exc})") from None


@dataclass
class GoldenRun:
    """A variant's golden: its short run traced step by step, and per series the largest relative divergence
    (running max) that a perturbation changing only rounding reached at each index (the noise envelope)."""

    record: Record
    envelope: dict[str, list[float]]
    perturbations: list[str]
    data_path: dict = field(default_factory=dict)  # the full-scale data path: {"epochs", "batches", "sha256"}
    machine: dict = field(default_factory=dict)  # where it was written: {"cpu", "isa"} (another one rounds differently)

    def to_json(self) -> dict:
        return {"format_version": FORMAT_VERSION, "record": self.record.to_json(), "envelope": self.envelope,
                "perturbations": self.perturbations, "data_path": self.data_path, "machine": self.machine}


def arithmetic_class(device: str = "cpu", precision: str = "fp32", compile: bool = False) -> str:
    """The runs' arithmetic class, named as the built-in baselines' device classes are: ``cpu``, ``cuda``,
    ``cpu-bf16``, ``cuda-bf16-compile`` … (the device type decides the arithmetic, not the card: "cuda:1" → cuda)."""
    return str(device).split(":")[0] + ("-bf16" if precision == "bf16" else "") + ("-compile" if compile else "")


class ExperimentStore:
    """Runs and goldens of experiments under ``root``; those of another arithmetic than the CPU's in fp32, eager under
    ``root/<class>`` (:func:`arithmetic_class`: a CUDA run, a bf16 or compiled one rounds differently — it is neither
    the others' cache nor their baseline)."""

    def __init__(self, root: Path | str, device: str = "cpu", precision: str = "fp32", compile: bool = False) -> None:
        kind = arithmetic_class(device, precision, compile)
        self.root = Path(root) if kind == "cpu" else Path(root) / kind

    def run_path(self, experiment: str, variant: str, seed: int, epochs: int, threads: int, source: str) -> Path:
        return self.root / experiment / variant / f"seed{seed}-e{epochs}-t{threads}-{source[:16]}.json"

    def get(self, experiment: str, variant: str, seed: int, epochs: int, threads: int, source: str) -> Record | None:
        path = self.run_path(experiment, variant, seed, epochs, threads, source)
        if not path.exists():
            return None
        return Record.from_json(_read_json(path), path)

    def latest(self, experiment: str, variant: str, seed: int, epochs: int, threads: int) -> Record | None:
        """The run of (variant, seed) last written, whatever source it was trained from (a baseline measured
        before the code changed is still the reference the changed code is checked against)."""
        found = sorted((self.root / experiment / variant).glob(f"seed{seed}-e{epochs}-t{threads}-*.json"),
                       key=lambda path: (path.stat().st_mtime_ns, path.name))
        return Record.from_json(_read_json(found[-1]), found[-1]) if found else None

    def put(self, record: Record) -> Path:
        path = self.run_path(record.experiment, record.variant, record.seed, record.epochs_asked, record.threads,
                             record.source)
        atomic_write_json(path, record.to_json())
        return path

    @contextlib.contextmanager
    def lock(self, experiment: str, variant: str, seed: int, on_wait=None):
        """Hold the run's lock while training it: a second process that needs the same run (two nights, pytest-xdist
        workers, a Ray driver) waits, then reads the first one's result. The OS drops it if its holder dies."""
        from ..core.storage import file_lock

        path = self.root / experiment / variant / f"seed{seed}.lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        with file_lock(path, f"{experiment} {variant} seed {seed}", on_wait=on_wait):
            yield

    def golden_path(self, experiment: str, variant: str) -> Path:
        return self.root / experiment / "golden" / f"{variant}.json"

    def golden(self, experiment: str, variant: str) -> GoldenRun | None:
        path = self.golden_path(experiment, variant)
        if not path.exists():
            return None
        raw = _read_json(path)
        try:
            golden = GoldenRun(Record.from_json(raw["record"], path), raw["envelope"], raw["perturbations"],
                               dict(raw.get("data_path") or {}), dict(raw.get("machine") or {}))
        except (KeyError, TypeError) as exc:
            raise ConfigError(f"golden file {path} is not a golden run ({exc}); write it again with "
                              f"`trainguard guard … replay --update`") from None
        for name, values in golden.record.steps.items():
            if not all(math.isfinite(v) for v in values) or len(golden.envelope.get(name, [])) != len(values):
                raise ConfigError(f"golden file {path}: the series {name!r} holds a non-finite value or its envelope "
                                  f"does not match it; it is not trusted: write it again")
        return golden

    def put_golden(self, experiment: str, variant: str, golden: GoldenRun) -> Path:
        path = self.golden_path(experiment, variant)
        atomic_write_json(path, golden.to_json())
        return path


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path} is corrupt or truncated ({exc}); it is not trusted: delete it and run again") from None
