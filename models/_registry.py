"""The registry proper (imports torch): see the package docstring."""

from __future__ import annotations

import contextlib
import importlib
import sys
import traceback
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
    from importlib.metadata import entry_points

    from . import ENTRY_POINT_GROUP, IMPORT_PATH, ModelError

    if name in REGISTRY:
        return REGISTRY[name]
    if IMPORT_PATH.fullmatch(name):
        module_name, attribute = name.split(":", 1)
        with _on_path(search):
            obj = _import(name, module_name, search)
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


@contextlib.contextmanager
def _on_path(directories: tuple):
    """``directories`` at the front of sys.path while a user's module is imported, and taken off again after: a
    profile's directory left there would shadow the standard library (a local ``statistics.py``) for the rest of
    the process."""
    added = [str(d) for d in directories if str(d) not in sys.path]
    sys.path[:0] = added
    try:
        yield
    finally:
        for entry in added:
            if entry in sys.path:
                sys.path.remove(entry)


def _import(name: str, module_name: str, search: tuple):
    """Import a user's model module; every way that fails is a ModelError naming the model path and the cause."""
    from . import ModelError

    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise ModelError(f"model {name!r}: module {module_name!r} cannot be imported ({exc}); looked on sys.path, "
                         f"including {', '.join(map(str, search)) or 'nothing else'}") from None
    except SyntaxError as exc:
        raise ModelError(f"model {name!r}: {exc.filename}, line {exc.lineno}: syntax error ({exc.msg})") from None
    except Exception as exc:  # the user's module raised while it was imported: say where, keep the cause
        frame = traceback.extract_tb(exc.__traceback__)[-1]
        raise ModelError(f"model {name!r}: importing {module_name!r} raised {type(exc).__name__}: {exc} "
                         f"({frame.filename}, line {frame.lineno})") from exc


def build(name: str, search: tuple = ()) -> nn.Module:
    model = resolve(name, search)()
    if not isinstance(model, nn.Module):
        from . import ModelError

        raise ModelError(f"model {name!r}: its factory returned {type(model).__name__}, not a torch.nn.Module")
    return model


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
