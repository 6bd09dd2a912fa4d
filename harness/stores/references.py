"""Where a profile's stored references live — decided here, and only here.

Under ``<baselines>/<profile>/`` (the baselines directory: ``--baselines-dir``, else the profile's own,
trainguard.core.spec.baselines_dir_for):

- ``<class>.csv``, ``<class>-seeds.csv``, ``<class>.meta.json``: the per-seed baseline of the profile's models in
  the night's device class (``cpu``, ``cuda``, ``cpu-bf16``, ``cpu-compile``, ``cpu-stack`` …);
- ``experiments/``: the declared experiments' baseline runs and golden runs (trainguard.stores.experiment_records);
- ``golden-<device>/<name>.json`` and ``golden-<device>/inputs.json``: the golden runs (fp32, eager, one seed at a
  time: their class is the device's type too) and the fingerprints of the night's inputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

INPUTS_FILE = "inputs.json"  # beside the goldens: the night's data at full scale, per split


@dataclass(frozen=True)
class References:
    root: Path  # the baselines directory
    profile: str
    device_class: str  # the night's class: its baseline table
    device_type: str = "cpu"  # cpu | cuda: the class of the golden runs

    @property
    def directory(self) -> Path:
        return Path(self.root) / self.profile

    @property
    def baseline(self) -> Path:
        """The summary table; its per-seed curves and metadata beside it (stores.baselines)."""
        return self.directory / f"{self.device_class}.csv"

    @property
    def golden_dir(self) -> Path:
        return self.directory / f"golden-{self.device_type}"

    def golden(self, name: str) -> Path:
        """``<name>.json``; a user's ``module:attr`` model is stored as ``module--attr.json`` (no ':' in file names)."""
        return self.golden_dir / f"{name.replace(':', '--')}.json"

    @property
    def inputs(self) -> Path:
        return self.golden_dir / INPUTS_FILE
