"""A night in stages — plan, execute, judge, record — one module each, each stage a plain object handed to the
next: :mod:`~trainguard.night.plan` (every run and reference, before anything trains),
:mod:`~trainguard.night.execute` (this process; :mod:`~trainguard.night.cluster` on Ray),
:mod:`~trainguard.night.judge` (the check kinds over the results, into a summary),
:mod:`~trainguard.night.record` (the report, the ledger, JUnit, the job summary)."""


def __getattr__(name: str):
    """``trainguard.night.X`` from before the layers became folders: X now lives in ``trainguard.night.plan`` or
    ``trainguard.night.execute``."""
    import importlib

    from .. import moved

    found = [m for m in (importlib.import_module(f"{__name__}.{stage}") for stage in ("plan", "execute"))
             if hasattr(m, name)]
    if name.startswith("__") or not found:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = found[0]
    moved(f"{__name__}.{name}", f"{module.__name__}.{name}")
    return getattr(module, name)

