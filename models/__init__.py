"""Model registry: name → factory. Pure definitions, no training code.

The names are known without importing torch (profiles are validated, and the pytest plugin
starts, without it); the classes, ``REGISTRY``, ``build`` and ``parameter_count`` load
``torch`` on first use (PEP 562 module ``__getattr__``).
"""

from __future__ import annotations

import importlib

import re

MODEL_NAMES = ("Baseline1", "Baseline2", "NewModel1", "NewModel2")
ENTRY_POINT_GROUP = "trainguard.models"  # a package's own models: [project.entry-points."trainguard.models"]
IMPORT_PATH = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*")  # "mypkg.nets:TinyNet" (a class or zero-argument factory)

_TORCH_ATTRIBUTES = {"REGISTRY", "build", "resolve", "parameter_count", *MODEL_NAMES, "cifar", "mnist"}


class ModelError(ValueError):
    """A model name that names nothing: the message says which module or attribute is missing."""


def entry_point_names() -> list[str]:
    from importlib.metadata import entry_points

    return sorted(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))


def is_model_name(name: str) -> bool:
    """Built-in, an import path, or an entry point of the ``trainguard.models`` group (no torch imported)."""
    return name in MODEL_NAMES or bool(IMPORT_PATH.fullmatch(name)) or name in entry_point_names()


def __getattr__(name: str):
    if name not in _TORCH_ATTRIBUTES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    registry = importlib.import_module(f"{__name__}._registry")
    if name in ("cifar", "mnist"):
        return importlib.import_module(f"{__name__}.{name}")
    return getattr(registry, name)
