"""The record a night leaves for people: the markdown report with its figures and JUnit XML
(:mod:`~trainguard.report.markdown`), the dashboard over the ledger, the MLflow export."""


def __getattr__(name: str):
    """``trainguard.report.X`` from before the layers became folders: X now lives in ``trainguard.report.markdown``."""
    import importlib

    from .. import moved

    module = importlib.import_module(f"{__name__}.markdown")
    if name.startswith("__") or not hasattr(module, name):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    moved(f"{__name__}.{name}", f"{module.__name__}.{name}")
    return getattr(module, name)

