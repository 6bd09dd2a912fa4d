"""Runs: the runs of one profile (:class:`trainguard.runs.matrix.Matrix`): which runs, where their results come
from (the result cache, the run log), training one, and exporting the profile's data."""
