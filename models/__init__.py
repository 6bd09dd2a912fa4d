"""Model registry: name → factory. Pure definitions, no training code.

The names are known without importing torch (profiles are validated, and the pytest plugin
starts, without it); the classes, ``REGISTRY``, ``build`` and ``parameter_count`` load
``torch`` on first use (PEP 562 module ``__getattr__``).
"""

from __future__ import annotations

import importlib

MODEL_NAMES = ("Baseline1", "Baseline2", "NewModel1", "NewModel2")

_TORCH_ATTRIBUTES = {"REGISTRY", "build", "parameter_count", *MODEL_NAMES, "cifar", "mnist"}


def __getattr__(name: str):
    if name not in _TORCH_ATTRIBUTES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    registry = importlib.import_module(f"{__name__}._registry")
    if name in ("cifar", "mnist"):
        return importlib.import_module(f"{__name__}.{name}")
    return getattr(registry, name)
