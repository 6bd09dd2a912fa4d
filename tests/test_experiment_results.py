"""What an experiment's runs measured, in the report (trainguard.checks.experiment_results): any experiment's declared
metrics at each budget, per seed with the variant's mean, the runs that failed, and its figure — built from the
records alone, the same for a user's experiment as for the report's own."""

import struct

import pytest

from trainguard.checks.experiment_results import Results, draw, gather, section, table_rows
from trainguard.core.experiment import Experiment
from trainguard.stores.experiment_records import Record

EXPERIMENT = Experiment("toy", lambda run: None, {"loss": "lower", "acc": "higher"}, budgets=(1, 3),
                        variants={"a": {}, "b": {}})


def _record(variant: str, seed: int, loss: list[float], acc: list[float], status: str = "completed") -> Record:
    return Record("toy", variant, seed, 3, 1, "src", epochs={"loss": loss, "acc": acc}, status=status,
                  message="" if status == "completed" else "it raised ValueError")


@pytest.fixture
def night():
    return {("b", 1): _record("b", 1, [2.0, 1.0, 0.5], [10.0, 20.0, 30.0]),
            ("a", 2): _record("a", 2, [4.0, 3.0, 2.0], [1.0, 2.0, 5.0]),
            ("a", 1): _record("a", 1, [6.0, 5.0, 4.0], [3.0, 4.0, 7.0]),
            ("b", 2): _record("b", 2, [], [], status="error")}


def test_each_metric_at_each_budget_per_seed_then_the_variant_s_mean(night):
    results = gather(EXPERIMENT, night)
    assert results.variants == ["a", "b"]  # the experiment's order, not the delivery's
    rows = table_rows(results)
    assert [(r["variant"], r["seed"]) for r in rows] == [("a", "1"), ("a", "2"), ("a", "mean"), ("b", "1")]
    assert rows[0] == {"variant": "a", "seed": "1", "loss @1 (↓)": "6", "loss @3 (↓)": "4", "acc @1 (↑)": "3",
                       "acc @3 (↑)": "7"}
    assert rows[2]["loss @3 (↓)"] == "3" and rows[2]["acc @3 (↑)"] == "6"  # means of 4 and 2, of 7 and 5
    assert results.failed == ["b seed 2: error: it raised ValueError"]


def test_a_run_shorter_than_a_budget_shows_a_dash_not_a_number():
    results = gather(EXPERIMENT, {("a", 1): _record("a", 1, [1.0], [2.0])})
    assert table_rows(results)[0]["loss @3 (↓)"] == "—"


def test_the_section_lists_the_failed_runs_and_draws_only_when_asked(night, tmp_path):
    results = gather(EXPERIMENT, night)
    report = tmp_path / "night.md"
    without = "\n".join(section(results, report, figures=False))
    assert "| a         | mean   |" in without and "- not completed: b seed 2: error" in without
    assert "![" not in without and not list(tmp_path.iterdir())
    drawn = "\n".join(section(results, report, figures=True))
    figure = tmp_path / "night-experiment-toy.png"
    assert f"]({figure.name})" in drawn
    header = figure.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", header[16:24])
    assert width > 2 * height  # one panel per metric, side by side


def test_no_completed_run_draws_nothing_and_says_so(tmp_path):
    results = gather(EXPERIMENT, {("a", 1): _record("a", 1, [], [], status="timeout")})
    assert draw(results, tmp_path / "x.png") is None
    assert "No run completed." in section(results, tmp_path / "r.md", figures=True)


def test_an_experiment_name_becomes_a_safe_file_name(tmp_path):
    results = Results("../my exp", {"loss": "lower"}, (1,), {("a", 0): {"loss": [1.0]}})
    lines = section(results, tmp_path / "r.md", figures=True)
    assert (tmp_path / "r-experiment----my-exp.png").is_file() and any("r-experiment----my-exp.png" in l for l in lines)


def test_the_bands_as_checked_per_budget_a_table_and_a_figure_beside_each_band_and_reference(night, tmp_path):
    """What the models' section shows of their bands, for any experiment: per budget, each variant × metric's
    statistic, its band, the difference from its centre, the MDE and the verdict (a failed one in bold); one figure
    of every checked statistic beside its band and the references' values."""
    from trainguard.checks.experiment_results import Checked, checked_rows, checked_section

    results = gather(EXPERIMENT, night)
    results.references = [("a paper", "", {("a", "acc", 3): 6.5})]
    checked = [Checked("a", 1, "loss", 5.0, 5.2, 0.5, 0.7, True), Checked("a", 3, "acc", 6.0, 4.0, 1.0, 1.4, False),
               Checked("b", 3, "acc", None, None, None, None, False)]
    assert checked_rows(checked, 3) == [
        {"Variant": "a", "Metric": "acc", "Measured": "6", "Band": "3 … 5", "Δ": "+2", "MDE": "1.4",
         "Verdict": "**FAIL**"},
        {"Variant": "b", "Metric": "acc", "Measured": "—", "Band": "—", "Δ": "—", "MDE": "—", "Verdict": "**FAIL**"}]
    lines = "\n".join(checked_section(results, checked, tmp_path / "r.md", figures=True))
    assert "#### Against the baseline at 1 epochs" in lines and "#### Against the baseline at 3 epochs" in lines
    figure = tmp_path / "r-experiment-toy-checked.png"
    assert f"]({figure.name})" in lines and figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    one = checked_section(results, checked[1:], tmp_path / "one.md", figures=True)
    assert any("one-experiment-toy-checked.png" in line for line in one)
    heights = [struct.unpack(">II", f.read_bytes()[16:24])[1] for f in (figure, tmp_path / "one-experiment-toy-checked.png")]
    assert heights[0] > 1.5 * heights[1]  # one panel per metric, one above the other
    assert checked_section(results, [], tmp_path / "r.md", figures=True) == []  # nothing checked: nothing said


def test_the_baseline_seeds_spread_is_kept_to_draw_behind_the_night_s_curves(night, tmp_path):
    """Where the night's curve lies within what the baseline's seeds did: their completed runs' curves, drawn as the
    shaded range in the variant's colour (the models' curves over the baseline's spread, for any experiment)."""
    baseline = {("a", 0): _record("a", 0, [5.0, 4.0, 3.0], [2.0, 3.0, 4.0]),
                ("a", 7): _record("a", 7, [], [], status="error")}
    results = gather(EXPERIMENT, night, baseline)
    assert results.baseline == {("a", 0): {"loss": [5.0, 4.0, 3.0], "acc": [2.0, 3.0, 4.0]}}
    assert draw(results, tmp_path / "x.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert gather(EXPERIMENT, night).baseline == {}


def test_a_reference_row_is_followed_by_the_night_s_difference_from_it_at_the_same_epoch(night):
    results = gather(EXPERIMENT, night)
    results.references = [("a paper", "", {("a", "loss", 3): 2.5, ("a", "acc", 1): 1.0})]
    rows = {r["seed"]: r for r in table_rows(results) if r["variant"] == "a"}
    assert rows["a paper"]["loss @3 (↓)"] == "2.5" and rows["a paper"]["acc @3 (↑)"] == "—"
    # seeds 1 and 2 at epoch 3: loss 4 and 2, mean 3; acc at epoch 1: 3 and 1, mean 2
    assert rows["Δ a paper"]["loss @3 (↓)"] == "+0.5" and rows["Δ a paper"]["acc @1 (↑)"] == "+1"
    assert rows["Δ a paper"]["loss @1 (↓)"] == "—"
