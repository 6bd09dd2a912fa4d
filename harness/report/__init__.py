"""The record a night leaves for people: the markdown report with its figures and JUnit XML
(:mod:`~trainguard.report.markdown`), the dashboard over the ledger, the MLflow export."""

from .. import forwarding

__getattr__ = forwarding(__name__, "markdown")  # the names of trainguard.report from before it was a folder
