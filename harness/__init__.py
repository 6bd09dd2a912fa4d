"""trainguard: a pytest-driven benchmark and regression harness for deep-learning training experiments.

The library's entry point is :func:`trainguard.run_profile` (see :mod:`trainguard.api`)::

    from trainguard import Options, load_profile, run_profile
    summary = run_profile(Options(profile=load_profile("smoke"), device="cpu"))
    print(summary.passed, [v.message for v in summary.failed])

Names load on first use (PEP 562), so ``import trainguard`` (and the pytest plugin, which every
pytest run in the environment loads) imports neither torch nor scipy.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import warnings

__all__ = ["Experiment", "Run", "Claim", "Fault", "Reference", "Start", "experiment", "Options", "RunSummary", "load_profile", "run_profile", "summarize",
           "write_report"]
_WHERE = {"Options": "api", "RunSummary": "api", "run_profile": "api", "summarize": "api",
          "load_profile": "core.spec", "write_report": "report.markdown",
          # the Experiment contract: your own training, guarded (docs/own-training.md)
          "Experiment": "core.experiment", "Run": "core.experiment", "experiment": "core.experiment",
          "Claim": "core.experiment", "Fault": "core.experiment",
          "Reference": "core.experiment", "Start": "core.experiment"}


def __getattr__(name: str):
    if name == "__version__":
        from importlib.metadata import version

        return version("trainguard")
    if name in _WHERE:
        return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _retired_modules() -> dict[str, str]:
    from .core import retired  # plain data: imports nothing heavy

    return retired.modules()


# Where each module lived before the layers became folders (0.1), and those retired since (trainguard.core.retired):
# the old import paths still import, warning once with the new one. ``trainguard.replay``, ``.report`` and ``.night`` are packages now (their __init__ forwards).
_MOVED = {f"{__name__}.{old}": f"{__name__}.{new}" for old, new in {
    "errors": "core.errors", "watchdog": "core.watchdog", "storage": "core.storage", "history": "core.history",
    "stats": "core.stats", "environment": "core.environment", "registry": "core.registry", "spec": "core.spec",
    "compare": "core.compare", "plots": "core.plots", "progress": "core.progress", "ledger": "stores.ledger",
    "golden": "stores.golden", "results": "stores.results", "data": "stores.data", "runlog": "stores.runlog",
    "baselines": "stores.baselines", "engine": "engines.engine", "stacked": "engines.stacked", "training": "runs.training", "session": "runs.matrix",
    "export": "runs.export", "trend": "checks.trend", "dashboard": "report.dashboard",
    "mlflow_export": "report.mlflow_export", "cluster": "night.cluster", "selftest": "audit.selftest",
    "calibration": "audit.calibration", **_retired_modules()}.items()}


def moved(old: str, new: str) -> None:
    warnings.warn(f"{old} moved to {new}: import it from there (the old path goes away in a later release)",
                  DeprecationWarning, stacklevel=3)


def forwarding(package: str, *modules: str):
    """The ``__getattr__`` of a package that was one module before the layers became folders: ``package.X`` still
    resolves, warning, to X in the first of ``modules`` (below ``package``) that has it."""

    def __getattr__(name: str):
        found = [m for m in (importlib.import_module(f"{package}.{module}") for module in modules) if hasattr(m, name)]
        if name.startswith("__") or not found:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        moved(f"{package}.{name}", f"{found[0].__name__}.{name}")
        return getattr(found[0], name)

    return __getattr__


class _MovedModules:
    """An import of an old path finds the module at its new one (the same module object, so a patch through either
    name patches both)."""

    def find_spec(self, fullname, path=None, target=None):
        return importlib.util.spec_from_loader(fullname, self) if fullname in _MOVED else None

    def create_module(self, spec):
        return None

    def exec_module(self, module) -> None:
        moved(module.__name__, _MOVED[module.__name__])
        sys.modules[module.__name__] = importlib.import_module(_MOVED[module.__name__])  # the import returns this one


if not any(isinstance(finder, _MovedModules) for finder in sys.meta_path):
    sys.meta_path.append(_MovedModules())
