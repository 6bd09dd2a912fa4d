"""The replay: the profile's golden runs, written with their measured rounding noise and replayed step by step
(:mod:`trainguard.replay.golden_runs`), and the check kind that judges the replays (:mod:`trainguard.replay.kind`)."""


def __getattr__(name: str):
    """``trainguard.replay.X`` from before the layers became folders: X now lives in ``trainguard.replay.golden_runs``."""
    import importlib

    from .. import moved

    module = importlib.import_module(f"{__name__}.golden_runs")
    if name.startswith("__") or not hasattr(module, name):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    moved(f"{__name__}.{name}", f"{module.__name__}.{name}")
    return getattr(module, name)

