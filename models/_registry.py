"""The registry proper (imports torch): see the package docstring."""

from __future__ import annotations

from typing import Callable

from torch import nn

from . import MODEL_NAMES
from .cifar import Baseline1, Baseline2, NewModel1, NewModel2

REGISTRY: dict[str, Callable[[], nn.Module]] = {
    "Baseline1": Baseline1,
    "Baseline2": Baseline2,
    "NewModel1": NewModel1,
    "NewModel2": NewModel2,
}
assert tuple(REGISTRY) == MODEL_NAMES, "models.MODEL_NAMES and the registry must list the same models"


def build(name: str) -> nn.Module:
    try:
        factory = REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; known: {', '.join(MODEL_NAMES)}") from None
    return factory()


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
