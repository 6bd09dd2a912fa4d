"""Model registry: name → factory. Pure definitions, no training code."""

from __future__ import annotations

from typing import Callable

from torch import nn

from .cifar import Baseline1, Baseline2, NewModel1, NewModel2

REGISTRY: dict[str, Callable[[], nn.Module]] = {
    "Baseline1": Baseline1,
    "Baseline2": Baseline2,
    "NewModel1": NewModel1,
    "NewModel2": NewModel2,
}
MODEL_NAMES = tuple(REGISTRY)


def build(name: str) -> nn.Module:
    try:
        factory = REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; known: {', '.join(MODEL_NAMES)}") from None
    return factory()


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
