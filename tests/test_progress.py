"""Progress output: a bar on a terminal, one line per epoch in CI and in pipes."""

import io

from trainguard.core import progress
from trainguard.core.history import EpochRecord

RECORD = EpochRecord(epoch=2, train_loss=1.23456, train_acc=55.5, test_loss=1.3, test_acc=54.25, seconds=3.2)


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


def test_bar_only_on_a_terminal_outside_ci(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("TRAINGUARD_PROGRESS", raising=False)
    assert progress.interactive(FakeTerminal()) and not progress.interactive(io.StringIO())
    monkeypatch.setenv("CI", "true")
    assert not progress.interactive(FakeTerminal())
    monkeypatch.delenv("CI")
    monkeypatch.setenv("TRAINGUARD_PROGRESS", "lines")
    assert not progress.interactive(FakeTerminal())


def test_lines_use_the_report_s_log_format():
    lines = []
    with progress.RunProgress("Baseline2 seed 0", 20, 10, lines.append, bar=False) as p:
        p.batch()
        p.epoch(None, RECORD)
    assert lines == ["[trainguard] Baseline2 seed 0 | Epoch: 2/20 | Loss: 1.2346 | Train Accuracy: 55.50 | "
                     "Test Accuracy: 54.25 | 3.2s"]


def test_bar_counts_batches_and_shows_the_epoch(monkeypatch, capsys):
    lines = []
    with progress.RunProgress("NewModel2 seed 1", 2, 3, lines.append, bar=True) as p:
        for _ in range(3):
            p.batch()
        p.epoch(None, RECORD)
        assert p._bar.n == 3 and p._bar.total == 6
    assert lines == []  # the bar replaces the lines
    assert "NewModel2 seed 1" in capsys.readouterr().err


def test_an_experiment_s_progress_line_shows_its_declared_metrics_and_a_millisecond_epoch_in_ms():
    import re

    import trainguard
    from trainguard.runs.experiment_runs import epoch_lines, train

    @trainguard.experiment(metrics={"loss": "lower"}, budgets=(2,), baseline_seeds=(0, 1), check_seeds=(100,))
    def quick(run):
        for epoch in range(run.budget):
            run.epoch(loss=1.0 / (epoch + 1))

    lines: list[str] = []
    record = train(quick, "default", 0, 2, on_epoch=epoch_lines("quick default seed 0", lines.append))
    assert record.completed, record.message
    assert [re.sub(r"\d+ms$", "Nms", line) for line in lines] == [
        "[trainguard] quick default seed 0 | epoch 1/2 | loss 1 | Nms",
        "[trainguard] quick default seed 0 | epoch 2/2 | loss 0.5 | Nms"]


def test_a_function_that_reports_after_training_shows_each_epoch_s_stated_time():
    """A function that trains first and then reports its epochs from a framework's history (as the MNIST plug-in
    does) states each epoch's time (run.epoch_time): its progress line shows that time, once per epoch — not the
    microseconds between its reports."""
    import trainguard
    from trainguard.runs.experiment_runs import epoch_lines, train

    @trainguard.experiment(metrics={"loss": "lower"}, budgets=(2,), baseline_seeds=(0, 1), check_seeds=(100,))
    def after_the_fact(run):
        history = [(1.0, 1.5), (0.5, 2.5)]  # (loss, seconds) per epoch, as a framework's history holds them
        for loss, seconds in history:
            run.epoch(loss=loss)
            run.epoch_time(seconds)

    lines: list[str] = []
    record = train(after_the_fact, "default", 0, 2, on_epoch=epoch_lines("late default seed 0", lines.append))
    assert record.completed, record.message
    assert lines == ["[trainguard] late default seed 0 | epoch 1/2 | loss 1 | 1.5s",
                     "[trainguard] late default seed 0 | epoch 2/2 | loss 0.5 | 2.5s"]
