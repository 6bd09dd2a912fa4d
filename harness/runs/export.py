"""``trainguard data export``: exactly the images one profile's models use, in a directory small enough to copy.

A GPU host often cannot download and takes only small copies. The export holds the training images the profile's
subset and validation split take (the first ``train_per_class + val_per_class`` of each class, in their original
order) and its test images, so that the profile's own reduction of the export is, array for array, its reduction of
the full data (the same fingerprint, so the same baselines apply). ``export.json``, written last, records the
fingerprint the full data gives that view; the loader refuses any other view of the export
(trainguard.stores.data.check_export_view), so another profile is an error, never a run on missing images.

A declared experiment reads its own data from the data directory (``run.data_dir``): the export does not know what
that is; copy its files beside the export.
"""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path
from typing import Callable

import numpy as np

from ..stores import data
from ..core.spec import Profile
from ..core.storage import atomic_write_bytes, atomic_write_json


def _write_npz(path: Path, arrays: dict[str, np.ndarray]) -> int:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    atomic_write_bytes(path, buffer.getvalue())
    return len(buffer.getvalue())


def _view_arrays(full: data.Dataset, profile: Profile) -> dict[str, np.ndarray]:
    if profile.train_per_class is None:
        keep = np.arange(len(full.y_train))
    else:
        keep = data.first_per_class(full.y_train, profile.train_per_class + (profile.val_per_class or 0))
    test = len(full.x_test) if profile.test_images is None else profile.test_images
    return {"x_train": full.x_train[keep], "y_train": full.y_train[keep],
            "x_test": full.x_test[:test], "y_test": full.y_test[:test]}


def _export_view(profile: Profile, source_dir, allow_download: bool, target: Path) -> dict:
    full = data.load(profile.dataset, source_dir, allow_download=allow_download)
    reference = data.reduce(full, profile.train_per_class, profile.test_images, profile.val_per_class)
    arrays = _view_arrays(full, profile)
    exported = data.Dataset(full.name, *(arrays[k] for k in data.ARRAY_KEYS), full.source, full.verification)
    view = data.reduce(exported, profile.train_per_class, profile.test_images, profile.val_per_class)
    if view.fingerprint() != reference.fingerprint():  # the export's whole promise: checked before writing
        raise RuntimeError(f"export of {profile.dataset} for profile {profile.name} does not reduce to the profile's "
                           f"data; this is a trainguard bug")
    size = _write_npz(target / data.FILENAMES[profile.dataset], arrays)
    return {"fingerprint": reference.fingerprint(), "test_split": reference.test_split,
            "train_images": len(arrays["x_train"]), "test_images": len(arrays["x_test"]), "bytes": size,
            "source": Path(full.source).name, "source_verification": full.verification}


def export_profile_data(profile: Profile, target: Path, source_dir=None, allow_download: bool = True,
                        printer: Callable[[str], None] = print) -> dict:
    """Write the profile's data set (``target/<dataset>.npz``) and ``target/export.json``; return the manifest."""
    data.check_profile_dataset(profile)
    if profile.dataset == "synthetic":
        raise data.DataError(f"profile {profile.name} trains on generated data only: there is nothing to export")
    if not profile.models:
        from ..core.spec import plugin_settings

        raise data.DataError(f"profile {profile.name} trains no models: it has no data set of its own to export (each "
                             f"of its experiments reads its own data; a plug-in that trains from a profile's settings "
                             f"exports through them: --profile PATH.toml, or a built-in one by name: "
                             f"{', '.join(plugin_settings())})")
    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    (target / data.EXPORT_FILE).unlink(missing_ok=True)  # until the new one is complete, this is no export
    manifest = {"format": 1, "profile": profile.name, "date": dt.date.today().isoformat()}
    view = manifest[profile.dataset] = _export_view(profile, source_dir, allow_download, target)
    printer(f"{target / data.FILENAMES[profile.dataset]}: {view['train_images']:,} train, "
            f"{view['test_images']:,} test images, {view['bytes'] / 2**20:.1f} MiB")
    if profile.experiments:
        printer(f"not exported: the data of the declared experiments ({', '.join(profile.experiments)}); each reads "
                f"its own from the data directory: copy those files beside the export")
    atomic_write_json(target / data.EXPORT_FILE, manifest)  # last: a directory without it is not an export
    printer(f"{target / data.EXPORT_FILE}: use it with --data-dir {target} (or TRAINGUARD_DATA_DIR)")
    return manifest
