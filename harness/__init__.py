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

__all__ = ["Options", "RunSummary", "load_profile", "run_profile", "summarize", "write_report"]
_WHERE = {"Options": "api", "RunSummary": "api", "run_profile": "api", "summarize": "api",
          "load_profile": "core.spec", "write_report": "report.markdown"}


def __getattr__(name: str):
    if name == "__version__":
        from importlib.metadata import version

        return version("trainguard")
    if name in _WHERE:
        return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
