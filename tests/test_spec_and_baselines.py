"""Profiles, baseline files and the comparison rules — pure, no training."""

import json

import pytest

from trainguard.stores import baselines as bl
from trainguard.core import compare
from trainguard.core.spec import ConfigError, available_profiles, load_profile, parse_profile


def test_shipped_profiles_load():
    assert {"smoke", "ci", "seed"} <= set(available_profiles())
    for name in available_profiles():
        profile = load_profile(name)
        assert profile.name == name and profile.budgets == tuple(sorted(profile.budgets))
        assert len(profile.baseline_seeds) >= 3
        if "baseline" in profile.checks:  # a night checks seeds that are not in its own baseline
            assert not set(profile.check_seeds) & set(profile.baseline_seeds), name


def test_ci_profile_is_the_issue_s_reduced_real_data(tmp_path):
    """The ci profile declares the report's two experiments; the CIFAR-10 plug-in's settings are the reduced real
    data."""
    from trainguard.experiments import cifar_models

    assert load_profile("ci").experiments[0] == "trainguard.experiments.cifar_models:ci" and not load_profile("ci").models
    ci = load_profile("cifar-models-ci")  # the plug-in's settings by name, as --profile takes them
    assert ci == load_profile(str(cifar_models.SETTINGS)) and "cifar-models-ci" not in available_profiles()
    assert ci.name == "ci" and cifar_models.ci.name == "cifar-models-ci"  # baselines/ci/, the ledger's ci nights
    assert ci.cli_name == "cifar-models-ci"  # what a message tells a user to pass as --profile
    from trainguard.core.spec import baselines_dir_for, packaged_baselines_dir

    assert baselines_dir_for(ci, cwd=tmp_path) == packaged_baselines_dir()  # shipped, as a built-in profile's
    assert ci.dataset == "cifar10" and ci.budgets == (10, 20) and len(ci.models) == 4
    assert ci.training("Baseline2").lr == 0.01
    assert set(ci.checks) == {"baseline", "ranking", "budget_improves"}


def test_unknown_profile_lists_known_ones():
    with pytest.raises(ConfigError, match="unknown profile 'nope'.*ci"):
        load_profile("nope")


def test_a_data_set_the_store_does_not_serve_stops_the_night_naming_the_profile_file():
    from trainguard import Options
    from trainguard.stores.data import check_profile_dataset

    profile = parse_profile({"name": "x", "dataset": "imagenet", "budgets": [1], "models": ["Baseline1"]},
                            source="x.toml")
    with pytest.raises(ConfigError, match=r"x.toml: dataset 'imagenet' is not one of cifar10, synthetic"):
        Options(profile=profile, device="cpu")
    with pytest.raises(ConfigError, match="x.toml: dataset 'imagenet'"):
        check_profile_dataset(profile)


@pytest.mark.parametrize("change, message", [
    ({"models": ["Baseline9"]}, "unknown model 'Baseline9'"),
    ({"budgets": []}, "'budgets' must be a non-empty list"),
    ({"checks": ["vibes"]}, "unknown check 'vibes'"),
    ({"training": {"lr": "fast"}}, "training key 'lr' must be a number"),
    ({"training": {"momentun": 0.9}}, "unknown training key 'momentun'"),
    ({"tolerance": {"test_acc": {"abs": 1}}}, r"\[tolerance\] sections are gone: bands are derived"),
    ({"statistics": {"false_alarm_rate": 0.7}}, r"\[statistics\]: false_alarm_rate must be between 0 and 0.5"),
    ({"statistics": {"window": 5}}, r"window 5 is longer than the smallest budget 1"),
    ({"statistics": {"alpha": 0.1}}, r"\[statistics\]: unknown key\(s\) \['alpha'\]"),
    ({"check_seeds": []}, "'check_seeds' must be a non-empty list"),
    ({"val_per_class": 0}, "'val_per_class' must be a positive integer"),
    ({"mnist": {"min_gap": 8.0}}, r"the \[mnist\] section is retired: .*experiments = "),
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


MODELS = ("Baseline1", "Baseline2")


def _curves():
    """Two models × three seeds × 20 epochs of made-up curves; seed s shifts every value by s/10."""
    return {(m, seed): [{"train_loss": 2.0 - e / 20 + seed / 10, "train_acc": 30.0 + e + seed / 10,
                         "test_loss": 2.1, "test_acc": 29.0 + e + seed / 10 + (i == 0) * 5, "val_loss": float("nan"),
                         "val_acc": float("nan")} for e in range(1, 21)]
            for i, m in enumerate(MODELS) for seed in (0, 1, 2)}


def write_table(tmp_path):
    path = tmp_path / "ci" / "cpu.csv"
    bl.write_measured(path, _curves(), MODELS, (10, 20), {"seeds": [0, 1, 2], "eval_images": {"test": 1000}})
    return path


def test_measured_baseline_round_trips_per_seed_curves(tmp_path):
    path = write_table(tmp_path)
    table = bl.load_measured(path, MODELS, (10, 20))
    assert table.seeds == (0, 1, 2) and table.meta["seeds"] == [0, 1, 2]
    assert table.values("Baseline2", 20, "test_acc") == pytest.approx([49.0, 49.1, 49.2])
    # the window mean of epochs 18-20 of seed 0: (47 + 48 + 49) / 3
    assert table.values("Baseline2", 20, "test_acc", window=3)[0] == pytest.approx(48.0)
    assert table.cell("Baseline1", 10, "test_acc").mean == pytest.approx(44.1)
    assert not table.has("val_acc") and table.cell("Baseline1", 10, "val_acc") is None
    assert table.without([0]).seeds == (1, 2)
    assert table.resolution("test_acc") == pytest.approx(0.1)
    summary = path.read_text().splitlines()
    assert summary[0].startswith("model,epochs,train_loss_mean,train_loss_std,train_loss_n") and len(summary) == 5


def _empty_cell(text: str) -> str:
    lines = text.splitlines()
    header = lines[0].split(",")
    for number, line in enumerate(lines):
        if line.startswith("Baseline2,1,3,"):
            cells = line.split(",")
            cells[header.index("train_loss")] = ""
            lines[number] = ",".join(cells)
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("edit, message", [
    (lambda t: t.replace("train_acc", "train_accuracy", 1), r"missing column\(s\) \['train_acc'\]"),
    (lambda t: t.replace("Baseline1,0,1,1.95,", "Baseline1,0,1,fast,", 1), "line 2, column 'train_loss': expected a number, got 'fast'"),
    (lambda t: "\n".join(line for line in t.splitlines() if not line.startswith("Baseline2,1,")
                         and not line.startswith("Baseline2,2,")) + "\n",
     r"Baseline2 has seeds \[0\], the metadata cpu.meta.json lists \[0, 1, 2\] \(missing: \[1, 2\]\)"),
    # the whole reference, not only what tonight reads: a seed the metadata does not list ...
    (lambda t: t + "".join(line.replace("Baseline1,2,", "Baseline1,9,", 1) + "\n" for line in t.splitlines()
                           if line.startswith("Baseline1,2,")), r"Baseline1 has seeds \[0, 1, 2, 9\].*not listed: \[9\]"),
    # ... and an empty cell among numbers (read as NaN before: accepted where no band read it)
    (_empty_cell, r"column 'train_loss' is empty for Baseline2 seed 1 epoch 3 \(1 of"),
    (lambda t: t.replace("Baseline1,0,2,", "Baseline1,0,7,", 1), "Baseline1 seed 0 epoch 7 follows epoch 1"),
])
def test_malformed_baseline_names_file_line_and_column(tmp_path, edit, message):
    path = write_table(tmp_path)
    seeds = bl.seeds_path(path)
    seeds.write_text(edit(seeds.read_text()))
    with pytest.raises(ConfigError, match=message):
        bl.load_measured(path, MODELS, (10, 20))


def test_baseline_of_another_format_version_is_refused(tmp_path):
    path = write_table(tmp_path)
    meta = bl.meta_path(path)
    meta.write_text(json.dumps({**json.loads(meta.read_text()), "format_version": 1}))
    with pytest.raises(ConfigError, match="format_version 1, this trainguard reads 2.*regenerate"):
        bl.load_measured(path, (), ())


def test_published_table_is_the_report_verbatim():
    from pathlib import Path

    published = bl.load_published(Path(__file__).parent.parent / "baselines" / "published.csv")
    assert published[("NewModel2", 20, "test_acc")] == 84.61
    assert published[("Baseline1", 10, "train_loss")] == 2.07
    assert len(published) == 4 * 2 * 3


def test_diff_reports_what_changed():
    cells = {("Baseline1", 10, "test_acc"): bl.BaselineCell(11.0, 0.1, 5)}
    new = {("Baseline1", 10, "test_acc"): bl.BaselineCell(12.5, 0.2, 5)}
    lines = bl.diff_cells(cells, new)
    assert lines == ["Baseline1-10 test_acc: mean 11.0000 → 12.5000 (+1.5000), std 0.1000 → 0.2000, n 5 → 5"]
    assert bl.diff_cells(cells, cells) == ["no change"]


def test_band_check_message_and_direction():
    from trainguard.core.stats import derive_band

    band = derive_band([59.0, 60.0, 61.0, 60.0], k=2, alpha=0.01)
    assert compare.check_band("M-10", "test_acc", "Test Accuracy", 60.5, band, "b.csv").passed
    failed = compare.check_band("M-10", "test_acc", "Test Accuracy", 50.0, band, "b.csv")
    assert not failed.passed and failed.mde == pytest.approx(band.mde) and failed.allowed == pytest.approx(band.halfwidth)
    for part in ("M-10", "Test Accuracy", "measured 50.00 (mean of 2 seeds)", "baseline 60.0000 ±", "REGRESSION"):
        assert part in failed.message
    loss = derive_band([1.0, 1.01, 0.99], k=1, alpha=0.01)
    assert "REGRESSION" in compare.check_band("M-10", "train_loss", "Train Loss", 2.0, loss, "b").message
    assert "DEVIATION (better" in compare.check_band("M-10", "train_loss", "Train Loss", 0.1, loss, "b").message


def test_ranking_and_budget_checks():
    order = ["Baseline1", "Baseline2", "NewModel1"]
    assert compare.check_ranking(10, order, {"Baseline1": 30, "Baseline2": 40, "NewModel1": 50}).passed
    broken = compare.check_ranking(10, order, {"Baseline1": 30, "Baseline2": 50, "NewModel1": 45})
    assert not broken.passed and "Baseline2 (50.00) is not below NewModel1 (45.00)" in broken.message
    assert compare.check_budget_improves("M", 10, 20, 50.0, 51.0).passed
    flat = compare.check_budget_improves("M", 10, 20, 50.0, 50.0)
    assert not flat.passed and "did not improve" in flat.message


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


def test_pytest_refuses_a_profile_whose_data_set_the_store_does_not_serve(pytester):
    pytester.makepyfile(test_x="def test_x():\n    pass\n")
    (pytester.path / "p.toml").write_text('name = "p"\ndataset = "imagenet"\nbudgets = [1]\nmodels = ["Baseline1"]\n')
    result = pytester.runpytest("--tg-profile", "p.toml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--tg-profile: *p.toml: dataset 'imagenet' is not one of cifar10, synthetic*"])
