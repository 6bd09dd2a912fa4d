"""Profiles, baseline files and the comparison rules — pure, no training."""

import json
import textwrap

import pytest

from harness import baselines as bl
from harness import compare
from harness.spec import ConfigError, Tolerance, available_profiles, load_profile, parse_profile


def test_shipped_profiles_load():
    assert {"smoke", "ci", "seed"} <= set(available_profiles())
    for name in available_profiles():
        profile = load_profile(name)
        assert profile.name == name and profile.budgets == tuple(sorted(profile.budgets))
        assert len(profile.baseline_seeds) >= 3


def test_ci_profile_is_the_issue_s_reduced_real_data():
    ci = load_profile("ci")
    assert ci.dataset == "cifar10" and ci.budgets == (10, 20) and len(ci.models) == 4
    assert ci.training("Baseline2").lr == 0.01
    assert set(ci.checks) == {"baseline", "ranking", "budget_improves"}


def test_unknown_profile_lists_known_ones():
    with pytest.raises(ConfigError, match="unknown profile 'nope'.*ci"):
        load_profile("nope")


@pytest.mark.parametrize("change, message", [
    ({"models": ["Baseline9"]}, "unknown model 'Baseline9'"),
    ({"budgets": []}, "'budgets' must be a non-empty list"),
    ({"dataset": "imagenet"}, "dataset 'imagenet'"),
    ({"checks": ["vibes"]}, "unknown check 'vibes'"),
    ({"training": {"lr": "fast"}}, "training key 'lr' must be a number"),
    ({"training": {"momentun": 0.9}}, "unknown training key 'momentun'"),
    ({"tolerance": {"test_loss2": {"abs": 1}}}, r"\[tolerance.test_loss2\] is not a metric"),
    ({"name": "../../etc"}, "'name' '../../etc' must be a plain name"),
    ({"name": "a/b"}, "must be a plain name"),
    ({"published": {"test_accuracy": 2.5}}, r"\[published\]: unknown key 'test_accuracy'"),
    ({"published": {"seeds": "0,1"}}, r"\[published\]: 'seeds' must be a list of integers"),
    ({"published": {"test_acc": -1}}, r"\[published\]: band 'test_acc' must be a number >= 0"),
    ({"training": {"augment": "mixup"}}, "training key 'augment' must be one of none, flip, flip_crop"),
    ({"baseline_seeds": [1]}, "at least 2 seeds"),
])
def test_malformed_profile_names_the_key(change, message):
    raw = {"name": "x", "dataset": "cifar10", "budgets": [1], "models": ["Baseline1"], **change}
    with pytest.raises(ConfigError, match=message):
        parse_profile(raw, source="x.toml")


def test_profile_file_that_is_not_toml(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("name = [unclosed")
    with pytest.raises(ConfigError, match=f"{path} is not valid TOML"):
        load_profile(str(path))


CELLS = {(m, b, metric): bl.BaselineCell(1.0 + b, 0.1, 5)
         for m in ("Baseline1", "Baseline2") for b in (10, 20) for metric in bl.METRICS}


def write_table(tmp_path):
    path = tmp_path / "ci" / "cpu.csv"
    bl.write_measured(path, CELLS, ("Baseline1", "Baseline2"), (10, 20), {"seeds": [0, 1]})
    return path


def test_measured_table_round_trips(tmp_path):
    path = write_table(tmp_path)
    table = bl.load_measured(path, ("Baseline1", "Baseline2"), (10, 20))
    assert table.cells == CELLS and table.meta["seeds"] == [0, 1]
    assert path.read_text().splitlines()[0].startswith("model,epochs,train_loss_mean,train_loss_std,train_loss_n")


@pytest.mark.parametrize("edit, message", [
    (lambda t: t.replace("train_acc_std", "train_acc_sd"), r"missing column\(s\) \['train_acc_std'\]"),
    (lambda t: t.replace("11.0000", "eleven", 1), "line 2, column 'train_loss_mean': expected a number, got 'eleven'"),
    (lambda t: "\n".join(t.splitlines()[:-1]) + "\n", "no row for Baseline2-20"),
])
def test_malformed_baseline_names_file_line_and_column(tmp_path, edit, message):
    path = write_table(tmp_path)
    path.write_text(edit(path.read_text()))
    with pytest.raises(ConfigError, match=message):
        bl.load_measured(path, ("Baseline1", "Baseline2"), (10, 20))


def test_baseline_of_another_format_version_is_refused(tmp_path):
    path = write_table(tmp_path)
    meta = bl.meta_path(path)
    meta.write_text(json.dumps({**json.loads(meta.read_text()), "format_version": 99}))
    with pytest.raises(ConfigError, match="format_version 99"):
        bl.load_measured(path, (), ())


def test_published_table_is_the_report_verbatim():
    from pathlib import Path

    published = bl.load_published(Path(__file__).parent.parent / "baselines" / "published.csv")
    assert published[("NewModel2", 20, "test_acc")] == 84.61
    assert published[("Baseline1", 10, "train_loss")] == 2.07
    assert len(published) == 4 * 2 * 3


def test_diff_reports_what_changed():
    new = dict(CELLS)
    new[("Baseline1", 10, "test_acc")] = bl.BaselineCell(12.5, 0.2, 5)
    lines = bl.diff_cells(CELLS, new)
    assert lines == ["Baseline1-10 test_acc: mean 11.0000 → 12.5000 (+1.5000), std 0.1000 → 0.2000, n 5 → 5"]
    assert bl.diff_cells(CELLS, CELLS) == ["no change"]


def test_tolerance_is_absolute_plus_k_std():
    cell = bl.BaselineCell(60.0, 1.0, 5)
    tol = Tolerance(abs=2.0, k_std=3.0)
    assert compare.check_against_baseline("M", 10, "test_acc", 64.9, cell, tol, "b.csv").passed
    failed = compare.check_against_baseline("M", 10, "test_acc", 54.9, cell, tol, "b.csv")
    assert not failed.passed
    for part in ("M-10", "Test Accuracy", "measured 54.90", "baseline 60.00", "allowed ±5.0000", "REGRESSION"):
        assert part in failed.message


def test_loss_regression_direction():
    cell = bl.BaselineCell(1.0, 0.0, 3)
    up = compare.check_against_baseline("M", 10, "train_loss", 1.5, cell, Tolerance(0.1), "b")
    down = compare.check_against_baseline("M", 10, "train_loss", 0.5, cell, Tolerance(0.1), "b")
    assert "REGRESSION" in up.message and "DEVIATION (better than baseline" in down.message


def test_ranking_and_budget_checks():
    order = ["Baseline1", "Baseline2", "NewModel1"]
    assert compare.check_ranking(10, order, {"Baseline1": 30, "Baseline2": 40, "NewModel1": 50}).passed
    broken = compare.check_ranking(10, order, {"Baseline1": 30, "Baseline2": 50, "NewModel1": 45})
    assert not broken.passed and "Baseline2 (50.00) is not below NewModel1 (45.00)" in broken.message
    assert compare.check_budget_improves("M", 10, 20, 50.0, 51.0).passed
    flat = compare.check_budget_improves("M", 10, 20, 50.0, 50.0)
    assert not flat.passed and "did not improve" in flat.message


def test_pooled_std_is_a_floor_for_a_cell_whose_few_seeds_agreed():
    cells = {("A", 10, "test_acc"): bl.BaselineCell(40.0, 0.5, 5), ("B", 10, "test_acc"): bl.BaselineCell(50.0, 2.0, 5),
             ("C", 10, "test_acc"): bl.BaselineCell(60.0, 2.0, 5)}
    table = bl.BaselineTable(None, cells, {})
    pooled = table.pooled_std(10, "test_acc")
    assert pooled == pytest.approx(((0.25 + 4 + 4) / 3) ** 0.5)
    tol = Tolerance(abs=2.0, k_std=3.0)
    verdict = compare.check_against_baseline("A", 10, "test_acc", 35.5, cells[("A", 10, "test_acc")], tol, "b", pooled)
    assert verdict.passed and "pooled over models" in verdict.message  # 4.5 off: within 2 + 3·1.66
    own = compare.check_against_baseline("B", 10, "test_acc", 58.5, cells[("B", 10, "test_acc")], tol, "b", pooled)
    assert not own.passed  # 8.5 off, beyond 2 + 3·2.0: the cell's own larger std is kept


def test_published_check_defaults_to_the_issue_s_bands_and_reads_overrides():
    base = {"name": "x", "dataset": "cifar10", "budgets": [1], "models": ["Baseline1"]}
    default = parse_profile(base).published
    assert default.band("test_acc") == 2.5 and default.band("train_loss") == 0.10 and default.band("train_acc") is None
    custom = parse_profile({**base, "published": {"seeds": [0, 1, 2], "train_acc": 3}}).published
    assert custom.seeds == (0, 1, 2) and custom.band("train_acc") == 3.0 and custom.band("test_acc") == 2.5


def test_published_check_compares_the_seed_mean_with_an_absolute_band():
    ok = compare.check_against_published("Baseline2", 10, "test_acc", [59.0, 61.0, 63.0], 60.91, 2.5)
    assert ok.passed and ok.measured == pytest.approx(61.0) and "mean of 3 seeds" in ok.message
    off = compare.check_against_published("NewModel1", 20, "train_loss", [0.60], 0.76, 0.10)
    assert not off.passed
    assert off.message == ("NewModel1-20 Train Loss vs published: measured 0.6000 (1 seed), published 0.7600, "
                           "difference -0.1600, allowed ±0.1 — OUTSIDE THE PUBLISHED BAND")
