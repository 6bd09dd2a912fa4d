"""PNG figures for the report (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

import io
from pathlib import Path

from .storage import atomic_write_bytes


def loss_curves(path: Path, title: str, runs: dict[str, "History"]) -> Path:  # noqa: F821
    """Train and test loss per epoch for each run, one panel per run — like the report's "Model loss"."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(runs), figsize=(5 * len(runs), 3.6), sharey=True, squeeze=False)
    for ax, (label, history) in zip(axes[0], runs.items()):
        epochs = [e.epoch for e in history.epochs]
        ax.plot(epochs, [e.train_loss for e in history.epochs], marker="o", label="Train")
        ax.plot(epochs, [e.test_loss for e in history.epochs], marker="o", label="Test (10,000 images)")
        if history.epochs and "val_loss" in history.epochs[0].extra:
            ax.plot(epochs, [e.extra["val_loss"] for e in history.epochs], ls="--", alpha=0.6, label="Validation (50 images)")
        ax.set_title(label)
        ax.set_xlabel("Epoch")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("Loss")
    axes[0][-1].legend()
    fig.suptitle(title)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    atomic_write_bytes(Path(path), buffer.getvalue())
    return Path(path)
