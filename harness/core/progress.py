"""Progress of a training run: a tqdm bar on a terminal, one line per epoch elsewhere.

The bar advances per batch (no device sync: it only counts) and shows the last epoch's
loss and accuracies; lines are what CI logs and pytest's captured output want. The bar is
off when the stream is not a terminal, when ``CI`` is set, or with TRAINGUARD_PROGRESS=lines.
"""

from __future__ import annotations

import os
import sys
from typing import Callable, TextIO

from .history import EpochRecord

Printer = Callable[[str], None]


def interactive(stream: TextIO | None = None) -> bool:
    stream = stream or sys.stderr
    if os.environ.get("CI") or os.environ.get("TRAINGUARD_PROGRESS", "").lower() == "lines":
        return False
    return hasattr(stream, "isatty") and stream.isatty()


def epoch_line(label: str, record: EpochRecord, epochs: int) -> str:
    """The report's own log format (docs/protocol.md), plus test accuracy and time."""
    return (f"[trainguard] {label} | Epoch: {record.epoch}/{epochs} | Loss: {record.train_loss:.4f} | "
            f"Train Accuracy: {record.train_acc:.2f} | Test Accuracy: {record.test_acc:.2f} | {record.seconds:.1f}s")


class RunProgress:
    """One training run's progress. Use as a context manager; pass ``batch`` and ``epoch`` to the engine."""

    def __init__(self, label: str, epochs: int, batches_per_epoch: int, printer: Printer, bar: bool) -> None:
        self.label, self.epochs, self.printer = label, epochs, printer
        self._bar = None
        if bar:
            from tqdm import tqdm

            self._bar = tqdm(total=epochs * batches_per_epoch, desc=label, unit="batch", leave=True,
                             dynamic_ncols=True, file=sys.stderr)

    def __enter__(self) -> "RunProgress":
        return self

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.close()

    def batch(self) -> None:
        if self._bar is not None:
            self._bar.update(1)

    def epoch(self, history, record: EpochRecord, label: str | None = None) -> None:
        if self._bar is None:
            self.printer(epoch_line(label or self.label, record, self.epochs))
            return
        self._bar.set_postfix_str(f"epoch {record.epoch}/{self.epochs} loss {record.train_loss:.4f} "
                                  f"train {record.train_acc:.2f} test {record.test_acc:.2f}")
