"""The replay: the profile's golden runs, written with their measured rounding noise and replayed step by step
(:mod:`trainguard.replay.golden_runs`), and the check kind that judges the replays (:mod:`trainguard.replay.kind`)."""

from .. import forwarding

__getattr__ = forwarding(__name__, "golden_runs")  # the names of trainguard.replay from before it was a folder
