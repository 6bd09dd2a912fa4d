"""Runs: the runs of one profile (:class:`trainguard.runs.session.Matrix`): which runs, where their results come
from (the result cache, the run log), training one, and exporting the profile's data."""
