"""The ledger of nights (``--ledger-dir``): one compact JSON line per run, kept between nights.

("history" is one run's curve, trainguard.history; the ledger is the store of past nights.)

Layout: ``<ledger dir>/<profile>/<device class>.jsonl``. A line holds what later nights compare
against (see :func:`trainguard.trend.history_entry`): per cell and checked metric the per-seed
values of the checked statistic, per model the training speed and peak memory, the environment
(versions, data fingerprint, training configuration, commit, hardware) and the result.

Appends are one ``write`` of one whole line to a file opened with O_APPEND (as the run log), so
two runs appending at once never tear a line; a damaged line is an error naming the file and the
line, never skipped silently. The directory is plain files: CI restores and saves it with a
cache or an artifact, and a user can keep it locally.
"""

from __future__ import annotations

import json
from pathlib import Path

from .storage import append_line, read_json_lines

FORMAT_VERSION = 1
DEFAULT_DIR = Path(".trainguard/history")


class Ledger:
    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    def path(self, profile: str, device_class: str) -> Path:
        return self.root / profile / f"{device_class}.jsonl"

    def append(self, entry: dict) -> Path:
        path = self.path(entry["profile"], entry["device_class"])
        return append_line(path, json.dumps({"format_version": FORMAT_VERSION, **entry}, sort_keys=True))

    def read(self, profile: str, device_class: str) -> list[dict]:
        """Every run of ``profile`` on ``device_class``, oldest first (empty if none yet)."""
        return read_json_lines(self.path(profile, device_class), "ledger",
                               lambda entry: entry.get("format_version") == FORMAT_VERSION,
                               f"a format {FORMAT_VERSION} ledger entry", missing_ok=True)

    def profiles(self) -> list[tuple[str, str]]:
        """(profile, device class) of every history file under the root."""
        return sorted((p.parent.name, p.stem) for p in self.root.glob("*/*.jsonl"))


HistoryStore = Ledger  # the earlier name
