"""Report rendering (pure): tables per budget beside baseline and published, verdicts, notes."""

from trainguard.report import markdown as report
from trainguard.core.compare import Verdict


def test_render_shows_measured_baseline_difference_and_verdict():
    rows = {10: [{"model": "NewModel2", "train_loss": 0.61, "train_acc": 79.0, "test_acc": 70.0, "val_acc": 71.0}]}
    verdicts = [
        Verdict("baseline", "NewModel2-10", True, "ok", "NewModel2", 10, "train_loss", 0.61, 0.60, 0.05, mde=0.06),
        Verdict("baseline", "NewModel2-10", True, "ok", "NewModel2", 10, "train_acc", 79.0, 79.3, 2.0, mde=2.4),
        Verdict("baseline", "NewModel2-10", False, "NewModel2-10 Test Accuracy: measured 70.00 — REGRESSION",
                "NewModel2", 10, "test_acc", 70.0, 79.67, 2.5, mde=3.1),
        Verdict("ranking", "ranking@10", True, "ranking at 10 epochs holds"),
    ]
    published = {("NewModel2", 10, "test_acc"): 79.67}
    text = report.render("t", {"profile": "ci", "device": "cpu", "wall time": "1.0 s"}, (10, 20), rows,
                         verdicts, published, notes=["a note"], published_note="reference only")
    assert "**Result: FAIL** — 3 of 4 checks passed." in text
    assert "## 10 epochs" in text and "## 20 epochs" not in text  # no rows for 20
    assert "77.17 … 82.17" in text and "-9.67" in text and "**FAIL**" in text and "| 3.10 " in text
    assert "| Validation Accuracy" in text and "71.00" in text
    assert "reference only" in text and "> a note" in text
    assert "## Failures" in text and "REGRESSION" in text
    assert "| wall time" in text


def test_loss_curve_figure_is_a_png(tmp_path):
    from trainguard.core import plots
    from trainguard.core.history import EpochRecord, History

    def history(train, test):
        h = History("m", 0, "cpu", 1)
        h.epochs = [EpochRecord(i + 1, a, 0.0, b, 0.0, 0.0, {"val_loss": b + 1}) for i, (a, b) in enumerate(zip(train, test))]
        return h

    path = plots.loss_curves(tmp_path / "loss.png", "Model loss",
                             {"without dropout": history([9, 1, 0], [5, 4, 6]), "Dropout(0.5)": history([9, 3, 2], [5, 3, 3])})
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000


def test_the_models_figures_are_written_and_embedded(tmp_path):
    from trainguard.core import plots

    histories = {"Baseline1": _h([2.2, 2.1], [30.0, 35.0]), "NewModel2": _h([1.5, 1.0], [50.0, 60.0])}
    curves = plots.training_curves(tmp_path / "c.png", "curves", histories)
    bars = plots.accuracy_bars(tmp_path / "b.png", "bars", ["Baseline1", "NewModel2"], [1, 2],
                               {("Baseline1", 1): 30.0, ("NewModel2", 2): 60.0}, {("Baseline1", 1): 39.6},
                               {("NewModel2", 2): (58.0, 2.0)})
    for path in (curves, bars):
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000


def _h(losses, accs):
    from trainguard.core.history import EpochRecord, History

    h = History("m", 0, "cpu", 1)
    h.epochs = [EpochRecord(i + 1, loss, acc - 5, loss + 0.1, acc, 1.0) for i, (loss, acc) in enumerate(zip(losses, accs))]
    return h


def test_published_vs_measured_table_marks_cells_outside_the_band():
    from trainguard.stores.baselines import BaselineTable
    from trainguard.core.spec import load_profile

    profile = load_profile("seed")
    curves = {("Baseline2", seed): [{"train_loss": 1.40 + d / 100, "train_acc": 58.0 + d / 2, "test_acc": 59.0 + d}] * 10
              for seed, d in enumerate((-1.0, 0.0, 1.0))}
    table = BaselineTable(path=None, meta={}, curves=curves)
    published = {("Baseline2", 10, "test_acc"): 60.91, ("Baseline2", 10, "train_loss"): 1.17,
                 ("Baseline2", 10, "train_acc"): 58.35}
    text = report.published_vs_measured(table, published, profile)
    rows = {line.split("|")[3].strip(): line for line in text.splitlines()[2:]}
    assert "59.00 ± 1.00 (3)" in rows["Test Accuracy"] and "-1.91" in rows["Test Accuracy"] and "| yes" in rows["Test Accuracy"]
    assert "+0.2300" in rows["Train Loss"] and "**no**" in rows["Train Loss"]
    assert "| —" in rows["Train Accuracy"]  # shown, not banded


def test_baseline_versions_say_what_differs_and_what_the_baseline_did_not_record():
    from trainguard.api import versions_line

    now = {"torch": "2.14.1", "torch_threads": "2", "isa": "AVX512"}
    assert versions_line({"torch": "2.14.1", "torch_threads": "2", "isa": "AVX512"}, now, "2") == "same as the baseline's"
    # a baseline measured before the instruction set was recorded: unknown, not a difference
    assert versions_line({"torch": "2.14.1", "torch_threads": "2"}, now, "2") == \
        "same as the baseline's (the baseline did not record: isa AVX512)"
    assert versions_line({"torch": "2.14.1", "torch_threads": "1", "isa": "AVX2"}, now, "2 (--threads)") == \
        ("DIFFER from the baseline's: isa AVX512 (baseline AVX2), torch_threads 2 (baseline 1), "
         "this run's threads: 2 (--threads)")


def test_the_published_note_says_how_far_the_report_s_table_applies(tmp_path):
    """The published table's protocol is data beside it (baselines/published.json), not a data set named in code."""
    from pathlib import Path
    from types import SimpleNamespace as NS

    from trainguard.checks import published
    from trainguard.core.spec import load_profile

    shipped = Path(__file__).parent.parent / "baselines"

    def note(profile, directory=shipped):
        return published.note(NS(profile=load_profile(profile), options=NS(baselines_dir=directory),
                                 dataset=NS(test_split="first 1,000 of the 10,000 test images")))

    assert note("seed") == "same protocol; this run's test split: first 1,000 of the 10,000 test images"
    from trainguard.experiments import cifar_models

    assert note(str(cifar_models.SETTINGS)) == "reference only: the report trained on all 50,000 images; this profile uses less data"
    assert note("smoke") == "reference only: the report measured it on CIFAR-10; this profile trains on synthetic data"
    assert note("seed", tmp_path).startswith("reference only: what it was measured on is not recorded")
