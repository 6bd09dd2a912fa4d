"""The result cache: one JSON file per training run, keyed by the hash of everything that determines it.

The key (:meth:`RunSpec.key`) covers the profile's training config, model, seed, epochs,
data fingerprint, device class, library versions and the source of the engine and models,
so a changed model is never served a stale result. Files are written atomically
(temp file, fsync, rename), so an interrupted run keeps every completed result and the
next run trains only what is missing. Each run has its own file, so concurrent
workers never write the same path for different content.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import re
import sys
import warnings
from pathlib import Path
from typing import Callable

from ..core.history import History
from ..core.spec import RunSpec
from ..core.storage import atomic_write_json

# The modules whose source decides every result (by import name: the same in a checkout and a wheel).
_CODE_MODULES = ("trainguard.engines.engine", "trainguard.stores.data", "trainguard.models", "trainguard.models._registry")


@functools.lru_cache(maxsize=None)
def code_fingerprint(model: str | None = None, stacked: bool = False) -> str:
    """sha256 over the source that decides a result: the engine, the data handling, the registry,
    and the model's own class (with its bases, up to torch's); for --stack-seeds runs also the
    stacked trainer. Editing one model's class invalidates that model's cached runs only; editing
    the engine invalidates all of them."""
    import importlib
    import inspect

    from .. import models

    digest = hashlib.sha256()
    for name in _CODE_MODULES + (("trainguard.engines.stacked",) if stacked else ()):
        digest.update(name.encode())
        digest.update(inspect.getsource(importlib.import_module(name)).encode())
    if model is not None and model in models.REGISTRY:
        for cls in inspect.getmro(models.REGISTRY[model]):
            if cls is not object and not cls.__module__.startswith("torch"):
                digest.update(inspect.getsource(cls).encode())
    elif model is not None:
        digest.update(model.encode())
        digest.update(user_model_source(model).encode())
    return digest.hexdigest()[:16]


def user_model_source(model: str) -> str:
    """The source of a user's model (an import path or an entry point): its whole module and every module of the
    same top-level package (or, for a loose module, beside it in the same directory) that is loaded once it is
    imported — the helpers it imports — so that an edit anywhere in them is a new result, never a cached one.
    '' for a name that is not a model name (a run log's label of something else). A model that cannot be resolved is
    the profile's error (ConfigError), never a key that silently leaves the source out."""
    import inspect

    from .. import models

    if not models.is_model_name(model):
        return ""
    try:
        factory = models.resolve(model)
    except models.ModelError as exc:
        from ..core.spec import ConfigError

        raise ConfigError(str(exc)) from None
    module = inspect.getmodule(factory)
    if module is None:
        return _source_of(factory)
    return "".join(f"# {name}\n{_source_of(sys.modules[name])}" for name in user_modules(module))


def user_modules(module) -> list[str]:
    """The names of ``module`` and of the modules of the user's own code it imports, directly or through each
    other: read from the import statements (so the answer does not depend on what else this process loaded), kept
    when the imported module's file lies under the user's root — the top-level package's directory, or for a
    loose module its own directory — and outside installed packages."""
    root = _user_root(module)
    found, todo = {}, [module]
    while todo:
        current = todo.pop()
        if current.__name__ in found:
            continue
        found[current.__name__] = current
        for name in _imported_names(current):
            other = sys.modules.get(name)
            path = getattr(other, "__file__", None)
            if other is not None and path and _is_own(Path(path), root) and name not in found:
                todo.append(other)
    return sorted(found)


def _user_root(module) -> Path:
    top = sys.modules.get(module.__name__.partition(".")[0], module)
    path = Path(getattr(top, "__file__", None) or getattr(module, "__file__", None) or ".").resolve()
    return path.parent if path.name != "__init__.py" else path.parent.parent


def _is_own(path: Path, root: Path) -> bool:
    path = path.resolve()
    return path.is_relative_to(root) and not {"site-packages", "dist-packages"} & set(path.parts)


def _imported_names(module) -> list[str]:
    """Every module name ``module``'s import statements may name (``from a import b``: ``a`` and ``a.b``)."""
    import ast

    try:
        tree = ast.parse(_source_of(module))
    except SyntaxError:
        return []
    package = module.__name__ if hasattr(module, "__path__") else module.__name__.rpartition(".")[0]
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".") if package else []
                parts = parts[:len(parts) - node.level + 1] if node.level > 1 else parts
                base = ".".join(filter(None, [*parts, node.module or ""]))
            names += [base] + [f"{base}.{alias.name}" for alias in node.names]
    return [n for n in names if n]


def _source_of(obj) -> str:
    import inspect

    try:
        return inspect.getsource(obj)
    except (OSError, TypeError):  # no source (a compiled module): its file's bytes are the next best thing
        path = getattr(obj, "__file__", None)
        return Path(path).read_bytes().hex() if path else repr(obj)


def safe_name(name: str) -> str:
    """``name`` as a file name any file system takes: a user's model ``mynet:TinyNet`` keeps no ``:`` (on NTFS it
    would name an alternate data stream); trainguard's own names are unchanged."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


class ResultStore:
    def __init__(self, root: Path | str | None) -> None:
        self.root = Path(root) if root else None

    @contextlib.contextmanager
    def lock(self, spec: RunSpec, on_wait: Callable[[str], None] = lambda message: None):
        """Hold an exclusive lock on this spec's result while training it.

        Two processes (pytest-xdist workers, two runs) that need the same run take turns: the
        second waits, then finds the first one's result in the cache instead of training again.
        A lock is held for one training run only and nothing is locked inside it, so there is no
        lock-order deadlock. The OS drops the lock if its holder dies (filelock: flock on POSIX, msvcrt on
        Windows), so a killed run never blocks the next one. Without a cache there is nothing to share.
        """
        if self.root is None:
            yield
            return
        from ..core.storage import file_lock

        def waiting() -> None:
            on_wait(f"[trainguard] {spec.model} seed {spec.seed}: another process is training it; waiting for its result")

        with file_lock(self.path(spec).with_suffix(".lock"), f"{spec.model} seed {spec.seed}", on_wait=waiting):
            yield

    def path(self, spec: RunSpec) -> Path:
        return self.root / spec.profile / spec.device_class / f"{safe_name(spec.model)}-seed{spec.seed}-{spec.key()}.json"

    def get(self, spec: RunSpec) -> History | None:
        """A stored completed history for this exact spec, or None. Corrupt files are reported, not trusted."""
        if self.root is None:
            return None
        path = self.path(spec)
        if not path.exists():
            return None
        try:
            history = History.from_json(json.loads(path.read_text()))
            if history.key != spec.key():
                raise ValueError(f"key {history.key!r} does not match the file name's {spec.key()!r}")
        except (ValueError, TypeError, KeyError) as exc:
            warnings.warn(f"result file {path} is corrupt ({exc}); ignoring it and training again", stacklevel=2)
            return None
        return history if history.completed else None

    def put(self, spec: RunSpec, history: History) -> Path | None:
        if self.root is None:
            return None
        path = self.path(spec)
        atomic_write_json(path, history.to_json())
        return path

    def latest(self, profile: str) -> dict[tuple[str, int], History]:
        """The newest readable completed history per (model, seed) of ``profile``, whatever its key:
        what an earlier run left, for comparisons across code or library changes."""
        found: dict[tuple[str, int], tuple[float, History]] = {}
        if self.root is None:
            return {}
        for path in sorted((self.root / profile).glob("*/*.json")):
            try:
                history = History.from_json(json.loads(path.read_text()))
            except (ValueError, TypeError, KeyError) as exc:
                warnings.warn(f"result file {path} is corrupt ({exc}); skipping it", stacklevel=2)
                continue
            mtime = path.stat().st_mtime
            key = (history.model, history.seed)
            if history.completed and (key not in found or mtime > found[key][0]):
                found[key] = (mtime, history)
        return {key: history for key, (_, history) in found.items()}
