"""The CIFAR-10 comparison (PROTOCOL.md, Experiment 2) as parametrized slow tests.

Every model × budget of the chosen profile (``--profile``, default ``ci``) is checked
against the profile's measured baseline; the report's ranking and the benefit of more
epochs are checked too. Each (model, seed) trains once per pytest run; every budget is
a snapshot of that one run. The cases come from the check kinds (trainguard.checks) the
profile enables; a kind it does not enable leaves its test with no case (skipped).
"""

import pytest

pytestmark = pytest.mark.slow


@pytest.mark.trainguard_kinds("baseline")
def test_cell_within_baseline(trainguard_case):
    trainguard_case.check()


@pytest.mark.trainguard_kinds("published")
def test_cell_within_published_band(trainguard_case):
    """The report's table: mean over the profile's [published] seeds within ±band (seed profile)."""
    trainguard_case.check()


@pytest.mark.trainguard_kinds("ranking")
def test_ranking(trainguard_case):
    trainguard_case.check()


@pytest.mark.trainguard_kinds("budget_improves")
def test_more_epochs_help(trainguard_case):
    trainguard_case.check()
