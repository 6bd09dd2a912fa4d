"""The course report's conclusions about a profile's models, asserted on the night's runs: the models rank as in
the published table (``ranking``, per budget; the profile's own order without one) and more epochs help
(``budget_improves``, per model).

Where the profile compares against the published table it has several seeds, and the conclusions use their mean
too: one seed's test accuracy moves by a few test images between epochs, which says nothing about the model
(docs/statistics.md, Conclusions).
"""

from __future__ import annotations

from ..core import compare
from . import Case, CheckKind
from . import published as pub


def conclusion_seeds(matrix) -> tuple[int, ...]:
    return pub.seeds(matrix) if "published" in matrix.profile.checks else matrix.seeds


def mean_test_acc(matrix, model: str, budget: int, seeds: tuple[int, ...]) -> float:
    return sum(matrix.history(model, seed).at(budget).test_acc for seed in seeds) / len(seeds)


def expected_ranking(matrix) -> list[str]:
    """The report's ranking, weakest first: the profile's models in the order of their published test
    accuracy (baselines/published.csv) at the largest budget; the profile's own order without one."""
    published, budget, models = pub.read(matrix), matrix.profile.budgets[-1], list(matrix.profile.models)
    if all((m, budget, "test_acc") in published for m in models):
        return sorted(models, key=lambda m: published[(m, budget, "test_acc")])
    return models


class Ranking(CheckKind):
    name = "ranking"

    def cases(self, profile) -> list[Case]:
        return [Case(self.name, str(b), "cross-model", (b,)) for b in profile.budgets]

    def runs(self, session, case):
        (budget,) = case.params
        return [(m, budget, s) for s in conclusion_seeds(session.matrix) for m in expected_ranking(session.matrix)]

    def verdicts(self, session, case, reference) -> list[compare.Verdict]:
        (budget,) = case.params
        matrix = session.matrix
        order, seeds = expected_ranking(matrix), conclusion_seeds(matrix)
        return [compare.check_ranking(budget, order, {m: mean_test_acc(matrix, m, budget, seeds) for m in order}, seeds)]


class MoreEpochsHelp(CheckKind):
    name = "budget_improves"

    def enabled(self, profile) -> bool:
        return super().enabled(profile) and len(profile.budgets) > 1

    def cases(self, profile) -> list[Case]:
        return [Case(self.name, m, m, (m,)) for m in profile.models] if len(profile.budgets) > 1 else []

    def runs(self, session, case):
        (model,) = case.params
        return [(model, session.profile.budgets[-1], s) for s in conclusion_seeds(session.matrix)]

    def verdicts(self, session, case, reference) -> list[compare.Verdict]:
        (model,) = case.params
        matrix, (small, large) = session.matrix, (session.profile.budgets[0], session.profile.budgets[-1])
        seeds = conclusion_seeds(matrix)
        return [compare.check_budget_improves(model, small, large, mean_test_acc(matrix, model, small, seeds),
                                              mean_test_acc(matrix, model, large, seeds), seeds)]
