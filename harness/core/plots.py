"""PNG figures for the report (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

import io
from pathlib import Path

from .storage import atomic_write_bytes


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    _pyplot().close(fig)
    atomic_write_bytes(Path(path), buffer.getvalue())
    return Path(path)


def training_curves(path: Path, title: str, histories: dict[str, "History"],  # noqa: F821
                    spread: dict | None = None, marks: dict | None = None) -> Path:
    """Per model (columns): loss (top) and accuracy (bottom) per epoch, train (running) and test.

    ``spread``: model → metric (``train_loss``, ``test_acc``) → (means, stds) per epoch of the baseline's seeds,
    shaded behind the night's curve. ``marks``: model → [(budget, metric, measured, low, high, passed)], the
    checked statistic (the night's mean over its seeds and window) against its derived band, drawn at the
    budget as a diamond on a bar; a failing check is red."""
    from matplotlib.ticker import MaxNLocator

    plt = _pyplot()
    spread, marks = spread or {}, marks or {}
    fig, axes = plt.subplots(2, len(histories), figsize=(3.6 * len(histories), 5.6), squeeze=False, sharex=True)
    for column, (label, history) in enumerate(histories.items()):
        epochs = [e.epoch for e in history.epochs]
        loss_ax, acc_ax = axes[0][column], axes[1][column]
        for ax, metric, color in ((loss_ax, "train_loss", "C0"), (acc_ax, "test_acc", "C1")):
            if metric in spread.get(label, {}):
                means, stds = spread[label][metric]
                xs = list(range(1, len(means) + 1))
                ax.fill_between(xs, [m - s for m, s in zip(means, stds)], [m + s for m, s in zip(means, stds)],
                                color=color, alpha=0.15, lw=0, label=f"baseline ±1 s.d. ({metric.replace('_', ' ')})")
        loss_ax.plot(epochs, [e.train_loss for e in history.epochs], marker=".", label="train (running)")
        loss_ax.plot(epochs, [e.test_loss for e in history.epochs], marker=".", label="test")
        acc_ax.plot(epochs, [e.train_acc for e in history.epochs], marker=".", label="train (running)")
        acc_ax.plot(epochs, [e.test_acc for e in history.epochs], marker=".", label="test")
        for budget, metric, measured, low, high, passed in marks.get(label, []):
            ax = loss_ax if metric == "train_loss" else acc_ax
            color = "tab:green" if passed else "red"
            ax.vlines(budget + 0.25, low, high, color=color, lw=3, alpha=0.6)
            ax.plot([budget + 0.25], [measured], marker="D", color=color, ms=6, mec="black", mew=0.5,
                    label="checked (band)" if passed else "FAILED check (band)")
        loss_ax.set_title(label)
        acc_ax.set_xlabel("Epoch")
        acc_ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        for ax in (loss_ax, acc_ax):
            ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("Loss")
    axes[1][0].set_ylabel("Accuracy (%)")
    for row in axes:  # one legend per row, without repeats
        handles = {}
        for ax in row:
            for handle, name in zip(*ax.get_legend_handles_labels()):
                handles.setdefault(name, handle)
        row[-1].legend(handles.values(), handles.keys(), fontsize="x-small")
    fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, path)


def accuracy_bars(path: Path, title: str, models: list[str], budgets: list[int], measured: dict,
                  published: dict, baseline: dict, failed: set = frozenset()) -> Path:
    """Test accuracy per model and budget as it was checked: the night's checked statistic, the baseline's
    centre with the derived band as whiskers (center, half-width), and the published table, side by side.
    Dicts are keyed by (model, budget); missing keys leave gaps; ``failed`` cells are outlined in red."""
    plt = _pyplot()
    series = [("this run (checked statistic)", measured, None),
              ("baseline: band derived for the night", {k: v[0] for k, v in baseline.items()},
               {k: v[1] for k, v in baseline.items()}), ("published", published, None)]
    groups = [(m, b) for m in models for b in budgets]
    series = [s for s in series if any(key in s[1] for key in groups)]
    width = 0.8 / max(1, len(series))
    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(groups)), 3.8))
    for i, (label, values, errors) in enumerate(series):
        xs = [g + (i - (len(series) - 1) / 2) * width for g in range(len(groups))]
        heights = [values.get(key, float("nan")) for key in groups]
        yerr = [errors.get(key, 0.0) for key in groups] if errors else None
        bars = ax.bar(xs, heights, width, yerr=yerr, capsize=2, label=label)
        if i == 0:
            for bar, key in zip(bars, groups):
                if key in failed:
                    bar.set_edgecolor("red")
                    bar.set_linewidth(2.5)
    ax.set_xticks(range(len(groups)), [f"{m}\n{b} ep" for m, b in groups], fontsize="small")
    ax.set_ylabel("Test accuracy (%)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize="small")
    ax.set_title(title)
    fig.tight_layout()
    return _save(fig, path)


def checked_intervals(path: Path, title: str, panels: dict[str, tuple]) -> Path:
    """One panel per metric: per (variant, budget), the band derived for the night as a vertical interval around
    the baseline's centre, the night's checked statistic as a dot (red, and a cross, where it failed), and each
    reference's value as a marker of its own. The axis follows the numbers, not zero, so a band of a hundredth is as
    visible as one of ten. ``panels``: metric → (groups, measured, baseline, references, failed): dicts keyed by
    (variant, budget); ``baseline``: (centre, half-width); ``references``: name → {(variant, budget): value}."""
    plt = _pyplot()
    widest = max(len(groups) for groups, *_ in panels.values())
    fig, axes = plt.subplots(len(panels), 1, figsize=(max(6.0, 0.8 * widest + 2.0) + 2.6, 2.6 * len(panels) + 0.6),
                             squeeze=False)  # + the legend's column, right of the panels: it never hides a point
    for ax, (metric, (groups, measured, baseline, references, failed)) in zip(axes[:, 0], panels.items()):
        xs = range(len(groups))
        for x, key in zip(xs, groups):
            if key in baseline:
                centre, half = baseline[key]
                ax.errorbar(x, centre, yerr=half, fmt="_", color="tab:orange", capsize=6, lw=2, ms=14,
                            label="band (baseline centre ± half-width)" if x == 0 else None)
        ok = [(x, measured[k]) for x, k in zip(xs, groups) if k in measured and k not in failed]
        bad = [(x, measured[k]) for x, k in zip(xs, groups) if k in measured and k in failed]
        if ok:
            ax.plot(*zip(*ok), "o", color="tab:blue", label="this run (checked statistic)")
        if bad:
            ax.plot(*zip(*bad), "X", color="red", ms=9, label="this run, outside its band")
        for marker, (name, values) in zip("dsv^", references.items()):
            found = [(x, values[k]) for x, k in zip(xs, groups) if k in values]
            if found:
                ax.plot(*zip(*found), marker, color="tab:green", mfc="none", label=name)
        ax.set_xticks(list(xs), [f"{v}\n{b} ep" for v, b in groups], fontsize="small")
        ax.set_xlim(-0.6, max(widest, 3) - 0.4)
        ax.set_ylabel(metric)
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize="x-small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.suptitle(title, fontsize="medium")
    fig.tight_layout()
    return _save(fig, path)


def loss_curves(path: Path, title: str, runs: dict[str, "History"]) -> Path:  # noqa: F821
    """Train and test loss per epoch for each run, one panel per run — like the report's "Model loss"."""
    plt = _pyplot()
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
    return _save(fig, path)


def metric_curves(path: Path, title: str, curves: dict[str, dict[str, list[list[float]]]],
                  spread: dict[str, dict[str, list[list[float]]]] | None = None) -> Path:
    """One panel per metric, one line per variant: the mean over its seeds per epoch, shaded from the lowest to the
    highest seed — or, given ``spread`` (the baseline seeds', keyed as ``curves``), from the lowest to the highest of
    those, in the variant's colour. ``curves``: metric → variant → one list of per-epoch values per seed (runs may
    differ in length: each epoch averages the seeds that reached it)."""
    from matplotlib.ticker import MaxNLocator

    def by_epoch(seeds):
        longest = max((len(values) for values in seeds), default=0)
        return list(range(1, longest + 1)), [[values[i] for values in seeds if len(values) > i] for i in range(longest)]

    plt = _pyplot()
    fig, axes = plt.subplots(1, len(curves), figsize=(max(4.2, 3.8 * len(curves)), 3.6), squeeze=False)
    for ax, (metric, by_variant) in zip(axes[0], curves.items()):
        for variant, seeds in by_variant.items():
            epochs, at = by_epoch(seeds)
            line, = ax.plot(epochs, [sum(v) / len(v) for v in at], marker=".", label=f"{variant} ({len(seeds)} seed(s))")
            behind = (spread or {}).get(metric, {}).get(variant) if spread is not None else seeds
            if behind and len(behind) > 1:
                epochs, at = by_epoch(behind)
                ax.fill_between(epochs, [min(v) for v in at], [max(v) for v in at], alpha=0.15, lw=0,
                                color=line.get_color())
        ax.set_title(metric)
        ax.set_xlabel("Epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize="x-small")
    fig.suptitle(title, fontsize="medium")
    fig.tight_layout()
    return _save(fig, path)


def trend(path: Path, title: str, metric_label: str, runs: list[str], series: dict[str, list], bands: dict) -> Path:
    """One model's checked value over the history's runs, one line per budget, with the baseline band
    (shaded, for the night's number of seeds) where there is one. ``series``: budget label → values
    (None where a run lacks the cell); ``bands``: budget label → (low, high)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(4.0, 0.6 * len(runs) + 2.5), 3.4))
    x = list(range(1, len(runs) + 1))
    for index, (label, values) in enumerate(series.items()):
        color = f"C{index}"
        points = [(i, v) for i, v in zip(x, values) if v is not None]
        ax.plot([i for i, _ in points], [v for _, v in points], marker="o", color=color, label=f"{label} epochs")
        if label in bands:
            low, high = bands[label]
            ax.axhspan(low, high, color=color, alpha=0.12)
    ax.set_xticks(x)
    ax.set_xticklabels(runs, rotation=30, ha="right", fontsize="x-small")
    ax.set_ylabel(metric_label)
    ax.set_title(title, fontsize="medium")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    return _save(fig, path)
