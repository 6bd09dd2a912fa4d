"""The CIFAR-10 comparison (PROTOCOL.md, Experiment 2) as parametrized slow tests.

Every model × budget of the chosen profile (``--profile``, default ``ci``) is checked
against the profile's measured baseline; the report's ranking and the benefit of more
epochs are checked too. Each (model, seed) trains once per pytest run; every budget is
a snapshot of that one run.
"""

import pytest

from trainguard.plugin import require_check

pytestmark = pytest.mark.slow


def test_cell_within_baseline(trainguard_matrix, trainguard_baseline, trainguard_check, cifar_cell):
    model, budget = cifar_cell
    require_check(trainguard_matrix.profile, "baseline")
    trainguard_check(trainguard_matrix.baseline_verdicts(model, budget, trainguard_baseline))


def test_cell_within_published_band(trainguard_matrix, trainguard_check, cifar_cell):
    """The report's table: mean over the profile's [published] seeds within ±band (seed profile)."""
    model, budget = cifar_cell
    require_check(trainguard_matrix.profile, "published")
    trainguard_check(trainguard_matrix.published_verdicts(model, budget))


def test_ranking(trainguard_matrix, trainguard_check, cifar_budget):
    require_check(trainguard_matrix.profile, "ranking")
    trainguard_check([trainguard_matrix.ranking_verdict(cifar_budget)])


def test_more_epochs_help(trainguard_matrix, trainguard_check, cifar_model):
    require_check(trainguard_matrix.profile, "budget_improves")
    if len(trainguard_matrix.profile.budgets) < 2:
        pytest.skip("the profile has a single budget")
    trainguard_check([trainguard_matrix.budget_verdict(cifar_model)])
