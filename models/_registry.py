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


def resolve(name: str, search: tuple = ()) -> Callable[[], nn.Module]:
    """The factory ``name`` stands for: a built-in model, ``"module:attr"`` (a class or zero-argument factory;
    ``search``: directories tried on sys.path first, e.g. the profile's and the working directory), or the name
    of an entry point in the ``trainguard.models`` group."""
    import importlib
    import sys
    from importlib.metadata import entry_points

    from . import ENTRY_POINT_GROUP, IMPORT_PATH, ModelError

    if name in REGISTRY:
        return REGISTRY[name]
    if IMPORT_PATH.fullmatch(name):
        module_name, attribute = name.split(":", 1)
        for directory in search:
            if str(directory) not in sys.path:
                sys.path.insert(0, str(directory))
        try:
            obj = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            raise ModelError(f"model {name!r}: module {module_name!r} cannot be imported ({exc}); looked on sys.path, "
                             f"including {', '.join(map(str, search)) or 'nothing else'}") from None
        for part in attribute.split("."):
            if not hasattr(obj, part):
                raise ModelError(f"model {name!r}: module {module_name!r} has no attribute {attribute!r}") from None
            obj = getattr(obj, part)
        if not callable(obj):
            raise ModelError(f"model {name!r}: {attribute!r} is not a class or a zero-argument factory")
        return obj
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == name:
            return ep.load()
    raise ModelError(f"unknown model {name!r}; known: {', '.join(MODEL_NAMES)}, an import path such as "
                     f"'mypkg.nets:TinyNet', or an entry point of the {ENTRY_POINT_GROUP!r} group")


def build(name: str, search: tuple = ()) -> nn.Module:
    model = resolve(name, search)()
    if not isinstance(model, nn.Module):
        from . import ModelError

        raise ModelError(f"model {name!r}: its factory returned {type(model).__name__}, not a torch.nn.Module")
    return model


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
