"""A night in stages — plan, execute, judge, record — one module each, each stage a plain object handed to the
next: :mod:`~trainguard.night.plan` (every run and reference, before anything trains),
:mod:`~trainguard.night.execute` (this process; :mod:`~trainguard.night.cluster` on Ray),
:mod:`~trainguard.night.judge` (the check kinds over the results, into a summary),
:mod:`~trainguard.night.record` (the report, the ledger, JUnit, the job summary) — and
:class:`~trainguard.night.night.Night`, the one object both front ends build to run them."""

from .. import forwarding

__getattr__ = forwarding(__name__, "plan", "execute")  # the names of trainguard.night from before it was a folder
