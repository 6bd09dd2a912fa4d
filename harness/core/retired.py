"""What trainguard no longer takes, and what replaced it: one table for every way in (profile keys, check kinds,
command-line flags, import paths, ledger records), so an old profile, test, script or record fails — or is read —
naming the new way instead of "unknown".

The entries belong to whatever retired the names: the modules in :data:`BUILTIN` ("module:attribute", a mapping of
plain data), imported on the first lookup — as the registry of check kinds finds its kinds (trainguard.core.registry)
— so this module names none of them and importing it imports nothing.
"""

from __future__ import annotations

import importlib

#: Where retired names are kept: the report's first experiment's former machinery, with the experiment.
BUILTIN = ("trainguard.experiments.retired:RETIRED",)
TABLES = ("profile_keys", "check_kinds", "flags", "modules", "record_keys")
_tables: dict[str, dict] | None = None


def _load() -> dict[str, dict]:
    global _tables
    if _tables is None:
        tables: dict[str, dict] = {name: {} for name in TABLES}
        for where in BUILTIN:
            module, _, attribute = where.partition(":")
            for name, entries in getattr(importlib.import_module(module), attribute).items():
                for old, new in dict.fromkeys(entries, None).items() if name == "record_keys" else entries.items():
                    tables[name].setdefault(old, new)  # a name already retired keeps its first message
        _tables = tables
    return _tables


def profile_keys() -> dict[str, str]:
    """Profile keys ("section" or "section.key") → why they are gone and what to write instead."""
    return _load()["profile_keys"]


def check_kinds() -> dict[str, str]:
    """Check kinds → the kind that checks what they checked (a test marked with an old name is told, not skipped)."""
    return _load()["check_kinds"]


def flags() -> dict[str, str]:
    """Command-line flags → the flag that does what they did (accepted, with a note)."""
    return _load()["flags"]


def modules() -> dict[str, str]:
    """Old import paths below ``trainguard`` → where the module is now (imported, warning once)."""
    return _load()["modules"]


def record_keys() -> tuple[str, ...]:
    """Keys of ledger records written before a retirement: still read, never written."""
    return tuple(_load()["record_keys"])
