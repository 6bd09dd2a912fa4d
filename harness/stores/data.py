"""Data sets as uint8 arrays: where they come from, and proof that they are what they claim.

Layout (the one of ``keras.datasets.*.load_data()``): ``x_train, y_train, x_test, y_test``;
images uint8, CIFAR-10 (N, 32, 32, 3) HWC RGB, MNIST (N, 28, 28); labels integers 0–9.

Sources, in order:
1. a data directory (``--data-dir`` or ``TRAINGUARD_DATA_DIR``) holding ``cifar10.npz`` / ``mnist.npz``;
2. the user cache (``TRAINGUARD_CACHE_DIR``, default ``~/.cache/trainguard``);
3. a download through torchvision's dataset classes (which check the MD5 of every
   archive and batch before they unpickle anything), converted once into the cache
   with an atomic write, under a lock (one download per cache, however many processes ask).
   A cached file whose checksum file is missing or wrong is verified against the known release and
   its checksum rewritten, or set aside and fetched again: never trusted, never a dead end.

Every file read is checked: keys, shape, dtype, label range, and the digest of each
array where its size is that of a known release (``data_manifest.json``). Files are
opened with ``np.load(allow_pickle=False)``, so no file can run code.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..core.errors import ConfigError
from ..core.storage import RECOVERED, atomic_write_bytes, file_lock, sha256_file, unique_aside

ARRAY_KEYS = ("x_train", "y_train", "x_test", "y_test")
IMAGE_SHAPES = {"cifar10": (32, 32, 3), "mnist": (28, 28)}
FILENAMES = {"cifar10": "cifar10.npz", "mnist": "mnist.npz"}
TITLES = {"cifar10": "CIFAR-10", "mnist": "MNIST"}  # as reports name them
FULL_TEST_SIZES = {"cifar10": 10000, "mnist": 10000}
EXPORT_FILE = "export.json"  # marks a directory written by `trainguard data export` (trainguard.runs.export)
_MANIFEST = json.loads((Path(__file__).parent / "data_manifest.json").read_text())


class DataError(RuntimeError):
    """Data could not be found, read or verified. The message names the file and the way out."""


@dataclass
class Dataset:
    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str  # where it was read from
    verification: str  # "verified: ..." or "unverified: ..."
    notes: list[str] = field(default_factory=list)
    x_val: np.ndarray | None = None  # a held-out part of the training data (Keras' validation_split)
    y_val: np.ndarray | None = None
    # Read from a `trainguard data export` directory: its export.json entry for this data set (plus
    # "file" and "profile"). Such data holds only what one profile uses; every view taken of it is
    # checked against the fingerprints the export recorded (check_export_view).
    export: dict | None = None

    @property
    def title(self) -> str:
        """The data set's name as a report writes it ("CIFAR-10"); its key otherwise."""
        return TITLES.get(self.name, self.name)

    @property
    def test_split(self) -> str:
        n = len(self.x_test)
        full = FULL_TEST_SIZES.get(self.name)
        if full and n < full:
            return f"first {n:,} of the {full:,} test images"
        return f"all {n:,} test images"

    def splits(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Split name → (images, labels): train, test, and val where there is one."""
        found = {"train": (self.x_train, self.y_train), "test": (self.x_test, self.y_test)}
        if self.x_val is not None:
            found["val"] = (self.x_val, self.y_val)
        return found

    def split_fingerprints(self) -> dict[str, dict]:
        """Per split (train, test, and val where there is one), the images and labels exactly as the engine
        receives them: their count and a sha256 of their bytes, shapes and types. Integers only, so equal on every
        machine; the replay compares them at full scale (its golden runs see only the first images of each class)."""
        fingerprints = {}
        for split, arrays in self.splits().items():
            digest = hashlib.sha256()
            for array in map(np.ascontiguousarray, arrays):
                digest.update(f"{array.shape}{array.dtype}".encode())
                digest.update(array.tobytes())
            fingerprints[split] = {"images": int(len(arrays[0])), "sha256": digest.hexdigest()}
        return fingerprints

    def fingerprint(self) -> str:
        """sha256 over every array's bytes: equal fingerprints mean equal data."""
        digest = hashlib.sha256()
        for key in ARRAY_KEYS + (("x_val", "y_val") if self.x_val is not None else ()):
            array = np.ascontiguousarray(getattr(self, key))
            digest.update(f"{key}{array.shape}{array.dtype}".encode())
            digest.update(array.tobytes())
        return digest.hexdigest()


def default_cache_dir() -> Path:
    return Path(os.environ.get("TRAINGUARD_CACHE_DIR") or Path.home() / ".cache" / "trainguard")


def default_data_dir() -> Path | None:
    value = os.environ.get("TRAINGUARD_DATA_DIR")
    return Path(value) if value else None


# --------------------------------------------------------------------------- verification


def _digest(array: np.ndarray, algorithm: str) -> str:
    return hashlib.new(algorithm, np.ascontiguousarray(array).tobytes()).hexdigest()


def validate_arrays(name: str, arrays: dict[str, np.ndarray], path: Path, release_digests: bool = True) -> str:
    """Check layout and known digests; return a verification string or raise DataError.

    ``release_digests=False``: layout only, for an export, whose arrays are parts of a release
    (checked against the fingerprints the export recorded instead)."""
    missing = [k for k in ARRAY_KEYS if k not in arrays]
    if missing:
        raise DataError(f"{path}: missing arrays {missing}; expected {list(ARRAY_KEYS)} (keras load_data layout)")
    image_shape = IMAGE_SHAPES[name]
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.dtype != np.uint8:
            raise DataError(f"{path}: x_{split} has dtype {x.dtype}; expected uint8 pixels 0-255")
        if x.ndim != 1 + len(image_shape) or x.shape[1:] != image_shape:
            raise DataError(f"{path}: x_{split} has shape {x.shape}; expected (N, {', '.join(map(str, image_shape))})")
        if y.ndim != 1 or len(y) != len(x):
            raise DataError(f"{path}: y_{split} has shape {y.shape}; expected ({len(x)},) to match x_{split}")
        if not np.issubdtype(y.dtype, np.integer):
            raise DataError(f"{path}: y_{split} has dtype {y.dtype}; expected integer labels")
        if len(y) and (y.min() < 0 or y.max() > 9):
            raise DataError(f"{path}: y_{split} has labels in [{y.min()}, {y.max()}]; expected 0-9")
    if not release_digests:
        return "structure checked"
    known = _MANIFEST["arrays"][name]
    matched = []
    for key in ARRAY_KEYS:
        entry = known.get(key, {}).get(str(len(arrays[key])))
        if entry is None:
            continue
        algorithm, expected = entry
        actual = _digest(arrays[key], algorithm)
        if actual != expected:
            raise DataError(
                f"{path}: {key} ({len(arrays[key])} rows) has {algorithm} {actual}, but the known release of "
                f"that size has {expected}: the file is corrupt or altered. Delete it and fetch it again "
                f"(trainguard data fetch), or point --data-dir at a good copy."
            )
        matched.append(key)
    if len(matched) == len(ARRAY_KEYS):
        return "verified: every array matches a known release digest"
    if matched:
        return f"partly verified: {', '.join(matched)} match known digests; the rest are of unknown size"
    return "unverified: array sizes match no known release (structure checked only)"


def read_npz(name: str, path: Path, release_digests: bool = True) -> Dataset:
    """Read and verify one .npz file. Never unpickles (allow_pickle=False)."""
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise DataError(
            f"{path}: cannot be read as a numpy .npz archive ({type(exc).__name__}: {exc}); "
            f"it is truncated or corrupt. Delete it and fetch it again (trainguard data fetch)."
        ) from None
    verification = validate_arrays(name, arrays, path, release_digests)
    file_digest = sha256_file(path)
    if file_digest in _MANIFEST["files"]:
        verification = f"verified: file sha256 {file_digest[:12]}… is {_MANIFEST['files'][file_digest]}"
    dataset = Dataset(name, *(arrays[k] for k in ARRAY_KEYS), source=str(path), verification=verification)
    return dataset


# --------------------------------------------------------------------------- download


def _torchvision_download(name: str, root: Path) -> dict[str, np.ndarray]:
    """Download through torchvision, which verifies archive and batch MD5s before unpickling."""
    import torchvision

    cls = {"cifar10": torchvision.datasets.CIFAR10, "mnist": torchvision.datasets.MNIST}[name]
    arrays = {}
    for split, train in (("train", True), ("test", False)):
        ds = cls(root=str(root), train=train, download=True)
        data = ds.data.numpy() if hasattr(ds.data, "numpy") else np.asarray(ds.data)
        targets = ds.targets.numpy() if hasattr(ds.targets, "numpy") else np.asarray(ds.targets)
        arrays[f"x_{split}"] = np.ascontiguousarray(data, dtype=np.uint8)
        arrays[f"y_{split}"] = targets.astype(np.uint8)
    return arrays


#: name → function(name, scratch_dir) → arrays. Tests replace it; nothing else should.
DOWNLOADER: Callable[[str, Path], dict[str, np.ndarray]] = _torchvision_download


def _write_cache(name: str, arrays: dict[str, np.ndarray], cache_dir: Path) -> Path:
    import io

    buffer = io.BytesIO()
    np.savez_compressed(buffer, **{k: arrays[k] for k in ARRAY_KEYS})
    payload = buffer.getvalue()
    target = cache_dir / FILENAMES[name]
    cache_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(target, payload)
    # The sidecar is written last: a cache file without a matching sidecar is not trusted.
    atomic_write_bytes(target.with_suffix(".npz.sha256"), hashlib.sha256(payload).hexdigest().encode())
    return target


def download(name: str, cache_dir: Path) -> Dataset:
    """Download into a scratch directory, verify, then convert into the cache atomically.

    Nothing is written to the cache unless the download and verification succeed.
    """
    scratch = Path(tempfile.mkdtemp(prefix=f"trainguard-{name}-"))
    try:
        try:
            arrays = DOWNLOADER(name, scratch)
        except Exception as exc:  # network errors come in many types (URLError, OSError, RuntimeError…)
            raise DataError(_unavailable_message(name, None, cache_dir, f"download failed: {type(exc).__name__}: {exc}")) from None
        validate_arrays(name, arrays, Path(f"<download of {name}>"))
        path = _write_cache(name, arrays, cache_dir)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return read_npz(name, path)


def _unavailable_message(name: str, data_dir: Path | None, cache_dir: Path, reason: str) -> str:
    filename = FILENAMES[name]
    looked = [f"{data_dir / filename} (data directory)" if data_dir else "no data directory given",
              f"{cache_dir / filename} (cache)"]
    return (
        f"{name} is not available: {reason}.\n"
        f"  Looked in: {'; '.join(looked)}.\n"
        f"  Supply it one of these ways:\n"
        f"    - put {filename} (keras layout: x_train, y_train, x_test, y_test) in a directory and pass "
        f"--data-dir DIR or set TRAINGUARD_DATA_DIR=DIR;\n"
        f"    - on a machine with internet, run `trainguard data fetch {name}` to download it into the cache "
        f"(set TRAINGUARD_CACHE_DIR to move the cache)."
    )


def _read_cache(name: str, cache_dir: Path) -> tuple[Dataset | None, str]:
    """The cached file if present and intact, else None and why it must be fetched again.

    A file whose checksum file is missing or does not match it (a crash between the two writes, a hand edit) is
    not an error that needs a person: the archive is verified against the known release digests and, if it is
    the release, its checksum file is written again (healed); otherwise it is set aside (``.npz.bad-<time>``,
    never deleted) and fetched again."""
    path = cache_dir / FILENAMES[name]
    sidecar = path.with_suffix(".npz.sha256")
    if not path.exists():
        return None, "not found"
    recorded = sidecar.read_text().strip() if sidecar.exists() else None
    if recorded is not None and recorded == sha256_file(path):
        return read_npz(name, path), ""
    problem = "has no checksum file" if recorded is None else f"does not match its recorded sha256 ({sidecar.name})"
    try:
        dataset = read_npz(name, path)
    except DataError:
        dataset = None
    if dataset is not None and dataset.verification.startswith("verified"):
        atomic_write_bytes(sidecar, sha256_file(path).encode())
        RECOVERED.append(f"{path}: {problem}, but every array matches the known release; checksum file rewritten")
        return dataset, ""
    aside = unique_aside(path, "bad")  # never over an earlier one set aside in the same second
    path.rename(aside)
    sidecar.unlink(missing_ok=True)
    reason = (f"the cached {path} {problem} and is not the known release: the cache is corrupt and is not trusted "
              f"(set aside as {aside.name})")
    RECOVERED.append(reason)
    return None, reason


def load(name: str, data_dir: Path | str | None = None, cache_dir: Path | str | None = None,
         allow_download: bool = True) -> Dataset:
    """Load a data set from the first source that has it (see module docstring)."""
    if name not in FILENAMES:
        raise DataError(f"unknown data set {name!r}; known: {', '.join(FILENAMES)}")
    data_dir = Path(data_dir) if data_dir else default_data_dir()
    cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
    if data_dir is not None:
        if not data_dir.is_dir():
            raise DataError(f"data directory {data_dir} (from --data-dir or TRAINGUARD_DATA_DIR) does not exist")
        path = data_dir / FILENAMES[name]
        if (data_dir / EXPORT_FILE).exists() and not _beside_export(name, path):
            return read_export(name, data_dir)
        if path.exists():
            return read_npz(name, path)
    cached, reason = _read_cache(name, cache_dir)
    if cached is not None:
        return cached
    if not allow_download:
        raise DataError(_unavailable_message(name, data_dir, cache_dir,
                                             f"{reason} and downloads are disabled"))
    # one download per cache, whatever the number of processes: the others wait, then read what it wrote
    # (the lock file sits inside trainguard's own cache directory, never among the user's other caches)
    with file_lock(cache_dir / f".{name}.lock", f"downloading {name} into {cache_dir}"):
        cached, _ = _read_cache(name, cache_dir)
        return cached if cached is not None else download(name, cache_dir)


# --------------------------------------------------------------------------- exports


def _beside_export(name: str, path: Path) -> bool:
    """Is ``path`` a known release's file copied beside an export that does not hold ``name`` (a declared experiment's
    data, which an export does not write)? Anything else in an export directory is the export's, or an error."""
    try:
        held = name in json.loads((path.parent / EXPORT_FILE).read_text())
    except (OSError, ValueError, TypeError):
        return False  # read_export names the unreadable manifest
    return not held and path.is_file() and sha256_file(path) in _MANIFEST["files"]


def read_export(name: str, directory: Path) -> Dataset:
    """A data set from a `trainguard data export` directory, carrying its export.json entry."""
    manifest_path = directory / EXPORT_FILE
    try:
        manifest = json.loads(manifest_path.read_text())
        entry, profile = manifest.get(name), manifest["profile"]
    except (OSError, ValueError, KeyError, AttributeError) as exc:
        raise DataError(f"{manifest_path}: not a readable trainguard export manifest ({type(exc).__name__}: {exc}); "
                        f"write the export again: trainguard data export --profile PROFILE {directory}") from None
    if entry is None:
        raise DataError(f"{manifest_path}: this export (profile {profile}) holds no {name}; write one that does: "
                        f"trainguard data export --profile PROFILE {directory}")
    dataset = read_npz(name, directory / FILENAMES[name], release_digests=False)
    dataset.export = {**entry, "file": str(manifest_path), "profile": profile}
    dataset.verification = (f"export for profile {profile}, checked against its recorded fingerprints when used; "
                            f"exported from: {entry.get('source_verification', 'unknown')}")
    return dataset


def _not_in_export(export: dict, what: str, detail: str) -> DataError:
    return DataError(f"{export['file']}: this export holds the data of profile {export['profile']}; {what} needs "
                     f"images it does not hold ({detail}). Write an export for it on a machine with the full data: "
                     f"trainguard data export --profile PROFILE DIR")


def check_export_view(view: Dataset, export: dict, expected: str | None, what: str) -> None:
    """Refuse a view of exported data that is not the one the export recorded (another profile's images,
    a seed it did not export): such a view would silently train on a different or partly blank data set."""
    actual = view.fingerprint()
    if expected is None or actual != expected:
        raise _not_in_export(export, what, f"fingerprint {actual[:12]}, export has "
                                           f"{expected[:12] if expected else 'none for it'}")


def profile_view(full: Dataset, train_per_class: int | None, test_images: int | None, val_per_class: int | None,
                 what: str) -> Dataset:
    """:func:`reduce`, and for exported data the check that the view is the one exported."""
    if full.export is None:
        return reduce(full, train_per_class, test_images, val_per_class)
    try:
        view = reduce(full, train_per_class, test_images, val_per_class)
    except DataError as exc:
        raise _not_in_export(full.export, what, str(exc)) from None
    check_export_view(view, full.export, full.export.get("fingerprint"), what)
    return view


# --------------------------------------------------------------------------- subsets and generated data


#: The data sets a profile's ``dataset`` key may name: those its models (three-channel 32×32 classifiers) train on.
PROFILE_DATASETS = ("cifar10", "synthetic")


def check_profile_dataset(profile) -> None:
    """A ConfigError naming the profile's file unless its ``dataset`` is one its models can train on (a profile of
    experiments alone names none: each experiment reads its own data)."""
    if not profile.models and not profile.dataset:
        return
    if profile.dataset not in PROFILE_DATASETS:
        raise ConfigError(f"{profile.source}: dataset {profile.dataset!r} is not one of {', '.join(PROFILE_DATASETS)} "
                          f"(a data set of your own goes with training of your own: docs/own-training.md)")


def for_profile(profile, data_dir: Path | str | None = None, allow_download: bool = True) -> Dataset:
    """The data a CIFAR-10 profile trains and evaluates on: its view of the real data set (train images per class,
    test images, validation split), or generated tensors of the real shapes for a ``synthetic`` profile."""
    check_profile_dataset(profile)
    if profile.dataset == "synthetic":
        full = synthetic("cifar10", profile.train_per_class or 50, max(1, (profile.test_images or 100) // 10))
        return reduce(full, None, profile.test_images)
    full = load(profile.dataset, data_dir, allow_download=allow_download)
    return profile_view(full, profile.train_per_class, profile.test_images, profile.val_per_class,
                        f"profile {profile.name}")


def first_per_class(labels: np.ndarray, per_class: int) -> np.ndarray:
    """Indices of the first ``per_class`` examples of every class, in original order.

    Fixed by construction (no random numbers), so every machine selects the same images.
    """
    classes = np.unique(labels)
    chosen = []
    for cls in classes:
        idx = np.flatnonzero(labels == cls)
        if len(idx) < per_class:
            raise DataError(f"class {cls} has only {len(idx)} examples; the profile asks for {per_class} per class")
        chosen.append(idx[:per_class])
    return np.sort(np.concatenate(chosen))


def reduce(dataset: Dataset, train_per_class: int | None, test_images: int | None,
           val_per_class: int | None = None) -> Dataset:
    """The profile's view of a data set: a class-balanced train subset, the first N test images,
    and optionally a validation split of the next ``val_per_class`` training images of each class.

    The validation images come from the training split but are never trained on: an evaluation
    set of the same distribution, larger than the offline copy's 1,000 test images, so a check on
    it sees smaller shifts (docs/statistics.md).
    """
    x_train, y_train = dataset.x_train, dataset.y_train
    notes = list(dataset.notes)
    x_val = y_val = None
    if val_per_class:
        if train_per_class is None:
            raise DataError("a validation split (val_per_class) needs a reduced training split (train_per_class): "
                            "with the whole training split there are no unused images to validate on")
        both = first_per_class(y_train, train_per_class + val_per_class)
        rank = _rank_within_class(y_train[both])
        val_idx = both[rank >= train_per_class]
        x_val, y_val = x_train[val_idx], y_train[val_idx]
    if train_per_class is not None:
        idx = first_per_class(y_train, train_per_class)
        x_train, y_train = x_train[idx], y_train[idx]
        notes.append(f"train: first {train_per_class} images of each class ({len(idx):,} images)")
    if x_val is not None:
        notes.append(f"validation: the next {val_per_class} training images of each class ({len(x_val):,} images, "
                     f"never trained on)")
    x_test, y_test = dataset.x_test, dataset.y_test
    if test_images is not None:
        if len(x_test) < test_images:
            raise DataError(f"{dataset.source}: the test split has {len(x_test)} images; the profile asks for {test_images}")
        x_test, y_test = x_test[:test_images], y_test[:test_images]
    return Dataset(dataset.name, x_train, y_train, x_test, y_test, dataset.source, dataset.verification, notes,
                   x_val=x_val, y_val=y_val, export=dataset.export)


def _rank_within_class(labels: np.ndarray) -> np.ndarray:
    """For each position, how many earlier positions hold the same label (0 for a class's first image)."""
    rank = np.zeros(len(labels), dtype=np.int64)
    for cls in np.unique(labels):
        positions = np.flatnonzero(labels == cls)
        rank[positions] = np.arange(len(positions))
    return rank


SYNTHETIC_CONTRAST = 15.0  # prototype amplitude against pixel noise of std 40: learnable in a few epochs, not at once


def synthetic(name: str, train_per_class: int, test_per_class: int, seed: int = 1234) -> Dataset:
    """Generated data of the real shapes: each class a fixed smooth pattern plus noise.

    Learnable (so accuracies mean something in smoke tests) and the same on every machine.
    """
    rng = np.random.default_rng(seed)
    shape = IMAGE_SHAPES[name]
    low = rng.normal(size=(10, 4, 4) + shape[2:])
    prototypes = np.kron(low, np.ones((shape[0] // 4, shape[1] // 4) + (1,) * (len(shape) - 2)))

    def make(per_class: int) -> tuple[np.ndarray, np.ndarray]:
        labels = np.repeat(np.arange(10), per_class)
        rng.shuffle(labels)
        images = 128 + SYNTHETIC_CONTRAST * prototypes[labels] + rng.normal(scale=40, size=(len(labels),) + shape)
        return np.clip(images, 0, 255).astype(np.uint8), labels.astype(np.uint8)

    x_train, y_train = make(train_per_class)
    x_test, y_test = make(test_per_class)
    return Dataset(name, x_train, y_train, x_test, y_test, source=f"generated (seed {seed})",
                   verification="generated: synthetic tensors of the real shapes, not real images",
                   notes=["synthetic data: accuracies are not comparable with real-data baselines"])
