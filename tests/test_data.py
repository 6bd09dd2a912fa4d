"""Data sources, verification and subsets — on small generated files only."""

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from trainguard.stores import data


def write_npz(path: Path, arrays: dict) -> Path:
    np.savez_compressed(path, **arrays)
    return path


def test_data_dir_is_read_and_structure_checked(tmp_path, tiny_arrays):
    write_npz(tmp_path / "cifar10.npz", tiny_arrays)
    ds = data.load("cifar10", data_dir=tmp_path, cache_dir=tmp_path / "cache", allow_download=False)
    assert ds.x_train.shape == (40, 32, 32, 3) and ds.x_train.dtype == np.uint8
    assert ds.verification.startswith("unverified")  # sizes of no known release
    assert ds.test_split == "first 20 of the 10,000 test images"
    assert _nothing_but_the_lock(tmp_path / "cache")


def test_env_var_names_the_data_dir(tmp_path, tiny_arrays, monkeypatch):
    write_npz(tmp_path / "cifar10.npz", tiny_arrays)
    monkeypatch.setenv("TRAINGUARD_DATA_DIR", str(tmp_path))
    assert data.load("cifar10", allow_download=False).source == str(tmp_path / "cifar10.npz")


@pytest.mark.parametrize("mutate, message", [
    (lambda a: a.pop("y_test"), "missing arrays"),
    (lambda a: a.update(x_train=a["x_train"].astype(np.float32)), "dtype float32"),
    (lambda a: a.update(x_train=a["x_train"][:, :16]), "shape (40, 16, 32, 3)"),
    (lambda a: a.update(y_train=a["y_train"] + 5), "labels in [5, 14]"),
    (lambda a: a.update(y_test=a["y_test"][:5]), "y_test has shape (5,)"),
])
def test_bad_files_name_file_and_problem(tmp_path, tiny_arrays, mutate, message):
    mutate(tiny_arrays)
    path = write_npz(tmp_path / "cifar10.npz", tiny_arrays)
    with pytest.raises(data.DataError) as err:
        data.load("cifar10", data_dir=tmp_path, cache_dir=tmp_path / "cache", allow_download=False)
    assert str(path) in str(err.value) and message in str(err.value)


def test_truncated_file_is_reported(tmp_path, tiny_arrays):
    path = write_npz(tmp_path / "cifar10.npz", tiny_arrays)
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(data.DataError, match="truncated or corrupt"):
        data.read_npz("cifar10", path)


def test_array_of_known_release_size_with_wrong_digest_is_corrupt(tmp_path):
    # 1,000 test images is the size of a known release: the digest must match it.
    arrays = {"x_train": np.zeros((10, 32, 32, 3), np.uint8), "y_train": np.arange(10, dtype=np.uint8),
              "x_test": np.zeros((1000, 32, 32, 3), np.uint8), "y_test": np.zeros(1000, np.uint8)}
    path = write_npz(tmp_path / "cifar10.npz", arrays)
    with pytest.raises(data.DataError, match="x_test .*corrupt or altered"):
        data.read_npz("cifar10", path)


def test_pickled_object_arrays_are_refused(tmp_path, tiny_arrays):
    tiny_arrays["y_train"] = np.array([object()] * 40, dtype=object)
    path = tmp_path / "cifar10.npz"
    np.savez(path, **tiny_arrays)
    with pytest.raises(data.DataError, match="cannot be read"):
        data.read_npz("cifar10", path)


def test_download_goes_to_cache_atomically_and_is_reused(tmp_path, tiny_arrays, monkeypatch):
    calls = []
    monkeypatch.setattr(data, "DOWNLOADER", lambda name, scratch: calls.append(name) or dict(tiny_arrays))
    cache = tmp_path / "cache"
    first = data.load("cifar10", cache_dir=cache)
    assert calls == ["cifar10"] and first.source == str(cache / "cifar10.npz")
    sidecar = (cache / "cifar10.npz.sha256").read_text()
    assert sidecar == hashlib.sha256((cache / "cifar10.npz").read_bytes()).hexdigest()
    assert sorted(p.name for p in cache.iterdir()) == [".cifar10.lock", "cifar10.npz", "cifar10.npz.sha256"]  # no temp files
    second = data.load("cifar10", cache_dir=cache)
    assert calls == ["cifar10"]  # served from the cache
    np.testing.assert_array_equal(first.x_train, second.x_train)


def _corrupt(path):
    blob = bytearray(path.read_bytes())
    blob[-30] ^= 0xFF
    path.write_bytes(bytes(blob))


def test_corrupt_cache_is_detected_not_trusted_and_fetched_again(tmp_path, tiny_arrays, monkeypatch):
    calls = []
    monkeypatch.setattr(data, "DOWNLOADER", lambda name, scratch: calls.append(name) or dict(tiny_arrays))
    cache = tmp_path / "cache"
    data.load("cifar10", cache_dir=cache)
    _corrupt(cache / "cifar10.npz")
    with pytest.raises(data.DataError, match=r"cache is corrupt and is not trusted \(set aside as cifar10.npz.bad-"):
        data.load("cifar10", cache_dir=cache, allow_download=False)  # offline: said, never trusted
    assert [p.name.split("-")[0] for p in cache.glob("*.bad-*")] == ["cifar10.npz.bad"]  # kept aside, not deleted
    healed = data.load("cifar10", cache_dir=cache)  # online: fetched again
    assert calls == ["cifar10", "cifar10"] and healed.source == str(cache / "cifar10.npz")
    np.testing.assert_array_equal(healed.x_train, tiny_arrays["x_train"])


def test_a_missing_checksum_file_is_healed_by_fetching_again(tmp_path, tiny_arrays, monkeypatch):
    calls = []
    monkeypatch.setattr(data, "DOWNLOADER", lambda name, scratch: calls.append(name) or dict(tiny_arrays))
    cache = tmp_path / "cache"
    data.load("cifar10", cache_dir=cache)
    (cache / "cifar10.npz.sha256").unlink()  # a crash between the archive and its checksum file
    data.load("cifar10", cache_dir=cache)  # generated arrays match no release: not verifiable, so fetched again
    assert calls == ["cifar10", "cifar10"]
    assert (cache / "cifar10.npz.sha256").read_text() == hashlib.sha256((cache / "cifar10.npz").read_bytes()).hexdigest()


def test_a_release_copy_with_a_bad_checksum_file_is_verified_and_its_checksum_rewritten(tmp_path, tiny_arrays,
                                                                                      monkeypatch):
    """A cached copy whose arrays match the known release digests (here: the generated arrays, declared a release
    for this test) but whose checksum file is wrong is verified and kept, its checksum file rewritten; no download."""
    releases = {key: {str(len(value)): ["sha256", data._digest(value, "sha256")]} for key, value in tiny_arrays.items()}
    monkeypatch.setitem(data._MANIFEST["arrays"], "cifar10", releases)
    monkeypatch.setattr(data, "DOWNLOADER", lambda name, scratch: dict(tiny_arrays))
    cache = tmp_path / "cache"
    data.load("cifar10", cache_dir=cache)
    (cache / "cifar10.npz.sha256").write_text("0" * 64)
    monkeypatch.setattr(data, "DOWNLOADER", lambda name, scratch: pytest.fail("a verified release must not be fetched"))
    loaded = data.load("cifar10", cache_dir=cache)
    assert loaded.verification.startswith("verified")
    assert (cache / "cifar10.npz.sha256").read_text() == hashlib.sha256((cache / "cifar10.npz").read_bytes()).hexdigest()


def test_offline_and_missing_gives_one_clear_error_and_writes_nothing(tmp_path, monkeypatch):
    def offline(name, scratch):
        raise OSError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(data, "DOWNLOADER", offline)
    cache = tmp_path / "cache"
    with pytest.raises(data.DataError) as err:
        data.load("cifar10", cache_dir=cache)
    text = str(err.value)
    assert "cifar10.npz" in text and "--data-dir" in text and "TRAINGUARD_DATA_DIR" in text
    assert "trainguard data fetch" in text and "name resolution" in text
    assert _nothing_but_the_lock(cache)


def test_downloaded_data_with_bad_layout_is_not_cached(tmp_path, tiny_arrays, monkeypatch):
    tiny_arrays["y_train"] = tiny_arrays["y_train"] + 20
    monkeypatch.setattr(data, "DOWNLOADER", lambda name, scratch: dict(tiny_arrays))
    with pytest.raises(data.DataError, match="labels"):
        data.load("cifar10", cache_dir=tmp_path / "cache")
    assert _nothing_but_the_lock(tmp_path / "cache")


def test_first_per_class_is_fixed_and_balanced():
    labels = np.array([3, 1, 3, 0, 1, 0, 2, 2, 3, 1, 0, 2])
    idx = data.first_per_class(labels, 2)
    assert idx.tolist() == [0, 1, 2, 3, 4, 5, 6, 7]
    assert np.bincount(labels[idx]).tolist() == [2, 2, 2, 2]
    with pytest.raises(data.DataError, match="only 3 examples"):
        data.first_per_class(labels, 4)


def test_reduce_and_fingerprint(tiny_arrays):
    ds = data.Dataset("cifar10", *tiny_arrays.values(), source="x", verification="v")
    small = data.reduce(ds, train_per_class=2, test_images=5)
    assert len(small.x_train) == 20 and len(small.x_test) == 5
    assert small.fingerprint() == data.reduce(ds, 2, 5).fingerprint() != ds.fingerprint()


def test_manifest_holds_the_offline_copies():
    manifest = json.loads((Path(data.__file__).parent / "data_manifest.json").read_text())
    assert "dc4bd2a3b6c37baaeda883ce909612c4318fde40b9ff67f881d1f9c10cde35a4" in manifest["files"]
    assert manifest["arrays"]["cifar10"]["x_test"]["1000"][0] == "sha256"


def test_synthetic_data_is_deterministic():
    a, b = data.synthetic("cifar10", 3, 2), data.synthetic("cifar10", 3, 2)
    assert a.fingerprint() == b.fingerprint() and a.x_train.shape == (30, 32, 32, 3)


def _nothing_but_the_lock(cache) -> bool:
    """A failed download writes no data: at most the download's lock, inside trainguard's own cache directory."""
    return not cache.exists() or all(p.name.endswith(".lock") for p in cache.iterdir())
