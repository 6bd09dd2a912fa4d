"""What trainguard no longer takes, and what replaced it: one table for every way in (profile keys, check kinds,
command-line flags, import paths, ledger records), so an old profile, test, script or record fails — or is read —
naming the new way instead of "unknown". Plain data: importing it imports nothing.

The entries belong to whatever retired the names (the report's experiments' former machinery: their own module,
trainguard.experiments.retired), which adds them with :func:`retire` when the package is imported, before any
profile is read or command parsed. The tables are filled in place, so a name bound to one stays current.
"""

from __future__ import annotations

#: Profile keys ("section" or "section.key") → why they are gone and what to write instead.
PROFILE_KEYS: dict[str, str] = {}

#: Check kinds → the kind that checks what they checked (a test marked with an old name is told, not skipped).
CHECK_KINDS: dict[str, str] = {}

#: Command-line flags → the flag that does what they did (accepted, with a note).
FLAGS: dict[str, str] = {}

#: Old import paths below ``trainguard`` → where the module is now (imported, warning once).
MODULES: dict[str, str] = {}

#: Keys of ledger records written before a retirement: still read, never written.
RECORD_KEYS: list[str] = []


def retire(*, profile_keys: dict[str, str] | None = None, check_kinds: dict[str, str] | None = None,
           flags: dict[str, str] | None = None, modules: dict[str, str] | None = None,
           record_keys: tuple[str, ...] = ()) -> None:
    """Add retired names to the tables (a name already there keeps its first message)."""
    for table, entries in ((PROFILE_KEYS, profile_keys), (CHECK_KINDS, check_kinds), (FLAGS, flags),
                           (MODULES, modules)):
        for old, new in (entries or {}).items():
            table.setdefault(old, new)
    RECORD_KEYS.extend(key for key in record_keys if key not in RECORD_KEYS)
