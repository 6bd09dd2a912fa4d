"""`trainguard data export`: a profile's images only, read back as the same data (generated files, no network)."""

import json

import numpy as np
import pytest

from trainguard.stores import data
from trainguard.cli import main
from trainguard.runs.export import export_profile_data
from trainguard.runs.matrix import Matrix
from trainguard.runs.options import Options
from trainguard.core.spec import load_profile

PROFILE = """
name = "tiny"
dataset = "cifar10"
train_per_class = 3
val_per_class = 1
test_images = 7
budgets = [1]
models = ["Baseline1"]
baseline_seeds = [0, 1]
check_seeds = [100]
checks = ["baseline"]
experiments = ["trainguard.experiments.mnist_overfit:torch"]
"""


@pytest.fixture
def full_data(tmp_path):
    rng = np.random.default_rng(0)
    directory = tmp_path / "full"
    directory.mkdir()
    for name, shape, n_train in (("cifar10", (32, 32, 3), 80),):
        np.savez(directory / data.FILENAMES[name],
                 x_train=rng.integers(1, 256, size=(n_train, *shape), dtype=np.uint8),
                 y_train=rng.permutation(np.tile(np.arange(10, dtype=np.uint8), n_train // 10)),
                 x_test=rng.integers(0, 256, size=(20, *shape), dtype=np.uint8),
                 y_test=np.tile(np.arange(10, dtype=np.uint8), 2))
    (tmp_path / "tiny.toml").write_text(PROFILE)
    return directory, load_profile(str(tmp_path / "tiny.toml"))


def matrix(profile, directory):
    return Matrix(Options(profile, device="cpu", data_dir=directory, results_dir=None, run_log=None),
                  printer=lambda line: None)


def test_an_export_reads_back_as_exactly_the_profile_s_data(full_data, tmp_path):
    directory, profile = full_data
    manifest = export_profile_data(profile, tmp_path / "export", directory, allow_download=False, printer=lambda s: None)
    assert manifest["cifar10"]["train_images"] == 40 and manifest["cifar10"]["test_images"] == 7  # (3 + 1) × 10
    exported, full = matrix(profile, tmp_path / "export"), matrix(profile, directory)
    assert exported.data_fingerprint == full.data_fingerprint == manifest["cifar10"]["fingerprint"]
    assert np.array_equal(exported.dataset.x_val, full.dataset.x_val)
    assert "export for profile tiny" in exported.dataset.verification


def test_an_export_refuses_other_profiles_and_seeds(full_data, tmp_path):
    directory, profile = full_data
    export_profile_data(profile, tmp_path / "export", directory, allow_download=False, printer=lambda s: None)
    bigger = profile.__class__(**{**vars(profile), "train_per_class": 4})
    with pytest.raises(data.DataError, match="export.json: this export holds the data of profile tiny; profile tiny"):
        matrix(bigger, tmp_path / "export").dataset  # noqa: B018


def test_a_damaged_or_partial_export_is_an_error_naming_the_file(full_data, tmp_path, monkeypatch):
    directory, profile = full_data
    export = tmp_path / "export"
    export_profile_data(profile, export, directory, allow_download=False, printer=lambda s: None)
    with pytest.raises(data.DataError, match="holds no mnist"):  # a declared experiment's data is not exported
        data.load("mnist", export)
    rng = np.random.default_rng(1)  # ... and a file beside it that is no known release is not taken for one
    np.savez(export / "mnist.npz", x_train=rng.integers(0, 256, (20, 28, 28), dtype=np.uint8),
             y_train=np.tile(np.arange(10, dtype=np.uint8), 2), x_test=rng.integers(0, 256, (10, 28, 28), dtype=np.uint8),
             y_test=np.arange(10, dtype=np.uint8))
    with pytest.raises(data.DataError, match="holds no mnist"):
        data.load("mnist", export)
    monkeypatch.setitem(data._MANIFEST["files"], data.sha256_file(export / "mnist.npz"), "a known release (test)")
    copied = data.load("mnist", export)  # a known release copied beside the export: read as the plain copy it is
    assert len(copied.x_train) == 20 and copied.export is None and "verified" in copied.verification
    manifest = json.loads((export / "export.json").read_text())
    del manifest["cifar10"]
    (export / "export.json").write_text(json.dumps(manifest))
    with pytest.raises(data.DataError, match="holds no cifar10"):
        data.load("cifar10", export)
    (export / "export.json").write_text("{not json")
    with pytest.raises(data.DataError, match="export.json: not a readable trainguard export manifest"):
        data.load("cifar10", export)


def test_the_cli_writes_an_export(full_data, tmp_path, capsys):
    directory, profile = full_data
    code = main(["data", "export", "--profile", str(tmp_path / "tiny.toml"), str(tmp_path / "out"),
                 "--data-dir", str(directory), "--offline"])
    assert code == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["cifar10.npz", "export.json"]
    out = capsys.readouterr().out
    assert "--data-dir" in out and "not exported: the data of the declared experiments" in out
    assert main(["data", "export", "--profile", "smoke", str(tmp_path / "none")]) == 2  # generated data only
    assert "nothing to export" in capsys.readouterr().err


def test_the_ci_profile_s_cifar_plug_in_trains_on_an_export_of_its_settings(tmp_path, capsys):
    """The GPU-host runbook (docs/gpus.md): `trainguard data export --profile cifar-models-ci DIR` writes the view
    the ci profile's CIFAR-10 plug-in trains on, and the plug-in reads it from --data-dir as from the full copy
    (generated images of CIFAR-10's layout, 1,500 per class as the view needs; never the network)."""
    from trainguard.experiments import cifar_models

    rng = np.random.default_rng(1)
    directory = tmp_path / "full"
    directory.mkdir()
    np.savez(directory / data.FILENAMES["cifar10"],
             x_train=rng.integers(0, 256, size=(16000, 32, 32, 3), dtype=np.uint8),
             y_train=np.tile(np.arange(10, dtype=np.uint8), 1600),
             x_test=rng.integers(0, 256, size=(1100, 32, 32, 3), dtype=np.uint8),  # no release's size: unverified
             y_test=np.tile(np.arange(10, dtype=np.uint8), 110))
    assert main(["data", "export", "--profile", "cifar-models-ci", str(tmp_path / "out"), "--data-dir",
                 str(directory), "--offline"]) == 0
    assert main(["data", "export", "--profile", "ci", str(tmp_path / "none"), "--offline"]) == 2
    assert "cifar-models-ci" in capsys.readouterr().err  # ci trains no models: it names the plug-in's settings
    settings = load_profile("cifar-models-ci")
    exported, full = (cifar_models._data(settings, d) for d in (tmp_path / "out", directory))
    assert "export for profile ci" in exported.verification
    assert exported.split_fingerprints() == full.split_fingerprints()
