"""The CIFAR-10 comparison (PROTOCOL.md, Experiment 2) as parametrized slow tests.

Every model × budget of the chosen profile (``--tg-profile``, default ``ci``) is checked against its measured
baseline; the report's ranking and the benefit of more epochs are checked too. Each (model, seed) trains once per
pytest run; every budget is a snapshot of that one run. The cases come from the check kinds (trainguard.checks) the
profile enables; a kind it does not enable leaves its test with no case (skipped).

The ci profile checks the comparison as a plug-in (trainguard.experiments.cifar_models:ci, declared by the profile):
its cells are ``test_cell_within_baseline``'s too ([NewModel2-20]: every checked metric of the cell), and its
claims — the ranking at each budget and "more epochs help" each model — are one case, [claims]. Profiles with models
of their own (smoke, seed) check them through the models' kinds, ranking and "more epochs" in tests of their own.
"""

import pytest

pytestmark = pytest.mark.slow


@pytest.mark.trainguard_kinds("baseline", "experiments")
@pytest.mark.trainguard_experiment("ci")  # the CIFAR-10 plug-in's cells and claims, whatever else ci declares
def test_cell_within_baseline(trainguard_case):  # [NewModel2-20], and the plug-in's [claims]
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
