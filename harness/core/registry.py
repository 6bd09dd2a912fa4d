"""The registry of check kinds, by name: the built-in ones, those registered from code, and entry points.

A profile's ``checks = [...]`` names kinds; :func:`names` is what it may name. The registry holds names
and where to find each kind ("module:attribute", imported only when a run needs it), so reading a profile
imports nothing heavy — the pytest plugin reads one at start-up in every pytest run of the environment.

A kind from outside trainguard is one class (the protocol is :class:`trainguard.checks.CheckKind`) and one
of: ``trainguard.checks.register(MyKind)`` (a conftest.py, or the module that defines it), or an entry
point in the ``trainguard.checks`` group (``[project.entry-points."trainguard.checks"] mine = "pkg.mod:MyKind"``).
"""

from __future__ import annotations

import importlib
import re

ENTRY_POINT_GROUP = "trainguard.checks"

# In report order. Kinds that a profile enables by other means than its ``checks`` list (the replay's, on with
# golden runs; the declared experiments', on with an ``experiments`` list) are here too: their names are reserved.
BUILTIN = {
    "replay": "trainguard.replay.kind:GoldenReplay",
    "baseline": "trainguard.checks.baseline:BaselineBands",
    "published": "trainguard.checks.published:PublishedTable",
    "ranking": "trainguard.checks.conclusions:Ranking",
    "budget_improves": "trainguard.checks.conclusions:MoreEpochsHelp",
    "experiments": "trainguard.checks.declared_experiments:DeclaredExperiments",
    "experiment_replay": "trainguard.replay.experiment_kind:DeclaredReplays",
}
_registered: dict[str, object] = {}  # name -> the kind (a class or an instance), registered from code
_loaded: dict[str, object] = {}  # name -> the kind's instance, once imported


def register(kind):
    """Register a check kind (a class with a ``name``, or an instance); returns it, so it works as a decorator.
    A built-in name cannot be taken; registering the same name again replaces the earlier kind."""
    name = getattr(kind, "name", "")
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{0,63}", name):
        raise ValueError(f"check kind {kind!r}: its `name` must be an identifier (letters, digits, '_'), got {name!r}")
    if name in BUILTIN:
        raise ValueError(f"check kind {name!r}: the name is one of trainguard's own kinds ({', '.join(BUILTIN)})")
    _registered[name] = kind
    _loaded.pop(name, None)
    return kind


def unregister(name: str) -> None:
    _registered.pop(name, None)
    _loaded.pop(name, None)


_scanned: dict[str, object] | None = None  # the installed entry points, scanned once per process


def _entry_points() -> dict[str, object]:
    global _scanned
    if _scanned is None:  # scanning every installed distribution's metadata is the slow part: once
        from importlib.metadata import entry_points

        _scanned = {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
    return _scanned


def refresh() -> None:
    """Scan the installed entry points again (after installing a package into the running process)."""
    global _scanned
    _scanned = None


def names() -> list[str]:
    """Every kind a profile may name, built-in first (in report order)."""
    return list(dict.fromkeys([*BUILTIN, *_registered, *_entry_points()]))


def load(name: str):
    """The kind ``name`` (an instance), imported on first use. KeyError for an unknown name."""
    if name not in _loaded:
        if name in BUILTIN:
            module, _, attribute = BUILTIN[name].partition(":")
            kind = getattr(importlib.import_module(module), attribute)
        elif name in _registered:
            kind = _registered[name]
        else:
            points = _entry_points()
            if name not in points:
                raise KeyError(name)
            kind = points[name].load()
        _loaded[name] = kind() if isinstance(kind, type) else kind
    return _loaded[name]
