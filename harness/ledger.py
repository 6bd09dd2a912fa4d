"""The ledger of nights (``--ledger-dir``): one compact JSON line per run, kept between nights.

("history" is one run's curve, trainguard.history; the ledger is the store of past nights.)

Layout: ``<history dir>/<profile>/<device class>.jsonl``. A line holds what later nights compare
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

from .spec import ConfigError
from .storage import append_line

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
        path = self.path(profile, device_class)
        if not path.exists():
            return []
        entries = []
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"history {path} line {number} is damaged ({exc.msg}); delete or repair that line "
                                  f"(the other runs are intact)") from None
            if not isinstance(entry, dict) or entry.get("format_version") != FORMAT_VERSION:
                raise ConfigError(f"history {path} line {number}: not a format {FORMAT_VERSION} history entry")
            entries.append(entry)
        return entries

    def profiles(self) -> list[tuple[str, str]]:
        """(profile, device class) of every history file under the root."""
        return sorted((p.parent.name, p.stem) for p in self.root.glob("*/*.jsonl"))


HistoryStore = Ledger  # the earlier name
