"""The history of one training run: per-epoch metrics, status, and its JSON form.

Shared by every training loop that reports epochs this way: the comparison and the report read only this.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

FORMAT_VERSION = 1


@dataclass(frozen=True)
class EpochRecord:
    epoch: int  # 1-based: the record after `epoch` epochs of training
    train_loss: float  # running mean over the epoch, train mode (as the report's log line prints it)
    train_acc: float  # percent, running, train mode
    test_loss: float
    test_acc: float  # percent, eval mode, after the epoch
    seconds: float  # wall time of the epoch's training (evaluation excluded)
    extra: dict = field(default_factory=dict)  # metrics beyond these (the validation split's val_loss, val_acc)

    def metric(self, name: str) -> float:
        if name in self.extra:
            return self.extra[name]
        return getattr(self, name)


@dataclass
class History:
    model: str
    seed: int
    device: str  # the device's own name, e.g. "cpu" or "NVIDIA H100 80GB HBM3"
    parameters: int
    epochs: list[EpochRecord] = field(default_factory=list)
    status: str = "completed"  # completed | diverged | oom | interrupted
    failed_epoch: int | None = None
    message: str = ""
    key: str = ""
    spec: dict = field(default_factory=dict)
    # MiB: CUDA, torch.cuda.max_memory_allocated during the run; CPU, the process's peak RSS at the run's
    # end (a high-water mark of the whole process, so it never falls within one process). None: not measured.
    peak_memory_mb: float | None = None

    @classmethod
    def not_trained(cls, model: str, seed: int, device: str, status: str, message: str) -> "History":
        """A run with no epoch: ``missing`` (no stored result, nothing to train) or ``timeout`` (a bounded wait ran out
        before it started)."""
        return cls(model, seed, device, 0, status=status, failed_epoch=None if status == "missing" else 1, message=message)

    @property
    def completed(self) -> bool:
        return self.status == "completed"

    def at(self, budget: int) -> EpochRecord:
        """The snapshot after `budget` epochs (valid because the learning rate is constant)."""
        if budget > len(self.epochs):
            raise IndexError(f"{self.model} seed {self.seed}: history has {len(self.epochs)} epochs, asked for {budget}"
                             + (f" (run {self.status} at epoch {self.failed_epoch})" if not self.completed else ""))
        return self.epochs[budget - 1]

    def to_json(self) -> dict:
        data = dataclasses.asdict(self)
        data["format_version"] = FORMAT_VERSION
        return data

    @classmethod
    def from_json(cls, data: dict) -> "History":
        if data.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"history format_version {data.get('format_version')!r}, expected {FORMAT_VERSION}")
        data = dict(data)
        data.pop("format_version")
        data["epochs"] = [EpochRecord(**e) for e in data["epochs"]]
        return cls(**data)
